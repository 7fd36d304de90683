"""Request pages: create a request from a shot, watch it, cancel it; the proxies it streams."""

import csv
from pathlib import Path

from django.contrib.auth.decorators import login_required
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.views.decorators.http import require_POST

from generation import proxies, selectors, services
from generation.models import GenerationModel, GenerationRequest, Variation
from portal.access import require_member
from portal.colour import show_colour
from portal.errors import NotFound, PortalError
from portal.models import CAN_PICK, CAN_REQUEST, CAN_SIGN_OFF
from portal.views import portal_errors, shot_for
from review.services import current_pick


def _int(value: str | None, name: str) -> int:
    try:
        return int(value or "")
    except ValueError:
        raise PortalError(f"{name} must be a whole number", code=name) from None


def _rect(text: str) -> list[int] | None:
    if not text.strip():
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != 4:
        raise PortalError("the rectangle is four numbers: x y width height", code="rect")
    return [_int(p, "rect") for p in parts]


@login_required
@require_POST
@portal_errors
def request_new(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, _ = shot_for(request.user, shot_id)
    model = GenerationModel.objects.filter(pk=_int(request.POST.get("model"), "model")).first()
    if model is None:
        raise PortalError("choose a generation model", code="model")
    seed = request.POST.get("base_seed", "").strip()
    created = services.request_create(
        base_seed=_int(seed, "base_seed") if seed else None, derived_from=_derived_from(request),
        user=request.user, shot=shot, model=model, first_frame=_int(request.POST.get("first_frame"), "first_frame"),
        last_frame=_int(request.POST.get("last_frame"), "last_frame"), count=_int(request.POST.get("count"), "count"),
        task=request.POST.get("task", "sky_replacement"), matte_pattern=request.POST.get("matte_pattern", ""),
        rect=_rect(request.POST.get("rect", "")), prompt=request.POST.get("prompt", ""),
        steps=_int(request.POST.get("steps") or "25", "steps"), strength=_strength(request.POST.get("strength", "")))
    return redirect("request-detail", request_id=created.pk)


def _strength(text: str) -> float | None:
    text = text.strip()
    if not text:
        return None
    try:
        return float(text)
    except ValueError:
        raise PortalError(f"strength must be a number, got {text!r}", code="strength") from None


def _derived_from(request: HttpRequest) -> Variation | None:
    """The variation a request iterates from ("iterate from here"), which the user must be able to see."""
    text = request.POST.get("derived_from", "").strip()
    if not text:
        return None
    variation = Variation.objects.select_related("request__shot__sequence").filter(
        pk=_int(text, "derived_from")).first()
    if variation is None:
        raise PortalError("the variation to iterate from does not exist", code="derived_from")
    require_member(request.user, variation.request.shot.sequence.show_id)
    return variation


@login_required
@require_POST
@portal_errors
def model_approve(request: HttpRequest, shot_id: int, model_id: int) -> HttpResponse:
    """A supervisor approves a pending model for the shot's show (the service checks the role)."""
    shot, _ = shot_for(request.user, shot_id)
    model = GenerationModel.objects.filter(pk=model_id).first()
    if model is None:
        raise NotFound("no such model")
    services.model_approve(user=request.user, model=model, show_id=shot.sequence.show_id)
    return redirect("shot-detail", shot_id=shot_id)


@login_required
@portal_errors
def request_detail(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = selectors.request_for_page(request_id)
    role = require_member(request.user, gen_request.shot.sequence.show_id)
    show = gen_request.shot.sequence.show
    colour_settings = show_colour(show)
    origin = (Variation.objects.select_related("request").filter(pk=gen_request.derived_from_id).first()
              if gen_request.derived_from_id else None)
    return render(request, "generation/request.html", {
        "req": gen_request, "shot": gen_request.shot, "show": show, "role": role,
        "variations": gen_request.variations.all(), "pick": current_pick(gen_request.pk),
        "can_pick": role in CAN_PICK, "can_sign_off": role in CAN_SIGN_OFF, "can_request": role in CAN_REQUEST,
        "origin": origin, "iterations": GenerationRequest.objects.filter(derived_from__request=gen_request)
        .select_related("derived_from", "requested_by").order_by("created_at"),
        "display_views": [dv.as_dict() for dv in proxies.display_views(colour_settings)],
        "show_display": colour_settings.display, "show_view": colour_settings.view})


@login_required
@require_POST
@portal_errors
def request_cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = selectors.request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    services.request_cancel(user=request.user, request=gen_request)
    return redirect("request-detail", request_id=request_id)


@login_required
@portal_errors
def request_audit_csv(request: HttpRequest, request_id: int) -> HttpResponse:
    """The request's audit trail: every event with who and when, oldest first."""
    gen_request = selectors.request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="request-{request_id}-audit.csv"'
    writer = csv.writer(response)
    writer.writerow(["seq", "time", "event", "who", "variation", "note", "detail"])
    for event in selectors.audit_events(request_id):
        payload = event.payload
        who = event.actor.username if event.actor else payload.get("by", "")
        label = payload.get("label") or (f"v{payload['index'] + 1:02d}" if "index" in payload else "")
        detail = payload.get("path") or payload.get("error") or ""
        writer.writerow([event.seq, event.created_at.isoformat(), event.type, who, label,
                         payload.get("note") or payload.get("text") or "", detail])
    return response


def _proxy_response(path: Path) -> HttpResponse:
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"  # deterministic: a frame's proxy never changes
    return response


@login_required
@portal_errors
def variation_proxy(request: HttpRequest, variation_id: int, frame: int) -> HttpResponse:
    """A variation's proxy at a frame: ?kind=incontext|element, ?display=&view= from the show's config."""
    variation = Variation.objects.select_related("request__shot__sequence__show", "request__plate").filter(
        pk=variation_id).first()
    if variation is None:
        raise NotFound("no such variation")
    require_member(request.user, variation.request.shot.sequence.show_id)
    path = proxies.variation_proxy(variation, frame, kind=request.GET.get("kind", "incontext"),
                                   display=request.GET.get("display", ""), view=request.GET.get("view", ""))
    return _proxy_response(path)


@login_required
@portal_errors
def plate_proxy(request: HttpRequest, request_id: int, frame: int) -> HttpResponse:
    """The request's plate at a frame, in the show's display/view or ?display=&view=."""
    gen_request = selectors.request_for_page(request_id)
    require_member(request.user, gen_request.shot.sequence.show_id)
    path = proxies.plate_proxy(gen_request, frame, display=request.GET.get("display", ""),
                               view=request.GET.get("view", ""))
    return _proxy_response(path)
