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


@login_required
@require_POST
@portal_errors
def signoff(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    if request.POST.get("decision") == "send_back":
        services.signoff_send_back(user=request.user, request=gen_request, note=request.POST.get("note", ""))
    else:
        services.signoff_approve(user=request.user, request=gen_request, note=request.POST.get("note", ""))
    return _back(request, request_id)
