"""API throttles whose rates are read from settings.PT_API_RATES when a request comes (not when DRF loads), and the
login throttle's backend."""

from axes.backends import AxesStandaloneBackend
from django.conf import settings
from rest_framework.throttling import AnonRateThrottle, SimpleRateThrottle, UserRateThrottle


class UserRate(UserRateThrottle):
    def get_rate(self) -> str:
        return settings.PT_API_RATES["user"]


class AnonRate(AnonRateThrottle):
    def get_rate(self) -> str:
        return settings.PT_API_RATES["anon"]


class TokenGuesses(SimpleRateThrottle):
    """Wrong, expired or revoked tokens from one address, at the anonymous rate; checked by the token
    authentication itself, since DRF refuses a bad token (401) before its throttles run."""

    scope = "token_guesses"

    def get_rate(self) -> str:
        return settings.PT_API_RATES["anon"]

    def get_cache_key(self, request, view) -> str:
        return self.cache_format % {"scope": self.scope, "ident": self.get_ident(request)}

    def exhausted(self, request) -> bool:
        """Whether this address has used up its guesses in the window (then even a right key waits)."""
        self.key = self.get_cache_key(request, None)
        self.history = self.cache.get(self.key, [])
        self.now = self.timer()
        while self.history and self.history[-1] <= self.now - self.duration:
            self.history.pop()
        return len(self.history) >= self.num_requests

    def count(self, request) -> None:
        if not self.exhausted(request):
            self.throttle_success()


class LoginThrottle(AxesStandaloneBackend):
    """django-axes' lockout check for every login that comes with a request (the login page, the admin: every
    login over HTTP). A call without one (a script, the test client's ``login``) has nothing to throttle by and
    goes on to the next backend instead of failing."""

    def authenticate(self, request, username=None, password=None, **kwargs):
        if request is None:
            return None
        return super().authenticate(request, username=username, password=password, **kwargs)
