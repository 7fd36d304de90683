"""Catalogue pages: the shows and shots a user may see, and a shot."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.shortcuts import render

from generation.models import GenerationModel, ModelStatus
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
    requests = shot.requests.select_related("requested_by", "model").order_by("-created_at")
    return render(request, "portal/shot.html", {
        "shot": shot, "show": show, "role": role, "plates": shot.plates.all(), "requests": requests,
        "models": models, "pending_models": pending, "can_request": role in CAN_REQUEST})
