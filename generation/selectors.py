"""Reads of requests shared by pages, the API and consumers."""

from generation.models import GenerationRequest
from portal.errors import NotFound


def request_for_page(request_id: int) -> GenerationRequest:
    found = (GenerationRequest.objects.select_related("shot__sequence__show", "plate", "model", "requested_by")
             .filter(pk=request_id).first())
    if found is None:
        raise NotFound("no such request")
    return found
