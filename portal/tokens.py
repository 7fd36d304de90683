"""API tokens: made, checked, listed, revoked and rotated. The key is random (256 bits) and shown once; only its
sha256 is stored, so a database dump holds no usable key. Clients send ``Authorization: Token <key>``."""

import hashlib
import secrets
from datetime import timedelta

from django.conf import settings
from django.utils import timezone
from rest_framework import authentication, exceptions

from portal.errors import NotFound, PortalError
from portal.models import ApiToken
from portal.throttling import TokenGuesses

KEY_PREFIX = "pt_"
MAX_DAYS = 365
_TOUCH_EVERY = timedelta(minutes=1)  # last_used_at is written at most this often per token


def key_hash(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def token_issue(*, user, name: str, days: int | None = None) -> tuple[ApiToken, str]:
    """A new token for ``user``: ``(token, key)``; the key is not stored and cannot be shown again."""
    name = name.strip()
    if not name or len(name) > 100:
        raise PortalError("name the token (1 to 100 characters), e.g. the machine or tool it is for", code="name")
    days = settings.PT_TOKEN_DAYS if days is None else days
    if not isinstance(days, int) or not 1 <= days <= MAX_DAYS:
        raise PortalError(f"a token lasts 1 to {MAX_DAYS} days", code="days")
    key = KEY_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken.objects.create(user=user, name=name, key_hash=key_hash(key), prefix=key[:10],
                                    expires_at=timezone.now() + timedelta(days=days))
    return token, key


def token_user(key: str):
    """The active user a live (not revoked, not expired) token belongs to, or None."""
    if not key or len(key) > 200:
        return None
    token = (ApiToken.objects.select_related("user")
             .filter(key_hash=key_hash(key), revoked_at__isnull=True, expires_at__gt=timezone.now()).first())
    if token is None or not token.user.is_active:
        return None
    now = timezone.now()
    if token.last_used_at is None or now - token.last_used_at > _TOUCH_EVERY:
        ApiToken.objects.filter(pk=token.pk).update(last_used_at=now)
    return token.user


def tokens_of(user):
    """The user's tokens, newest first, revoked and expired ones included (the page says which)."""
    return ApiToken.objects.filter(user=user)


def token_revoke(*, user, token_id: int) -> None:
    """The owner revokes one of their tokens; anyone else's is the same 404 as a missing one."""
    if not ApiToken.objects.filter(pk=token_id, user=user).exists():
        raise NotFound("no such token")
    ApiToken.objects.filter(pk=token_id, user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def tokens_revoke_all(user) -> int:
    """Revoke every live token of the user (a password change rotates them: the owner makes new ones)."""
    return ApiToken.objects.filter(user=user, revoked_at__isnull=True).update(revoked_at=timezone.now())


def note_password_change(sender, instance, **kwargs) -> None:
    """pre_save of the user model: remember whether the save changes the password hash."""
    before = (type(instance).objects.filter(pk=instance.pk).values_list("password", flat=True).first()
              if instance.pk is not None else None)
    instance._pt_password_changed = before is not None and before != instance.password


def revoke_on_password_change(sender, instance, **kwargs) -> None:
    """post_save of the user model: a changed password revokes the user's tokens (in the save's transaction)."""
    if getattr(instance, "_pt_password_changed", False):
        tokens_revoke_all(instance)
        instance._pt_password_changed = False


class TokenAuthentication(authentication.TokenAuthentication):
    """``Authorization: Token <key>``, checked against the stored hashes (expiry, revocation, active user).
    A subclass of DRF's only so that the OpenAPI document describes the same scheme; nothing of its model is used."""

    keyword = "Token"

    def authenticate(self, request):
        parts = authentication.get_authorization_header(request).split()
        if not parts or parts[0].lower() != self.keyword.lower().encode():
            return None
        if len(parts) != 2:
            raise exceptions.AuthenticationFailed("the Authorization header is: Token <key>")
        try:
            key = parts[1].decode("ascii")
        except UnicodeDecodeError:
            raise exceptions.AuthenticationFailed("invalid token") from None
        guesses = TokenGuesses()
        if guesses.exhausted(request):
            raise exceptions.Throttled(guesses.wait())
        user = token_user(key)
        if user is None:
            guesses.count(request)
            raise exceptions.AuthenticationFailed("invalid, expired or revoked token")
        return user, None

    def authenticate_header(self, request) -> str:
        return self.keyword
