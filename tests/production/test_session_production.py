"""A dailies session in production mode: uvicorn, channels-redis, PostgreSQL. The driver scrubs faster than one
state per write; every follower lands on the driver's last state, in seq order without gaps, and a follower whose
socket drops catches up from the seq it had."""

import json
import time

import pytest
from websockets.sync.client import connect

from portal.tokens import token_issue
from review import sessions
from review.models import ReviewSession
from tests.factories import request_with_done_variations

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]


def join(asgi_server, session_id: int, user, *, after: int):
    token = token_issue(user=user, name="session test")[1]
    return connect(f"{asgi_server.ws_url}/ws/sessions/{session_id}/?after={after}",
                   additional_headers={"Authorization": f"Token {token}"}, open_timeout=10)


def until(ws, test, timeout: float = 20.0) -> list[dict]:
    """Messages up to and including the first for which ``test`` holds."""
    got, deadline = [], time.monotonic() + timeout
    while True:
        remaining = deadline - time.monotonic()
        assert remaining > 0, f"not within {timeout:.0f} s; got {[m.get('type') for m in got]}"
        message = json.loads(ws.recv(timeout=remaining))
        got.append(message)
        if test(message):
            return got


def test_followers_land_on_the_drivers_last_state_and_a_dropped_one_catches_up(
        asgi_server, supervisor, director, producer, compositor, show, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=3)
    session = sessions.session_create(user=supervisor, show=show, name="prod", items=[("request", request.pk)])
    start = ReviewSession.objects.get(pk=session.pk).last_seq
    driver = join(asgi_server, session.pk, supervisor, after=start)
    followers = [join(asgi_server, session.pk, user, after=start) for user in (director, producer)]
    for ws in (driver, *followers):
        until(ws, lambda m: m.get("type") == "session.presence" and len(m["payload"]["present"]) == 3)
    tiles = list(request.variations.order_by("index").values_list("pk", flat=True))
    for frame in range(request.first_frame, request.last_frame + 1):  # as fast as the socket takes them
        driver.send(json.dumps({"type": "drive", "state": {"frame": frame, "tile": tiles[frame % 3]}}))
    driver.send(json.dumps({"type": "drive", "state": {"mode": "wipe"}}))
    final = lambda m: m.get("type") == "session.state" and m["payload"]["mode"] == "wipe"  # noqa: E731
    for ws in followers:
        got = until(ws, final)
        seqs = [m["seq"] for m in got if "seq" in m]
        assert seqs == list(range(seqs[0], seqs[0] + len(seqs)))  # in order, no gaps, none twice
        assert got[-1]["payload"]["frame"] == request.last_frame
        assert got[-1]["payload"]["tile"] == tiles[request.last_frame % 3]
    # the producer's socket drops; the driver goes on; the reconnect from its last seq gets all of it
    dropped = followers[1]
    last = json.loads(json.dumps(got[-1]))["seq"]
    dropped.close()
    driver.send(json.dumps({"type": "drive", "state": {"mode": "single", "frame": request.first_frame}}))
    until(followers[0], lambda m: m.get("type") == "session.state" and m["payload"]["mode"] == "single")
    back = join(asgi_server, session.pk, producer, after=last)
    caught = until(back, lambda m: m.get("type") == "session.state" and m["payload"]["mode"] == "single")
    assert [m["seq"] for m in caught if "seq" in m][0] == last + 1
    assert caught[-1]["payload"]["frame"] == request.first_frame
    stored = ReviewSession.objects.get(pk=session.pk).state
    assert (stored["mode"], stored["frame"]) == ("single", request.first_frame)
    for ws in (driver, followers[0], back):
        ws.close()
    deadline = time.monotonic() + 15  # the server writes each departure (presence); let it finish before teardown
    while sessions.present_now(session.pk) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert sessions.present_now(session.pk) == []
