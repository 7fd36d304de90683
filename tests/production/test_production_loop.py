"""The whole loop in production mode: API tokens, a Celery worker process, channels-redis, PostgreSQL."""

import hashlib
import json
import re
import subprocess
import time
from pathlib import Path

import pytest
from websockets.sync.client import connect

from generation.models import GenerationRequest, RequestEvent, Variation
from tests.conftest import OIIOTOOL

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def ask(api, shot, show_model, *, count: int, steps: int, seed: int = 42) -> dict:
    return api.post(
        "/api/requests/",
        {
            "shot": shot.pk,
            "model": show_model.pk,
            "first_frame": 1001,
            "last_frame": 1006,
            "count": count,
            "steps": steps,
            "seed": seed,
        },
    )


def follow(asgi_server, api, request_id: int, *, after: int):
    """A websocket on the request's stream, authenticated by the API token in the Authorization header."""
    return connect(
        f"{asgi_server.ws_url}/ws/requests/{request_id}/?after={after}",
        additional_headers={"Authorization": f"Token {api.token}"},
        open_timeout=10,
    )


def collect(ws, *, until: str, timeout: float) -> list[dict]:
    """Events from the socket up to and including the first of type `until`."""
    events = []
    deadline = time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"no {until} within {timeout:.0f} s; got {[e['type'] for e in events]}"
        event = json.loads(ws.recv(timeout=remaining))
        events.append(event)
        if event["type"] == until:
            return events


def db_events(request_id: int) -> list[dict]:
    return [e.as_message() for e in RequestEvent.objects.filter(request_id=request_id).order_by("seq")]


def wait_for(condition, what: str, timeout: float, interval: float = 0.2):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(interval)
    raise AssertionError(f"{what}: not within {timeout:.0f} s")


def test_the_loop_through_the_api_streams_every_event_and_releases_v001(
    asgi_server, celery_worker, api_for, compositor, director, shot, show_model
):
    cora, dana = api_for(compositor), api_for(director)
    request_id = ask(cora, shot, show_model, count=2, steps=3)["id"]

    with follow(asgi_server, cora, request_id, after=0) as ws:
        generated = collect(ws, until="request.settled", timeout=180)
        seqs = [e["seq"] for e in generated]
        assert seqs == list(range(1, len(seqs) + 1))
        types = [e["type"] for e in generated]
        assert types[0] == "request.created" and generated[-1]["payload"]["status"] == "review"
        assert types.count("variation.frame") == 2 * 6 and types.count("variation.done") == 2
        assert max(i for i, t in enumerate(types) if t == "variation.frame") < types.index("request.settled")

        variation = Variation.objects.get(request_id=request_id, index=1)
        dana.post(f"/api/variations/{variation.pk}/pick/", {"note": "this sky"})
        cora.post(f"/api/requests/{request_id}/signoff/", {})
        released = collect(ws, until="release.done", timeout=120)

    streamed = generated + released
    assert [e["seq"] for e in streamed] == list(range(1, len(streamed) + 1))
    assert streamed == db_events(request_id), "the stream and the database's event log differ"
    assert [e["type"] for e in released][:2] == ["pick.made", "signoff.approved"]
    assert released[-1]["payload"]["version"] == 1

    releases = cora.get(f"/api/releases/?request={request_id}")["results"]
    assert len(releases) == 1 and releases[0]["status"] == "done", releases
    folder = Path(releases[0]["path_pattern"]).parent
    assert folder.name == "v001"
    frames = sorted(folder.glob("*.exr"))
    assert [int(p.name.split(".")[-2]) for p in frames] == list(range(1001, 1007))
    manifest = dict(reversed(line.split("  ")) for line in (folder / "manifest.sha256").read_text().splitlines())
    for path in frames:
        assert manifest[path.name] == hashlib.sha256(path.read_bytes()).hexdigest(), path.name
    info = subprocess.run(
        [OIIOTOOL, "--info", "-v", str(frames[-1])], capture_output=True, text=True, check=True
    ).stdout
    assert "4 channel, half openexr" in info
    for key, value in [
        ("request", str(request_id)),
        ("variation", "v02"),
        ("seed", str(variation.seed)),
        ("model", show_model.name),
        ("picked_by", "dana"),
        ("signed_off_by", "cora"),
    ]:
        assert re.search(rf'parallel_track:{key}: "{re.escape(value)}"', info), key
    assert "parallel_track:model_manifest_sha256" in info and "parallel_track:signed_off_at" in info


