"""Fair share on the GPU queue: which claimable variation runs next.

A message on the GPU queue is a ticket for one variation's run, not a name: the worker that takes it claims the
variation that should run next (``services.variation_claim_next``). Next means: the highest request priority
first; among equal priorities, the person (or show, ``PT_FAIR_SHARE_BY``) with the fewest variations running now,
then the one served least recently, round-robin as InvokeAI's multi-user queue does; within one person, their
oldest request first, in index order. So one person's request of 24 variations does not hold a small request of
someone else's behind it for more than the variation already running.
"""

from collections import Counter
from datetime import UTC, datetime

from django.conf import settings
from django.db.models import Max, Q

from generation import leases
from generation.models import RequestStatus, Variation, VariationStatus

_ORIGIN = datetime.min.replace(tzinfo=UTC)
_SHARE_FIELDS = {"user": "request__requested_by_id", "show": "request__shot__sequence__show_id"}
CANDIDATES = 500  # looked at per ticket: the queue's head, by priority and age


def claimable() -> Q:
    """A variation a ticket may claim: queued, or running with a dead owner; its lease free; not cancelled."""
    return (Q(status__in=[VariationStatus.QUEUED, VariationStatus.RUNNING]) & leases.free()
            & ~Q(request__status=RequestStatus.CANCELLED))


def _share_field() -> str:
    return _SHARE_FIELDS.get(getattr(settings, "PT_FAIR_SHARE_BY", "user"), _SHARE_FIELDS["user"])


def next_variations(limit: int = 10) -> list[int]:
    """Up to ``limit`` claimable variation ids, the one that should run next first."""
    share = _share_field()
    rows = list(Variation.objects.filter(claimable())
                .order_by("-request__priority", "request__created_at", "request_id", "index")
                .values_list("pk", "request__priority", share, "request__created_at", "index")[:CANDIDATES])
    if not rows:
        return []
    sharers = {row[2] for row in rows}
    live = Variation.objects.filter(Q(status=VariationStatus.RUNNING) & ~leases.free(), **{f"{share}__in": sharers})
    running = Counter(live.values_list(share, flat=True))
    served = dict(Variation.objects.filter(started_at__isnull=False, **{f"{share}__in": sharers})
                  .values(share).annotate(last=Max("started_at")).values_list(share, "last"))

    def key(row):
        pk, priority, sharer, created, index = row
        return -priority, running[sharer], served.get(sharer) or _ORIGIN, created, index

    return [row[0] for row in sorted(rows, key=key)[:limit]]
