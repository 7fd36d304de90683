"""Review actions from the request page: pick, reject all, note, sign off, send back."""

import json

from django.contrib.auth.decorators import login_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect
from django.views.decorators.http import require_POST

from generation.models import Variation
from generation.selectors import request_for_page
from portal.access import require_member
from portal.errors import NotFound, PortalError
from portal.views import portal_errors
from review import services
from review.models import SignOffDecision


def _variation(user, variation_id: int) -> Variation:
    variation = Variation.objects.select_related("request__shot__sequence", "request__plate").filter(pk=variation_id).first()
    if variation is None:
        raise NotFound("no such variation")
    require_member(user, variation.request.shot.sequence.show_id)
    return variation


def _back(request: HttpRequest, request_id: int) -> HttpResponse:
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    return redirect("request-detail", request_id=request_id)


@login_required
@require_POST
@portal_errors
def pick(request: HttpRequest, variation_id: int) -> HttpResponse:
    variation = _variation(request.user, variation_id)
    services.pick_make(user=request.user, variation=variation, note=request.POST.get("note", ""))
    return _back(request, variation.request_id)


@login_required
@require_POST
@portal_errors
def reject_all(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    services.pick_reject_all(user=request.user, request=gen_request, note=request.POST.get("note", ""))
    return _back(request, request_id)


@login_required
@require_POST
@portal_errors
def note(request: HttpRequest, variation_id: int) -> HttpResponse:
    variation = _variation(request.user, variation_id)
    frame = request.POST.get("frame", "")
    try:
        shape = json.loads(request.POST.get("shape") or "null")
    except ValueError:
        raise PortalError("the shape is not JSON", code="shape") from None
    services.note_add(user=request.user, variation=variation, text=request.POST.get("text", ""),
                      frame=int(frame) if frame.lstrip("-").isdigit() else None, shape=shape)
    return _back(request, variation.request_id)


_DECISIONS = {"approve": SignOffDecision.APPROVED, "send_back": SignOffDecision.SENT_BACK}  # the page's buttons


@login_required
@require_POST
@portal_errors
def signoff(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    decision = _DECISIONS.get(request.POST.get("decision", ""))
    if decision is None:  # a form without a decision approves nothing
        raise PortalError(f"say what the sign-off decides: decision is {' or '.join(_DECISIONS)}", code="decision")
    services.signoff_decide(user=request.user, request=gen_request, decision=decision,
                            note=request.POST.get("note", ""), variation=_named_variation(request, gen_request))
    return _back(request, request_id)


def _named_variation(request: HttpRequest, gen_request) -> Variation | None:
    """The variation a sign-off names (tasks without a pick); it must belong to the request."""
    text = request.POST.get("variation", "").strip()
    if not text:
        return None
    variation = Variation.objects.filter(pk=int(text) if text.isdigit() else 0, request=gen_request).first()
    if variation is None:
        raise PortalError("no such variation on this request", code="variation")
    return variation