def test_a_late_viewer_receives_exactly_the_events_after_its_seq(
    asgi_server, celery_worker, api_for, compositor, director, shot, show_model
):
    cora, dana = api_for(compositor), api_for(director)
    request_id = ask(cora, shot, show_model, count=1, steps=2)["id"]

    # Join while the variation is being generated: part of the stream comes from the database, the rest live.
    def joining_after() -> int:
        seq = GenerationRequest.objects.values_list("last_seq", flat=True).get(pk=request_id)
        return seq - 2 if seq >= 4 else 0

    k = wait_for(joining_after, "four events", timeout=120, interval=0.05)
    with follow(asgi_server, cora, request_id, after=k) as ws:
        late = collect(ws, until="request.settled", timeout=120)
    everything = db_events(request_id)
    assert everything[-1]["type"] == "request.settled"
    assert [e["seq"] for e in late] == list(range(k + 1, len(everything) + 1))
    assert late == everything[k:]

    # After the fact, too: exactly the tail, then silence. The socket outlives a quiet spell longer than
    # channels-redis's 5 s blocking read (redis-py 8's default read timeout once killed it) and gets the
    # next event live.
    n = len(everything)
    with follow(asgi_server, cora, request_id, after=n - 2) as ws:
        tail = [json.loads(ws.recv(timeout=10)) for _ in range(2)]
        with pytest.raises(TimeoutError):
            ws.recv(timeout=8.0)
        variation = Variation.objects.get(request_id=request_id)
        dana.post(f"/api/variations/{variation.pk}/pick/", {})
        picked = json.loads(ws.recv(timeout=10))
    assert tail == everything[n - 2 :]
    assert picked["type"] == "pick.made" and picked["seq"] == n + 1


def test_a_variation_survives_its_worker_being_killed(asgi_server, workers, api_for, compositor, shot, show_model):
    """SIGKILL the worker mid-variation; a new worker picks the task up again and finishes it.

    acks_late keeps the message unacknowledged in Redis while the task runs. A SIGKILLed solo worker cannot
    reject it (reject_on_worker_lost covers pool children), so it waits in Redis's unacked set until it is
    older than the visibility timeout; a worker starting after that restores it to the queue at start-up.
    The workers here use a 5 s visibility timeout (CELERY_VISIBILITY_TIMEOUT) instead of an hour.
    """
    first = workers.ensure(CELERY_VISIBILITY_TIMEOUT="5")
    cora = api_for(compositor)
    request_id = ask(cora, shot, show_model, count=1, steps=12)["id"]
    variation = Variation.objects.get(request_id=request_id)

    def denoising() -> bool:
        return RequestEvent.objects.filter(
            request_id=request_id, type="variation.progress", payload__stage="denoise"
        ).exists()

    wait_for(denoising, "the variation to start denoising", timeout=120, interval=0.05)
    assert first.kill() == -9
    variation.refresh_from_db()
    assert variation.status == "running" and variation.claimed_by == first.nodename, variation.status
    assert not RequestEvent.objects.filter(request_id=request_id, type="variation.done").exists()

    # The message becomes visible again once it is older than the visibility timeout.
    time.sleep(max(0.0, variation.started_at.timestamp() + 6 - time.time()))
    # Not waiting for a ping: it restores the message at start-up and, being solo, is busy at once.
    second = workers.start(wait=False, CELERY_VISIBILITY_TIMEOUT="5")

    def settled() -> bool:
        return GenerationRequest.objects.get(pk=request_id).status in ("review", "failed")

    wait_for(settled, "the variation to finish on the second worker", timeout=240, interval=0.5)
    variation.refresh_from_db()
    assert variation.status == "done", variation.error
    assert variation.claimed_by == second.nodename
    assert GenerationRequest.objects.get(pk=request_id).status == "review"
    events = db_events(request_id)
    assert [e["seq"] for e in events] == list(range(1, len(events) + 1))
    started = [e["payload"]["worker"] for e in events if e["type"] == "variation.started"]
    assert started == [first.nodename, second.nodename]
    assert [e["type"] for e in events].count("variation.done") == 1
    assert [e["payload"]["frame"] for e in events if e["type"] == "variation.frame"][-6:] == list(range(1001, 1007))
