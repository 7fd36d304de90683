"""ASGI entry point: HTTP through Django, websockets through Channels."""

import asyncio
import os

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")

from channels.routing import ProtocolTypeRouter, URLRouter  # noqa: E402
from django.conf import settings  # noqa: E402
from django.core.asgi import get_asgi_application  # noqa: E402

django_http = get_asgi_application()

from django.urls import path  # noqa: E402

from generation.consumers import RequestConsumer  # noqa: E402
from portal import worker  # noqa: E402
from portal.metrics import count_websockets  # noqa: E402
from portal.ws_auth import TokenOrSession  # noqa: E402
from review.session_consumer import SessionConsumer  # noqa: E402

if settings.PT_SERVE_STATIC:
    from django.contrib.staticfiles.handlers import ASGIStaticFilesHandler
    from django.core.exceptions import SuspiciousFileOperation
    from django.http import Http404

    class StaticFiles(ASGIStaticFilesHandler):
        """Static files; a path that climbs out of the static folders (``/static/../x``) is a 404, not a 500."""

        def serve(self, request):
            try:
                return super().serve(request)
            except SuspiciousFileOperation:
                raise Http404("not found") from None

    django_http = StaticFiles(django_http)

websocket_urls = [path("ws/requests/<int:request_id>/", RequestConsumer.as_asgi()),
                  path("ws/sessions/<int:session_id>/", SessionConsumer.as_asgi())]

router = ProtocolTypeRouter({"http": django_http, "websocket": count_websockets(TokenOrSession(URLRouter(websocket_urls)))})


async def application(scope, receive, send):
    if worker.server_loop() is None:
        worker.remember_server_loop(asyncio.get_running_loop())
    await router(scope, receive, send)
