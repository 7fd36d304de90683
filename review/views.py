"""The review room: the request page (the director's player), and its actions: pick, reject all, note, sign
off, send back."""

import json
import re

from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from generation import proxies, roto_keyframes
from generation.engine import task_kinds
from generation.models import GenerationRequest, Variation
from generation.selectors import request_for_member, variation_for_member
from portal.access import require_member
from portal.colour import show_colour
from portal.errors import PortalError
from portal.models import CAN_PICK, CAN_REQUEST, CAN_SIGN_OFF
from portal.pages import action, page
from review import services, sessions
from review.models import SignOffDecision


@page
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_member(request.user, request_id)
    role = require_member(request.user, gen_request.show.pk)
    show = gen_request.show
    colour_settings = show_colour(show)
    browser = {(dv.display, dv.view) for dv in sessions.browser_display_views(show)}  # proxies are sRGB JPEGs
    origin = (Variation.objects.select_related("request").filter(pk=gen_request.derived_from_id).first()
              if gen_request.derived_from_id else None)
    return render(request, "review/request.html", {
        "req": gen_request, "shot": gen_request.shot, "show": show, "role": role,
        "variations": gen_request.variations.all(), "pick": services.current_pick(gen_request.pk),
        "needs_pick": task_kinds.task_info(gen_request.task).needs_pick,
        "element_matte": task_kinds.task_info(gen_request.task).element == "matte",
        "roto_pass": roto_keyframes.roto_set_for_request(gen_request),
        "can_pick": role in CAN_PICK, "can_sign_off": role in CAN_SIGN_OFF, "can_request": role in CAN_REQUEST,
        "origin": origin, "iterations": GenerationRequest.objects.filter(derived_from__request=gen_request)
        .select_related("derived_from", "requested_by").order_by("created_at"),
        "display_views": [dv.as_dict() | {"browser": (dv.display, dv.view) in browser}
                          for dv in proxies.display_views(colour_settings)],
        "show_display": colour_settings.display, "show_view": colour_settings.view})


def _back(request: HttpRequest, request_id: int) -> HttpResponse:
    if request.headers.get("X-Requested-With") == "fetch":
        return HttpResponse(status=204)
    return redirect("request-detail", request_id=request_id)


@action
def pick(request: HttpRequest, variation_id: int) -> HttpResponse:
    variation = variation_for_member(request.user, variation_id)
    services.pick_make(user=request.user, variation=variation, note=request.POST.get("note", ""),
                       override=request.POST.get("override_coverage") == "1")
    return _back(request, variation.request_id)


@action
def reject_all(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_member(request.user, request_id)
    services.pick_reject_all(user=request.user, request=gen_request, note=request.POST.get("note", ""))
    return _back(request, request_id)


def _frame(text: str) -> int | None:
    """A note's frame: empty for none, else a whole number in ASCII digits (not '--1', not '²')."""
    text = text.strip()
    if not text:
        return None
    if not re.fullmatch(r"-?[0-9]{1,10}", text):
        raise PortalError(f"the note's frame must be a whole number, not {text[:20]!r}", code="frame")
    return int(text)


@action
def note(request: HttpRequest, variation_id: int) -> HttpResponse:
    variation = variation_for_member(request.user, variation_id)
    frame = request.POST.get("frame", "")
    try:
        shape = json.loads(request.POST.get("shape") or "null")
    except (ValueError, RecursionError):
        raise PortalError("the shape is not JSON", code="shape") from None
    services.note_add(user=request.user, variation=variation, text=request.POST.get("text", ""),
                      frame=_frame(frame), shape=shape)
    return _back(request, variation.request_id)


_DECISIONS = {"approve": SignOffDecision.APPROVED, "send_back": SignOffDecision.SENT_BACK}  # the page's buttons


@action
def signoff(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = request_for_member(request.user, request_id)
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
