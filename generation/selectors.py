"""Reads of requests shared by pages, the API and consumers.

``request_for_member`` and ``variation_for_member`` are how every front door loads a request or a variation by
id: a missing one ("no such request") or one on a show the user is not on ("not found") is ``NotFound`` (404).
"""

from django.db.models import QuerySet

from generation.models import GenerationRequest, RequestEvent, Variation
from portal.errors import NotFound
from portal.selectors import member_role


def request_for_member(user, request_id: int) -> GenerationRequest:
    found = (GenerationRequest.objects.select_related("shot__sequence__show", "plate", "model", "requested_by")
             .filter(pk=request_id).first())
    if found is None:
        raise NotFound("no such request")
    member_role(user, found.shot.sequence.show_id)
    return found


def variation_for_member(user, variation_id: int) -> Variation:
    found = (Variation.objects.select_related("request__shot__sequence__show", "request__plate", "request__model")
             .filter(pk=variation_id).first())
    if found is None:
        raise NotFound("no such variation")
    member_role(user, found.request.shot.sequence.show_id)
    return found


# Progress ticks are for live viewers; the audit trail keeps what people and workers decided (a request's start
# is its first variation's, which the trail keeps).
AUDIT_SKIP = ("variation.progress", "variation.frame", "release.progress", "request.started")


def audit_events(request_id: int) -> QuerySet[RequestEvent]:
    return (RequestEvent.objects.filter(request_id=request_id).exclude(type__in=AUDIT_SKIP)
            .select_related("actor").order_by("seq"))
