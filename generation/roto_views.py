"""Roto pages: draw key frames on the shot's plate, ask for a pass, watch its mattes land over the plate, fix a
frame for the next pass, lock and unlock frames; the pass history. Every read goes through ``shot_for_member``
(an outsider gets 404); every write is a service of :mod:`generation.roto_keyframes`."""

import json
import re

from django.http import FileResponse, HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse

from generation import roto_keyframes as keyframes
from generation import roto_proxies
from generation.models import RotoSet
from portal.errors import NotFound, PortalError
from portal.models import CAN_REQUEST
from portal.pages import action, page
from portal.selectors import shot_for_member


def _jpeg(path) -> HttpResponse:
    response = FileResponse(open(path, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, no-cache"  # a key frame can be redrawn: ask again, 304 when unchanged
    return response


def _roto_set(request: HttpRequest, shot_id: int, name: str):
    shot, role = shot_for_member(request.user, shot_id)
    return keyframes.roto_set_of(shot, name), role


@page
def roto_list(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, role = shot_for_member(request.user, shot_id)
    sets = RotoSet.objects.filter(shot=shot).select_related("created_by").order_by("name")
    return render(request, "generation/roto_list.html", {
        "shot": shot, "show": shot.show, "role": role, "sets": sets, "can_request": role in CAN_REQUEST})


@action
def roto_new(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, _ = shot_for_member(request.user, shot_id)
    created = keyframes.roto_set_create(user=request.user, shot=shot)
    return redirect("roto-detail", shot_id=shot.pk, name=created.name)


@page
def roto_detail(request: HttpRequest, shot_id: int, name: str) -> HttpResponse:
    roto_set, role = _roto_set(request, shot_id, name)
    shot = roto_set.shot
    plate = shot.plates.order_by("pk").first()
    if plate is None:
        raise NotFound("the shot has no plate")
    return render(request, "generation/roto.html", {
        "shot": shot, "show": shot.show, "role": role, "roto": roto_set, "plate": plate,
        "can_request": role in CAN_REQUEST, "tools": keyframes.TOOLS})


def state(roto_set: RotoSet) -> dict:
    """What the roto page shows, as JSON: key frames (who, when), locks, passes newest last."""
    shot = roto_set.shot
    keys = keyframes.current_keys(roto_set)
    passes = []
    for p in roto_set.passes.select_related("request").order_by("number"):
        variation = p.request.variations.first()
        passes.append({
            "number": p.number, "request": p.request_id, "status": p.request.status,
            "status_label": p.request.get_status_display(), "variation": variation.pk if variation else None,
            "variation_status": variation.status if variation else "", "frames_done": variation.frames_done if variation else 0,
            "first": p.request.first_frame, "last": p.request.last_frame, "keyframes": sorted(int(f) for f in p.keyframes),
            "kept": len(p.locked), "recomputed": p.recomputed, "url": reverse("request-detail", args=[p.request_id]),
            "error": variation.error[:300] if variation else ""})
    return {
        "set": roto_set.name, "shot": shot.pk, "locked": roto_set.locked, "passes": passes,
        "keys": [{"frame": f, "id": row.pk, "by": row.drawn_by.username, "at": row.drawn_at.isoformat(),
                  "tools": sorted({s.get("tool", "") for s in row.shapes if isinstance(s, dict)}),
                  "matte": reverse("roto-key-matte", args=[shot.pk, roto_set.name, f]) + f"?r={row.pk}"}
                 for f, row in sorted(keys.items())]}


@page
def roto_state(request: HttpRequest, shot_id: int, name: str) -> HttpResponse:
    roto_set, _ = _roto_set(request, shot_id, name)
    return JsonResponse(state(roto_set))


def _body(request: HttpRequest) -> dict:
    try:
        body = json.loads(request.body or b"{}")
    except (ValueError, RecursionError):
        raise PortalError("the body is not JSON", code="body") from None
    if not isinstance(body, dict):
        raise PortalError("the body is a JSON object", code="body")
    return body


@action
def roto_key_draw(request: HttpRequest, shot_id: int, name: str, frame: int) -> HttpResponse:
    """Rasterise the shapes drawn on ``frame`` (JSON ``{"shapes": [...]}``) into the set's key frame there."""
    roto_set, _ = _roto_set(request, shot_id, name)
    keyframes.keyframe_draw(user=request.user, roto_set=roto_set, frame=frame, shapes=_body(request).get("shapes"))
    roto_set.refresh_from_db()
    return JsonResponse(state(roto_set))


@action
def roto_lock(request: HttpRequest, shot_id: int, name: str, frame: int) -> HttpResponse:
    roto_set, _ = _roto_set(request, shot_id, name)
    locked = request.POST.get("locked", "")
    if locked not in ("0", "1"):
        raise PortalError("locked is 1 (lock) or 0 (unlock)", code="locked")
    keyframes.frame_lock(user=request.user, roto_set=roto_set, frame=frame, locked=locked == "1")
    roto_set.refresh_from_db()
    return JsonResponse(state(roto_set))


@action
def roto_pass(request: HttpRequest, shot_id: int, name: str) -> HttpResponse:
    """Ask for the next pass from the key frames now (the first may name ``first_frame`` / ``last_frame``)."""
    roto_set, _ = _roto_set(request, shot_id, name)
    frames = {}
    for field in ("first_frame", "last_frame"):
        text = request.POST.get(field, "").strip()
        if text:
            if not re.fullmatch(r"-?[0-9]{1,9}", text):  # ASCII digits: not '²', not '--1'
                raise PortalError(f"{field} must be a whole number", code=field)
            frames[field] = int(text)
    keyframes.pass_request(user=request.user, roto_set=roto_set, **frames)
    roto_set.refresh_from_db()
    return JsonResponse(state(roto_set), status=201)


@page
def shot_plate_proxy(request: HttpRequest, shot_id: int, frame: int) -> HttpResponse:
    """The shot's plate at a plate frame, in the show's display/view: what key frames are drawn on."""
    shot, _ = shot_for_member(request.user, shot_id)
    plate = shot.plates.order_by("pk").first()
    if plate is None:
        raise NotFound("the shot has no plate")
    try:
        keyframes.check_frame(plate, frame)
    except PortalError as exc:
        raise NotFound(exc.message) from None
    return _jpeg(roto_proxies.shot_plate(plate, frame))


@page
def roto_key_matte(request: HttpRequest, shot_id: int, name: str, frame: int) -> HttpResponse:
    roto_set, _ = _roto_set(request, shot_id, name)
    row = keyframes.current_keys(roto_set).get(frame)
    if row is None:
        raise NotFound(f"frame {frame} is not a key frame of this roto")
    return _jpeg(roto_proxies.key_matte(row, roto_set.shot.plates.order_by("pk").first()))
