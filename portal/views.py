"""Catalogue pages: the shows and shots a user may see; the user's own API tokens."""

from django.conf import settings
from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils import timezone

from portal import tokens
from portal.errors import PortalError
from portal.pages import action, portal_errors
from portal.selectors import catalogue_for


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html", {"catalogue": catalogue_for(request.user)})


@login_required
@portal_errors
def api_tokens(request: HttpRequest) -> HttpResponse:
    """The user's API tokens: listed (never the keys), a new one made (its key shown this once)."""
    new_key, error, status = None, None, 200
    if request.method == "POST":
        days = request.POST.get("days", "").strip()
        try:
            _, new_key = tokens.token_issue(user=request.user, name=request.POST.get("name", ""), days=(
                None if not days else int(days) if days.isdigit() and len(days) <= 3 else 0))  # 0: refused
        except PortalError as exc:
            error, status = exc.message, exc.status
    return render(request, "portal/tokens.html", {
        "tokens": tokens.tokens_of(request.user), "new_key": new_key, "error": error, "now": timezone.now(),
        "default_days": settings.PT_TOKEN_DAYS, "max_days": tokens.MAX_DAYS}, status=status)


@action
def api_token_revoke(request: HttpRequest, token_id: int) -> HttpResponse:
    tokens.token_revoke(user=request.user, token_id=token_id)
    return redirect("api-tokens")
