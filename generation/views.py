"""Generation pages: a shot (its plates, models and requests, the form that asks for variations), a new
request, cancel, the audit trail, and the proxies a request streams. The review room is review's."""

import csv
from pathlib import Path
from urllib.parse import quote

from django.conf import settings
from django.http import FileResponse, HttpRequest, HttpResponse
from django.shortcuts import redirect, render

from generation import crops, proxies, roto_proxies, selectors, services
from generation.engine import task_kinds
from generation.grain_chart import grain_chart
from generation.models import GenerationModel, ModelStatus, Task, Variation, coverage_text
from portal.errors import NotFound, PortalError
from portal.models import CAN_RAISE_PRIORITY, CAN_REQUEST, Role
from portal.pages import action, page
from portal.selectors import shot_for_member


@page
def shot_detail(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, role = shot_for_member(request.user, shot_id)
    show = shot.show
    models = GenerationModel.objects.filter(status=ModelStatus.APPROVED, approved_shows=show)
    pending = services.model_approvable_for(show) if role == Role.SUPERVISOR else []
    requests = shot.requests.select_related("requested_by", "model", "derived_from__request").order_by("-created_at")
    return render(request, "generation/shot.html", {
        "shot": shot, "show": show, "role": role, "requests": requests,
        "plates": [(plate, grain_chart(plate.grain_profile)) for plate in shot.plates.all()],
        "models": models, "pending_models": pending, "can_request": role in CAN_REQUEST, "tasks": Task.choices,
        "model_optional": any(not info.needs_model for info in task_kinds.TASKS.values()),
        "released_mattes": selectors.released_mattes(shot.pk),
        "element_tasks": " ".join(t for t, info in task_kinds.TASKS.items() if info.region == "element"),
        "priorities": [(value, name) for value, name in services.PRIORITIES.items()
                       if value <= 0 or role in CAN_RAISE_PRIORITY],
        "element_sources": selectors.element_sources(shot), "form": _request_form(request, shot)})


def _request_form(request: HttpRequest, shot) -> dict:
    """The "Ask for variations" form's values: the shot's defaults, or "iterate from here" (?from=<variation>),
    which copies the variation's request (same plate range, region, model, prompt, task) and its seed;
    ?rect=x,y,w,h (drawn on the review page) replaces the region."""
    form = {"task": services.DEFAULT_TASK, "model": None, "first_frame": shot.first_frame,
            "last_frame": shot.last_frame, "count": 4, "steps": 25, "matte_pattern": "", "rect": "", "prompt": "",
            "base_seed": "", "strength": "", "origin": None, "priority": 0}
    origin_id = request.GET.get("from", "")
    origin = (Variation.objects.select_related("request").filter(pk=int(origin_id), request__shot=shot).first()
              if origin_id.isdigit() else None)
    if origin is not None:
        source = origin.request
        form.update(task=source.task, model=source.model_id, first_frame=source.first_frame,
                    last_frame=source.last_frame, count=source.count, steps=source.steps,
                    matte_pattern=source.matte_pattern, rect=" ".join(map(str, source.rect or [])),
                    prompt=source.prompt, base_seed=origin.seed, origin=origin,
                    strength="" if source.strength is None else f"{source.strength:g}")
    drawn = request.GET.get("rect", "").replace(",", " ").split()
    if len(drawn) == 4 and all(v.isdigit() for v in drawn):
        form.update(rect=" ".join(drawn), matte_pattern="")
    return form


_INT64 = 2**63  # the database's integers; a larger number would fail in the database, not here


def _int(value: str | None, name: str, *, low: int = -_INT64 + 1, high: int = _INT64 - 1) -> int:
    try:
        number = int(value or "")
    except ValueError:
        raise PortalError(f"{name} must be a whole number", code=name) from None
    if not low <= number <= high:
        raise PortalError(f"{name} must be from {low} to {high}", code=name)
    return number


def _rect(text: str) -> list[int] | None:
    if not text.strip():
        return None
    parts = text.replace(",", " ").split()
    if len(parts) != 4:
        raise PortalError("the rectangle is four numbers: x y width height", code="rect")
    return [_int(p, "rect") for p in parts]


@action
def request_new(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, _ = shot_for_member(request.user, shot_id)
    chosen = request.POST.get("model", "").strip()
    model = GenerationModel.objects.filter(pk=_int(chosen, "model")).first() if chosen else None
    if model is None and (chosen or services.task_needs_model(request.POST.get("task", services.DEFAULT_TASK))):
        raise PortalError("choose a generation model", code="model")
    seed = request.POST.get("base_seed", "").strip()
    release = request.POST.get("matte_release", "").strip()  # a released roto as the matte, if one is chosen
    created = services.request_create(
        base_seed=_int(seed, "base_seed", low=0, high=2**62) if seed else None, derived_from=_derived_from(request),
        user=request.user, shot=shot, model=model, first_frame=_int(request.POST.get("first_frame"), "first_frame"),
        last_frame=_int(request.POST.get("last_frame"), "last_frame"), count=_int(request.POST.get("count"), "count"),
        task=request.POST.get("task", services.DEFAULT_TASK), matte_pattern=request.POST.get("matte_pattern", ""),
        rect=_rect(request.POST.get("rect", "")), prompt=request.POST.get("prompt", ""),
        steps=_int(request.POST.get("steps") or "25", "steps"), strength=_strength(request.POST.get("strength", "")),
        matte_release=_int(release, "matte_release", low=1) if release else None,
        params=_element_params(request), priority=_int(request.POST.get("priority") or "0", "priority"))
    return redirect("request-detail", request_id=created.pk)


def _element_params(request: HttpRequest) -> dict | None:
    """A task on an element (upscale): the chosen source, ``{"variation": id}`` (checked by the service: a finished
    variation of this shot); other tasks take no params from the form."""
    task = request.POST.get("task", services.DEFAULT_TASK)
    if task not in task_kinds.TASKS or task_kinds.TASKS[task].region != "element":
        return None
    source = request.POST.get("source", "").strip()
    if not source:
        raise PortalError("choose the element to start from (a variation, a released element or a roto matte)",
                          code="source")
    return {"variation": _int(source, "source", low=1)}


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
    try:
        return selectors.variation_for_member(request.user, _int(text, "derived_from"))
    except NotFound:
        raise PortalError("the variation to iterate from does not exist", code="derived_from") from None


@action
def model_approve(request: HttpRequest, shot_id: int, model_id: int) -> HttpResponse:
    """A supervisor approves a pending model for the shot's show (the service checks the role). A model the
    show may not approve (another show's, retired, unknown) is the same 404 as a missing one."""
    shot, role = shot_for_member(request.user, shot_id)
    model = GenerationModel.objects.filter(pk=model_id).first()
    if model is None or (role == Role.SUPERVISOR and model not in services.model_approvable_for(shot.show)):
        raise NotFound("no such model")
    services.model_approve(user=request.user, model=model, show_id=shot.show.pk)
    return redirect("shot-detail", shot_id=shot_id)


@action
def request_cancel(request: HttpRequest, request_id: int) -> HttpResponse:
    gen_request = selectors.request_for_member(request.user, request_id)
    services.request_cancel(user=request.user, request=gen_request)
    return redirect("request-detail", request_id=request_id)


@page
def request_audit_csv(request: HttpRequest, request_id: int) -> HttpResponse:
    """The request's audit trail: every event with who and when, oldest first."""
    selectors.request_for_member(request.user, request_id)
    response = HttpResponse(content_type="text/csv")
    response["Content-Disposition"] = f'attachment; filename="request-{request_id}-audit.csv"'
    writer = csv.writer(response)
    writer.writerow(["seq", "time", "event", "who", "variation", "note", "detail"])
    for event in selectors.audit_events(request_id):
        payload = event.payload
        who = event.actor.username if event.actor else payload.get("by", "")
        label = payload.get("label") or (f"v{payload['index'] + 1:02d}" if "index" in payload else "")
        detail = payload.get("path") or payload.get("error") or (
            f"coverage override ({coverage_text(payload['coverage'])})" if payload.get("override_coverage") else "")
        writer.writerow([event.seq, event.created_at.isoformat(), event.type] +
                        [csv_cell(cell) for cell in (who, label, _note_text(payload), detail)])
    return response


def _note_text(payload: dict) -> str:
    """What a person wrote: a note's ``text`` (its ``note`` is the note's id), or a pick's or sign-off's ``note``."""
    for key in ("text", "note"):
        if isinstance(payload.get(key), str) and payload[key]:
            return payload[key]
    return ""


# A spreadsheet runs a cell that starts with one of these as a formula (CSV injection); tab and CR too.
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


def csv_cell(value) -> str:
    """A cell of text someone typed, safe to open in a spreadsheet: a leading formula character is quoted
    with ``'`` (shown, never run)."""
    text = "" if value is None else str(value)
    return f"'{text}" if text.startswith(_FORMULA_STARTS) else text


def _proxy_response(path: Path) -> HttpResponse:
    location = _accel_location(path)
    if location:  # nginx in front: it sends the file, now that the role check has passed
        response = HttpResponse(content_type="image/jpeg")
        response["X-Accel-Redirect"] = location
    else:
        response = FileResponse(open(path, "rb"), content_type="image/jpeg")
    response["Cache-Control"] = "private, max-age=3600"  # deterministic: a frame's proxy never changes
    return response


def _accel_location(path: Path) -> str | None:
    """nginx's internal location of a file in the work root (PT_MEDIA_ACCEL_PREFIX, deploy/nginx), or None to
    stream it from here (no nginx in front, or a file outside the work root). The path is already resolved and
    checked against the show's roots; only its part under the work root is sent, percent-encoded."""
    prefix = settings.PT_MEDIA_ACCEL_PREFIX
    if not prefix:
        return None
    try:
        relative = path.resolve().relative_to(Path(settings.WORK_ROOT).resolve())
    except ValueError:
        return None
    return prefix.rstrip("/") + "/" + quote(relative.as_posix())


@page
def variation_proxy(request: HttpRequest, variation_id: int, frame: int) -> HttpResponse:
    """A variation's proxy at a frame: ?kind=incontext|element, ?display=&view= from the show's config; a matte
    element (roto) also ?kind=matte (alone, grey) or outline (its edge over the plate)."""
    variation = selectors.variation_for_member(request.user, variation_id)
    if request.GET.get("kind") in roto_proxies.KINDS:
        return _proxy_response(roto_proxies.variation_matte(variation, frame, request.GET["kind"]))
    path = proxies.variation_proxy(variation, frame, kind=request.GET.get("kind", "incontext"),
                                   display=request.GET.get("display", ""), view=request.GET.get("view", ""))
    return _proxy_response(path)


@page
def plate_proxy(request: HttpRequest, request_id: int, frame: int) -> HttpResponse:
    """The request's plate at a frame, in the show's display/view or ?display=&view=."""
    gen_request = selectors.request_for_member(request.user, request_id)
    path = proxies.plate_proxy(gen_request, frame, display=request.GET.get("display", ""),
                               view=request.GET.get("view", ""))
    return _proxy_response(path)


def _optional_int(value: str | None, name: str) -> int | None:
    return None if value in (None, "") else _int(value, name)


@page
def variation_crop(request: HttpRequest, variation_id: int) -> HttpResponse:
    """The 1:1 crop review: the plate beside the element over it, full resolution (?frame=&x=&y=&size=)."""
    variation = selectors.variation_for_member(request.user, variation_id)
    gen_request = variation.request
    size = _int(request.GET.get("size") or "256", "size")
    x, y = crops.crop_box(variation, _optional_int(request.GET.get("x"), "x"), _optional_int(request.GET.get("y"), "y"),
                          size)
    frame = _optional_int(request.GET.get("frame"), "frame") or gen_request.first_frame
    return render(request, "generation/crop.html", {
        "variation": variation, "shot": gen_request.shot, "show": gen_request.show, "frame": frame,
        "x": x, "y": y, "size": size, "sizes": crops.SIZES, "first": gen_request.first_frame,
        "last": gen_request.last_frame})


@page
def variation_crop_image(request: HttpRequest, variation_id: int, which: str, frame: int) -> HttpResponse:
    variation = selectors.variation_for_member(request.user, variation_id)
    size = _int(request.GET.get("size") or "256", "size")
    x, y = crops.crop_box(variation, _optional_int(request.GET.get("x"), "x"), _optional_int(request.GET.get("y"), "y"),
                          size)
    return _proxy_response(crops.crop_jpeg(variation, frame, which, x, y, size))
