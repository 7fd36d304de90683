"""Catalogue pages: the shows and shots a user may see, and a shot."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from generation.models import GenerationModel, ModelStatus, Task, Variation
from portal.access import require_member
from portal.errors import Forbidden, NotFound, PortalError
from portal.models import CAN_REQUEST, Role
from portal.selectors import catalogue_for, shot_with_show


def portal_errors(view):
    """Translate service errors into pages: outsiders get 404, a wrong role 403, bad input 400."""

    @wraps(view)
    def wrapper(request: HttpRequest, *args, **kwargs):
        try:
            return view(request, *args, **kwargs)
        except NotFound as exc:
            raise Http404(exc.message) from exc
        except Forbidden as exc:
            return HttpResponseForbidden(exc.message)
        except PortalError as exc:
            return HttpResponse(exc.message, status=exc.status, content_type="text/plain")

    return wrapper


@login_required
def home(request: HttpRequest) -> HttpResponse:
    return render(request, "portal/home.html", {"catalogue": catalogue_for(request.user)})


def shot_for(user, shot_id: int):
    shot = shot_with_show(shot_id)
    if shot is None:
        raise NotFound("no such shot")
    return shot, require_member(user, shot.sequence.show_id)


@login_required
@portal_errors
def shot_detail(request: HttpRequest, shot_id: int) -> HttpResponse:
    shot, role = shot_for(request.user, shot_id)
    show = shot.sequence.show
    models = GenerationModel.objects.filter(status=ModelStatus.APPROVED, approved_shows=show)
    pending = GenerationModel.objects.filter(status=ModelStatus.PENDING) if role == Role.SUPERVISOR else []
    requests = shot.requests.select_related("requested_by", "model", "derived_from__request").order_by("-created_at")
    return render(request, "portal/shot.html", {
        "shot": shot, "show": show, "role": role, "plates": shot.plates.all(), "requests": requests,
        "models": models, "pending_models": pending, "can_request": role in CAN_REQUEST, "tasks": Task.choices,
        "form": _request_form(request, shot)})


def _request_form(request: HttpRequest, shot) -> dict:
    """The "Ask for variations" form's values: the shot's defaults, or "iterate from here" (?from=<variation>),
    which copies the variation's request (same plate range, region, model, prompt, task) and its seed;
    ?rect=x,y,w,h (drawn on the review page) replaces the region."""
    form = {"task": "sky_replacement", "model": None, "first_frame": shot.first_frame, "last_frame": shot.last_frame,
            "count": 4, "steps": 25, "matte_pattern": "", "rect": "", "prompt": "", "base_seed": "", "strength": "",
            "origin": None}
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
