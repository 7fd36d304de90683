"""Websocket authentication: browsers by session (origin checked), pipeline clients by API token."""

from urllib.parse import parse_qs

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.security.websocket import AllowedHostsOriginValidator
from django.contrib.auth.models import AnonymousUser


@database_sync_to_async
def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    return token.user if token and token.user.is_active else AnonymousUser()


def _token_from(scope) -> str | None:
    for name, value in scope.get("headers", []):
        if name == b"authorization" and value.lower().startswith(b"token "):
            return value[6:].decode("latin1").strip()
    return None


class TokenOrSession:
    """A token in the Authorization header authenticates a pipeline client (no Origin to check);
    everything else goes through the browser stack: origin check, then the session."""

    def __init__(self, inner):
        self.inner = inner
        self.browser = AllowedHostsOriginValidator(AuthMiddlewareStack(inner))

    async def __call__(self, scope, receive, send):
        key = _token_from(scope)
        if key:
            return await self.inner(dict(scope, user=await _user_for_token(key)), receive, send)
        return await self.browser(scope, receive, send)


def query_int(scope, name: str, default: int = 0) -> int:
    values = parse_qs(scope.get("query_string", b"").decode("latin1")).get(name)
    try:
        return max(0, int(values[0])) if values else default
    except ValueError:
        return default
