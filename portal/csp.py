"""The Content-Security-Policy header on every answer (settings.PT_CSP): no inline script or style anywhere."""

from django.conf import settings


class ContentSecurityPolicy:
    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request):
        response = self.get_response(request)
        if settings.PT_CSP:
            response.headers.setdefault("Content-Security-Policy", settings.PT_CSP)
        return response
