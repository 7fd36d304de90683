"""Reads of the catalogue that views, consumers and the API share."""

from django.db.models import Prefetch, QuerySet

from portal.models import Membership, Role, Sequence, Shot, Show


def role_on_show(user, show_id: int) -> Role | None:
    if not user.is_authenticated:
        return None
    role = Membership.objects.filter(user=user, show_id=show_id).values_list("role", flat=True).first()
    return Role(role) if role else None


def shows_for(user) -> QuerySet[Show]:
    if not user.is_authenticated:
        return Show.objects.none()
    return Show.objects.filter(memberships__user=user).distinct()


def catalogue_for(user) -> list[tuple[Show, str]]:
    """Every show the user belongs to, with its sequences and shots prefetched, and the user's role."""
    roles = dict(Membership.objects.filter(user=user).values_list("show_id", "role"))
    shots = Shot.objects.order_by("code")
    sequences = Sequence.objects.order_by("code").prefetch_related(Prefetch("shots", queryset=shots))
    shows = Show.objects.filter(pk__in=roles).prefetch_related(Prefetch("sequences", queryset=sequences))
    return [(show, roles[show.pk]) for show in shows]


def shot_with_show(shot_id: int) -> Shot | None:
    return Shot.objects.select_related("sequence__show").filter(pk=shot_id).first()
