"""What every app's pages share: service errors translated into answers."""

from functools import wraps

from django.contrib.auth.decorators import login_required
from django.http import Http404, HttpRequest, HttpResponse, HttpResponseForbidden
from django.views.decorators.http import require_POST

from portal.errors import Forbidden, NotFound, PortalError


def portal_errors(view):
    """Translate service errors into pages: outsiders get 404, a wrong role 403, bad input 400, a state that
    forbids the action 409."""

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


def page(view):
    """A page a logged-in member reads (GET): login first, then service errors as answers."""
    return login_required(portal_errors(view))


def action(view):
    """A form a logged-in member posts: login, POST only, service errors as answers."""
    return login_required(require_POST(portal_errors(view)))
