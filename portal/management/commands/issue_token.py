"""An operator makes an API token for a user: `manage.py issue_token --user cora --name "nuke ws-042" --days 30`.

Users make their own on the tokens page (/account/tokens/); the key is printed once and only its hash is kept."""

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError

from portal.errors import PortalError
from portal.tokens import token_issue


class Command(BaseCommand):
    help = "Make a named, expiring API token for a user and print its key (shown only this once)."

    def add_arguments(self, parser):
        parser.add_argument("--user", required=True, help="the username")
        parser.add_argument("--name", required=True, help="what the token is for, e.g. the machine or tool")
        parser.add_argument("--days", type=int, default=None, help="how long it lasts (default PT_TOKEN_DAYS)")

    def handle(self, *args, **opts):
        user = get_user_model().objects.filter(username=opts["user"], is_active=True).first()
        if user is None:
            raise CommandError(f"no active user {opts['user']!r}")
        try:
            token, key = token_issue(user=user, name=opts["name"], days=opts["days"])
        except PortalError as exc:
            raise CommandError(str(exc)) from exc
        self.stdout.write(f"token {token.name!r} for {user.username}, expires {token.expires_at:%Y-%m-%d}:")
        self.stdout.write(key)
