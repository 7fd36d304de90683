"""Every API error is JSON with a stable code and a clear message."""

from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.views import defaults
from drf_spectacular.openapi import AutoSchema
from rest_framework import exceptions, serializers, status
from rest_framework.response import Response
from rest_framework.views import exception_handler as drf_handler

from portal.errors import PortalError


def exception_handler(exc, context):
    if isinstance(exc, PortalError):
        return Response({"code": exc.code, "message": exc.message}, status=exc.status)
    if isinstance(exc, RecursionError):  # the JSON parser on a body nested thousands deep
        return Response({"code": "parse_error", "message": "the JSON body is nested too deeply"},
                        status=status.HTTP_400_BAD_REQUEST)
    if isinstance(exc, Http404):
        return Response({"code": "not_found", "message": "not found"}, status=status.HTTP_404_NOT_FOUND)
    response = drf_handler(exc, context)
    if response is None:
        return None
    if isinstance(exc, exceptions.ValidationError):
        response.data = {"code": "invalid", "message": _flatten(exc.detail), "fields": exc.detail}
    elif isinstance(exc, exceptions.APIException):
        response.data = {"code": exc.default_code, "message": str(exc.detail)}
    return response


def not_found(request: HttpRequest, exception=None) -> HttpResponse:
    """The 404 of a URL that matches no route: JSON under /api/ (a non-integer id, say), the page elsewhere."""
    if request.path.startswith("/api/"):
        return JsonResponse({"code": "not_found", "message": "not found"}, status=404)
    return defaults.page_not_found(request, exception)


def _api_or_page(status: int, code: str, message: str, page):
    def handler(request: HttpRequest, exception=None) -> HttpResponse:
        if request.path.startswith("/api/"):
            return JsonResponse({"code": code, "message": message}, status=status)
        return page(request, exception) if exception is not None or status != 500 else page(request)

    return handler


# JSON under /api/ for what Django answers before or outside DRF (a body too large, a CSRF refusal, a crash).
bad_request = _api_or_page(400, "bad_request", "the request could not be read", defaults.bad_request)
permission_denied = _api_or_page(403, "forbidden", "forbidden", defaults.permission_denied)
server_error = _api_or_page(500, "server_error", "the server failed; the error is in its log", defaults.server_error)


def _flatten(detail) -> str:
    if isinstance(detail, dict):
        return "; ".join(f"{k}: {_flatten(v)}" for k, v in detail.items())
    if isinstance(detail, list):
        return " ".join(_flatten(v) for v in detail)
    return str(detail)


class ErrorSerializer(serializers.Serializer):
    """What every error answer holds (``fields``: per-field messages, on validation errors only)."""

    code = serializers.CharField()
    message = serializers.CharField()
    fields = serializers.JSONField(required=False)


class PortalAutoSchema(AutoSchema):
    """The OpenAPI document declares the errors each operation can answer, in the shape above."""

    def _get_response_bodies(self, direction="response"):
        responses = super()._get_response_bodies(direction)
        for status_code in self._error_statuses():
            responses.setdefault(str(status_code), self._get_response_for_code(ErrorSerializer, str(status_code),
                                                                               direction=direction))
        return responses

    def _error_statuses(self) -> list[int]:
        statuses = [400, 401, 429]  # invalid input or filter; no token, or an unknown one; throttled
        if self.method != "GET":
            statuses += [403, 404, 409]  # the role forbids it, not found, the request's state forbids it
        elif "{" in self.path:
            statuses += [404]
        return sorted(statuses)
