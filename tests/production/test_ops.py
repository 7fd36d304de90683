"""/health/ and /metrics in production mode: PostgreSQL, Redis, a Celery worker process, uvicorn.

The server here has its own metrics token and runs prometheus-client's multiprocess mode, as a host with
several ASGI processes would (PROMETHEUS_MULTIPROC_DIR).
"""

import json
import urllib.error
import urllib.request

import pytest

from generation.models import Variation
from tests.production.conftest import Api, AsgiServer
from tests.production.test_production_loop import ask, collect, follow, wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

TOKEN = "metrics-test-token"


@pytest.fixture(scope="module")
def ops_server(service_env, tmp_path_factory):
    multiproc = tmp_path_factory.mktemp("prometheus")
    server = AsgiServer(dict(service_env, PT_METRICS_TOKEN=TOKEN, PROMETHEUS_MULTIPROC_DIR=str(multiproc)))
    yield server
    server.stop()


def get(url: str, headers: dict | None = None) -> tuple[int, bytes]:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def health(server) -> tuple[int, dict]:
    status, body = get(f"{server.url}/health/", {"Accept": "application/json"})
    return status, json.loads(body)


def scrape(server) -> str:
    status, body = get(f"{server.url}/metrics", {"Authorization": f"Bearer {TOKEN}"})
    assert status == 200, body
    return body.decode()


def sample(text: str, name: str) -> float:
    for line in text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[-1])
    return 0.0  # a labelled sample nobody has counted yet


def test_health_answers_with_the_database_redis_the_broker_a_worker_and_free_space(ops_server, workers):
    workers.ensure(PT_WORKER_HEARTBEAT_SECONDS="1")
    status, checks = health(ops_server)
    assert status == 200, checks
    assert set(checks) == {"Database(alias='default')", "Redis()", "Broker()", "Workers()",
                           "FreeSpace(root='work')", "FreeSpace(root='publish')"}
    assert set(checks.values()) == {"OK"}


def test_health_fails_once_the_last_worker_is_gone(ops_server, workers):
    workers.stop_all()  # earlier tests' workers too (the fault suite's), so "the last worker" is this one
    worker = workers.ensure(PT_WORKER_HEARTBEAT_SECONDS="1")
    assert health(ops_server)[0] == 200
    worker.stop()

    def failing():
        status, checks = health(ops_server)
        return status == 500 and checks["Workers()"] == "Unavailable: no worker seen recently" and checks

    # A worker killed by an earlier test leaves its beat for three beats (30 s at the default 10 s), then it expires.
    checks = wait_for(failing, "health to miss the stopped worker", timeout=45, interval=0.5)
    assert checks["Database(alias='default')"] == "OK" and checks["Redis()"] == "OK"


def test_metrics_need_the_token(ops_server):
    status, _ = get(f"{ops_server.url}/metrics")
    assert status == 401
    status, _ = get(f"{ops_server.url}/metrics", {"Authorization": "Bearer nope"})
    assert status == 401


def test_metrics_follow_the_loop(ops_server, workers, api_for, compositor, director, shot, show_model):
    # The tokens api_for issues, sent to this test's own server.
    cora, dana = Api(ops_server.url, api_for(compositor).token), Api(ops_server.url, api_for(director).token)
    for worker in workers.started:
        worker.stop()
    before = scrape(ops_server)

    request_id = ask(cora, shot, show_model, count=1, steps=2)["id"]
    wait_for(lambda: sample(scrape(ops_server), 'pt_queue_depth{queue="gpu"}') >= 1,
             "the queued variation in the gpu queue's depth", timeout=15, interval=0.3)
    workers.ensure()

    with follow(ops_server, cora, request_id, after=0) as ws:
        assert sample(scrape(ops_server), "pt_websockets_open") == 1
        collect(ws, until="request.settled", timeout=180)
        variation = Variation.objects.get(request_id=request_id)
        dana.post(f"/api/variations/{variation.pk}/pick/", {})
        cora.post(f"/api/requests/{request_id}/signoff/", {})
        collect(ws, until="release.done", timeout=120)

    wait_for(lambda: sample(scrape(ops_server), "pt_websockets_open") == 0, "the closed socket", timeout=10)
    after = scrape(ops_server)
    created = 'pt_http_responses_total{status="201"}'
    assert sample(after, created) >= sample(before, created) + 1  # the request; the pick and sign-off answer 200
    assert sample(after, 'pt_http_responses_total{status="200"}') > sample(before, 'pt_http_responses_total{status="200"}')
    assert sample(after, 'pt_queue_depth{queue="gpu"}') == 0 and sample(after, 'pt_queue_depth{queue="publish"}') == 0
    assert sample(after, 'pt_variations{status="done"}') == 1 and sample(after, "pt_variations_running") == 0
    variation.refresh_from_db()
    assert sample(after, "pt_gpu_seconds_total") == pytest.approx(variation.gpu_seconds) and variation.gpu_seconds > 0
    assert sample(after, "pt_release_duration_seconds_count") == 1
    assert 0 < sample(after, "pt_release_duration_seconds_sum") < 120
    assert sample(after, 'pt_release_duration_seconds_bucket{le="+Inf"}') == 1
