"""``/metrics`` for Prometheus (prometheus-client).

Two kinds of figures:
- this process's own, counted as they happen: HTTP responses by status (``RequestCounter``, a middleware) and
  open websockets (``count_websockets``, around the ASGI websocket router);
- the studio's, read at scrape time from where they are true for every process: queue depth per queue (the
  broker's Redis lists; the embedded worker's backlog), variations by status, GPU seconds and release durations
  (the database).

With several ASGI processes, set ``PROMETHEUS_MULTIPROC_DIR`` (an empty folder per host, emptied at start) and
every process answers the sum over all of them (prometheus-client's multiprocess mode).

Who may read it: a request with ``Authorization: Bearer <PT_METRICS_TOKEN>``, or a logged-in staff user;
everyone else gets 401. There is no address-based allowance: behind nginx every request comes from loopback.
"""

import hmac
import os
from datetime import timedelta

from django.conf import settings
from django.db.models import Count, DurationField, ExpressionWrapper, F, Q, Sum
from django.http import HttpRequest, HttpResponse
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily

from generation.models import Variation, VariationStatus
from portal import heartbeat, worker
from review.models import Release, ReleaseStatus

PROCESS = CollectorRegistry(auto_describe=True)
HTTP_RESPONSES = Counter("pt_http_responses", "HTTP responses by status code", ["status"], registry=PROCESS)
OPEN_WEBSOCKETS = Gauge("pt_websockets_open", "Websockets open now", registry=PROCESS,
                        multiprocess_mode="livesum")

# Release durations (queued → released), seconds: a 96-frame 2K release takes under a second on fast storage.
RELEASE_BUCKETS = (1, 5, 15, 30, 60, 120, 300, 600, 1800, 3600)


class RequestCounter:
    """Middleware (first in MIDDLEWARE): counts every response by its status, 404s and 500s included."""

    def __init__(self, get_response):
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        HTTP_RESPONSES.labels(status=str(response.status_code)).inc()
        return response


def count_websockets(app):
    """ASGI middleware around the websocket router: a socket counts from its accept until its connection ends."""

    async def counted(scope, receive, send):
        accepted = False

        async def send_counted(message):
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                OPEN_WEBSOCKETS.inc()
            elif message["type"] == "websocket.close" and accepted:
                accepted = False
                OPEN_WEBSOCKETS.dec()
            await send(message)

        try:
            await app(scope, receive, send_counted)
        finally:
            if accepted:
                OPEN_WEBSOCKETS.dec()

    return counted


class StudioCollector:
    """The figures that are the same whichever process is asked: read at scrape time."""

    def collect(self):
        depth = GaugeMetricFamily("pt_queue_depth", "Tasks waiting in a queue, not yet taken by a worker",
                                  labels=["queue"])
        for queue, waiting in queue_depths().items():
            depth.add_metric([queue], waiting)
        yield depth

        by_status = dict(Variation.objects.values_list("status").annotate(n=Count("pk")).order_by())
        variations = GaugeMetricFamily("pt_variations", "Variations by status", labels=["status"])
        for status in VariationStatus.values:
            variations.add_metric([status], by_status.get(status, 0))
        yield variations
        yield GaugeMetricFamily("pt_variations_running", "Variations running now",
                                value=by_status.get(VariationStatus.RUNNING, 0))
        yield GaugeMetricFamily("pt_variations_failed", "Variations that failed, all time",
                                value=by_status.get(VariationStatus.FAILED, 0))

        seconds = Variation.objects.aggregate(total=Sum("gpu_seconds"))["total"] or 0.0
        yield CounterMetricFamily("pt_gpu_seconds", "Compute seconds of every variation a worker finished",
                                  value=seconds)
        yield release_durations()


def queue_depths() -> dict[str, int]:
    if settings.REDIS_URL:
        return heartbeat.queue_depths()
    backlog = worker.embedded_backlog()  # one in-process worker takes every queue's tasks
    return {"embedded": backlog}


def release_durations() -> HistogramMetricFamily:
    """Seconds from a release being queued to its frames being published, over every finished release."""
    took = ExpressionWrapper(F("released_at") - F("created_at"), output_field=DurationField())
    done = Release.objects.filter(status=ReleaseStatus.DONE, released_at__isnull=False).annotate(took=took)
    figures = done.aggregate(total=Count("pk"), seconds=Sum("took"), **{
        f"le{b}": Count("pk", filter=Q(took__lte=timedelta(seconds=b))) for b in RELEASE_BUCKETS})
    buckets = [(str(float(b)), figures[f"le{b}"]) for b in RELEASE_BUCKETS] + [("+Inf", figures["total"])]
    family = HistogramMetricFamily("pt_release_duration_seconds", "Release, queued to published (seconds)")
    family.add_metric([], buckets, sum_value=figures["seconds"].total_seconds() if figures["seconds"] else 0.0)
    return family


def _registry() -> CollectorRegistry:
    registry = CollectorRegistry(auto_describe=False)
    if os.getenv("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Process())
    registry.register(StudioCollector())
    return registry


class _Process:
    def collect(self):
        yield from PROCESS.collect()


def allowed(request: HttpRequest) -> bool:
    token = settings.PT_METRICS_TOKEN
    given = request.headers.get("Authorization", "")
    if token and hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return True
    user = getattr(request, "user", None)
    return bool(user and user.is_authenticated and user.is_active and user.is_staff)


def view(request: HttpRequest) -> HttpResponse:
    if not allowed(request):
        response = HttpResponse("metrics: a bearer token (PT_METRICS_TOKEN) or a staff login\n", status=401,
                                content_type="text/plain")
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    return HttpResponse(generate_latest(_registry()), content_type=CONTENT_TYPE_LATEST)
