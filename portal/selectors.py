"""Reads of the catalogue that views, consumers and the API share.

The ``*_for_member`` selectors are the one way a front door loads a show or a shot by what a user typed: an
outsider, like a missing row, gets ``NotFound`` (a 404 that says nothing of the show).
"""

from django.db.models import Prefetch

from portal.errors import NotFound
from portal.models import Membership, Role, Sequence, Shot, Show


def role_on_show(user, show_id: int) -> Role | None:
    if not user.is_authenticated:
        return None
    role = Membership.objects.filter(user=user, show_id=show_id).values_list("role", flat=True).first()
    return Role(role) if role else None


def member_role(user, show_id: int | None) -> Role:
    """The user's role on the show; outsiders learn nothing, not even that the show exists."""
    role = role_on_show(user, show_id) if show_id is not None else None
    if role is None:
        raise NotFound("not found")
    return role


def catalogue_for(user) -> list[tuple[Show, str]]:
    """Every show the user belongs to, with its sequences and shots prefetched, and the user's role."""
    roles = dict(Membership.objects.filter(user=user).values_list("show_id", "role"))
    shots = Shot.objects.order_by("code")
    sequences = Sequence.objects.order_by("code").prefetch_related(Prefetch("shots", queryset=shots))
    shows = Show.objects.filter(pk__in=roles).prefetch_related(Prefetch("sequences", queryset=sequences))
    return [(show, roles[show.pk]) for show in shows]


def show_for_member(user, code: str) -> tuple[Show, Role]:
    show = Show.objects.filter(code=code).first()
    return show, member_role(user, show.pk if show else None)


def shot_for_member(user, shot_id: int) -> tuple[Shot, Role]:
    shot = Shot.objects.select_related("sequence__show").prefetch_related("plates").filter(pk=shot_id).first()
    if shot is None:
        raise NotFound("no such shot")
    return shot, member_role(user, shot.sequence.show_id)
