"""Websocket authentication: browsers by session (origin checked), pipeline clients by API token.

A browser's socket is accepted only from the portal's own origin: scheme, host and port of its Origin header
are those of the Host it connected to (host in ALLOWED_HOSTS, ws for http, wss for https), or exactly one of
CSRF_TRUSTED_ORIGINS (a TLS-terminating proxy in front). A page on another port of the same host is another
origin. A refusal is close code 4403 after accept, which a page takes as final (an HTTP 403 to the handshake
reads as a network failure, and the page would retry for ever).
"""

from urllib.parse import parse_qs, urlsplit

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from django.conf import settings
from django.contrib.auth.models import AnonymousUser
from django.http.request import split_domain_port, validate_host

FORBIDDEN = 4403
_DEFAULT_PORTS = {"http": 80, "https": 443, "ws": 80, "wss": 443}
_PAGE_SCHEME = {"ws": "http", "wss": "https"}


@database_sync_to_async
def _user_for_token(key: str):
    from portal.tokens import token_user

    return token_user(key) or AnonymousUser()


def _token_from(scope) -> str | None:
    value = _header(scope, b"authorization")
    if value and value.lower().startswith("token "):
        return value[6:].strip()
    return None


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin1")
    return None


def _origin(scheme: str, netloc: str) -> tuple[str, str, int] | None:
    """``(scheme, host, port)`` with the scheme's default port filled in; None when it does not parse."""
    try:
        parts = urlsplit(f"{scheme}://{netloc}")
        port = parts.port or _DEFAULT_PORTS.get(scheme)
    except ValueError:
        return None
    return (scheme, parts.hostname, port) if parts.hostname and port else None


def origin_allowed(scope) -> bool:
    """Whether the socket's Origin is the portal's own (see the module docstring)."""
    origin_text, host = _header(scope, b"origin"), _header(scope, b"host")
    if not origin_text:
        return False
    try:
        parts = urlsplit(origin_text.strip().lower())
    except ValueError:
        return False
    origin = _origin(parts.scheme, parts.netloc)
    if origin is None:
        return False
    trusted = (_origin(*_scheme_netloc(o)) for o in settings.CSRF_TRUSTED_ORIGINS)
    if origin in trusted:
        return True
    if not host or not validate_host(split_domain_port(host.lower())[0], settings.ALLOWED_HOSTS):
        return False
    page_scheme = _PAGE_SCHEME.get(scope.get("scheme", "ws"), "http")
    return origin == _origin(page_scheme, host.lower())


def _scheme_netloc(url: str) -> tuple[str, str]:
    parts = urlsplit(url.strip().lower())
    return parts.scheme, parts.netloc


async def refuse(scope, receive, send):
    """Accept, then close with 4403: the page sees a refusal it will not retry."""
    message = await receive()
    if message["type"] != "websocket.connect":
        return
    await send({"type": "websocket.accept"})
    await send({"type": "websocket.close", "code": FORBIDDEN})


class TokenOrSession:
    """A token in the Authorization header authenticates a pipeline client (no Origin to check);
    everything else goes through the browser stack: origin check, then the session."""

    def __init__(self, inner):
        self.inner = inner
        self.browser = AuthMiddlewareStack(inner)

    async def __call__(self, scope, receive, send):
        key = _token_from(scope)
        if key:
            return await self.inner(dict(scope, user=await _user_for_token(key)), receive, send)
        if not origin_allowed(scope):
            return await refuse(scope, receive, send)
        return await self.browser(scope, receive, send)


def query_int(scope, name: str, default: int = 0) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    try:
        return max(0, int(values[0])) if values else default
    except ValueError:
        return default
