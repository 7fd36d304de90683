"""Reads of requests shared by pages, the API and consumers."""

from django.db.models import QuerySet

from generation.models import GenerationRequest, RequestEvent
from portal.errors import NotFound


def request_for_page(request_id: int) -> GenerationRequest:
    found = (GenerationRequest.objects.select_related("shot__sequence__show", "plate", "model", "requested_by")
             .filter(pk=request_id).first())
    if found is None:
        raise NotFound("no such request")
    return found


# Progress ticks are for live viewers; the audit trail keeps what people and workers decided (a request's start
# is its first variation's, which the trail keeps).
AUDIT_SKIP = ("variation.progress", "variation.frame", "release.progress", "request.started")


def audit_events(request_id: int) -> QuerySet[RequestEvent]:
    return (RequestEvent.objects.filter(request_id=request_id).exclude(type__in=AUDIT_SKIP)
            .select_related("actor").order_by("seq"))
