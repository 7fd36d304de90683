"""Dailies session: the delay from a driver's action to its arrival at every follower, in production mode.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/pt_bench REDIS_URL=redis://127.0.0.1:6379/10 \
    python -m tests.bench.session
→ one JSON object (last line): followers (20), follow_p50_ms, follow_p95_ms (goal p95 ≤ 100 ms), and informative
keys.

uvicorn serves portal.asgi:application with PostgreSQL and channels-redis (the production tier's AsgiServer), on a
scratch database (``<DATABASE_URL's name>_session``, migrated, dropped at the end) holding a show, a request with
4 variations over frames 1001–2000 and a session over it. BENCH_FOLLOWERS (20) websockets and the driver's
authenticate by token and join; once every follower has seen the last join, the driver sends BENCH_ACTIONS (200)
``drive`` frames every BENCH_INTERVAL_MS (50; a scrub at 20 Hz), each a new frame (and every tenth a new tile and
view mode). Each goes socket → consumer → checked and written (the session's state and a ``session.state`` event,
one transaction) → channels-redis group send → 21 consumers → sockets. Delay = a follower's arrival wall clock of
that frame (or of a newer one: frames that queue up while one is written are merged into one state, counted in
``states_per_follower``) − the driver's send wall clock, over every (follower, action) pair; one process's clocks.
The reference, measured in the same run on the same server: a ``ping`` round trip on the driver's socket (a hop to
the consumer and back, no database write, no fan-out), so ``follow_p95_over_ping_p95`` says what the write and the
fan-out add.
"""

from __future__ import annotations

import asyncio
import json
import os
import time

import numpy as np

from tests.bench.streaming import scratch_portal

ROLES = ("supervisor", "director", "compositor", "producer")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


def build_session(followers: int) -> tuple[int, list[int], str, list[str]]:
    """A show, a request with four finished variations, a session over it; the driver's and followers' tokens."""
    from django.contrib.auth import get_user_model

    from generation.models import GenerationModel, GenerationRequest, Variation
    from portal.models import Membership, Plate, Sequence, Shot, Show
    from portal.tokens import token_issue
    from review import sessions

    code = f"sess{os.getpid()}"
    show = Show.objects.create(code=code, name="Bench session")
    users = []
    for i in range(followers + 1):
        user = get_user_model().objects.create(username=f"{code}-{i}")
        Membership.objects.create(user=user, show=show, role=ROLES[0] if i == 0 else ROLES[i % len(ROLES)])
        users.append(user)
    shot = Shot.objects.create(sequence=Sequence.objects.create(show=show, code="sq010"), code="sh010",
                               first_frame=1001, last_frame=2000)
    plate = Plate.objects.create(shot=shot, path_pattern="/p.####.exr", first_frame=1001, last_frame=2000,
                                 display_window={"width": 1920, "height": 1080}, data_window={}, channels=[])
    model = GenerationModel.objects.create(name=f"{code}-model", kind="show_model", path="/m", status="approved")
    request = GenerationRequest.objects.create(shot=shot, plate=plate, first_frame=1001, last_frame=2000, count=4,
                                               model=model, requested_by=users[0], status="review")
    tiles = [Variation.objects.create(request=request, index=i, seed=i, status="done").pk for i in range(4)]
    session = sessions.session_create(user=users[0], show=show, name="bench", items=[("request", request.pk)])
    tokens = [token_issue(user=user, name="session bench")[1] for user in users]
    return session.pk, tiles, tokens[0], tokens[1:]


async def _connect(url: str, token: str):
    import websockets

    return await websockets.connect(url, additional_headers={"Authorization": f"Token {token}"}, max_queue=None,
                                    open_timeout=60)


async def _follower(socket, joined: asyncio.Event, everyone: int, arrivals: dict, last_frame: int) -> None:
    async for text in socket:
        received = time.time()
        event = json.loads(text)
        if event.get("type") == "session.presence" and len(event["payload"]["present"]) >= everyone:
            joined.set()
        elif event.get("type") == "session.state":
            frame = event["payload"]["frame"]
            arrivals[frame] = received
            if frame >= last_frame:
                return


async def _run(ws_url: str, session_id: int, tiles: list[int], driver_token: str, tokens: list[str], actions: int,
               interval: float) -> dict:
    url = f"{ws_url}/ws/sessions/{session_id}/?after=0"
    followers = [await _connect(url, token) for token in tokens]
    joined = [asyncio.Event() for _ in followers]
    arrivals: list[dict] = [{} for _ in followers]
    first = 1002
    last_frame = first + actions - 1
    tasks = [asyncio.create_task(_follower(s, j, len(tokens) + 1, a, last_frame))
             for s, j, a in zip(followers, joined, arrivals, strict=True)]
    driver = await _connect(url, driver_token)
    await asyncio.wait_for(asyncio.gather(*(j.wait() for j in joined)), timeout=120)
    pings = []
    errors = []

    async def drain():
        async for text in driver:
            message = json.loads(text)
            if message.get("type") == "pong":
                pings.append((time.time() - ping_sent[0]) * 1000)
                pong.set()
            elif message.get("type") == "error":
                errors.append(message)

    ping_sent, pong = [0.0], asyncio.Event()
    drainer = asyncio.create_task(drain())
    for _ in range(30):  # the reference: round trips with no write and no fan-out
        pong.clear()
        ping_sent[0] = time.time()
        await driver.send(json.dumps({"type": "ping"}))
        await asyncio.wait_for(pong.wait(), timeout=10)
        await asyncio.sleep(0.02)
    sent = {}
    next_at = time.monotonic()
    modes = ("grid", "incontext", "wipe", "single")
    for n in range(actions):
        frame = first + n
        state = {"frame": frame}
        if n % 10 == 0:
            state |= {"tile": tiles[(n // 10) % len(tiles)], "mode": modes[(n // 10) % len(modes)]}
        sent[frame] = time.time()
        await driver.send(json.dumps({"type": "drive", "state": state}))
        next_at += interval
        await asyncio.sleep(max(0.0, next_at - time.monotonic()))
    try:
        await asyncio.wait_for(asyncio.gather(*tasks), timeout=60 + actions * interval)
    finally:
        drainer.cancel()
        for socket in [driver, *followers]:
            await socket.close()
    delays = [d for got in arrivals for d in _landed(sent, got)]
    complete = sum(last_frame in got for got in arrivals)
    states = float(np.mean([len(got) for got in arrivals]))
    return {"delays": delays, "complete": complete, "pings": pings, "errors": len(errors), "states": states}


def _landed(sent: dict, got: dict) -> list[float]:
    """Per action (a frame), ms until the follower showed it or a newer state (frames only grow in the run; a
    loaded server merges drive frames that queue up, see SessionConsumer._queue_drive)."""
    received = sorted(got)
    delays, i = [], 0
    for frame in sorted(sent):
        while i < len(received) and received[i] < frame:
            i += 1
        if i < len(received):
            delays.append((got[received[i]] - sent[frame]) * 1000)
    return delays


def session_bench(*, followers: int = 20, actions: int = 200, interval_ms: float = 50.0) -> dict:
    with scratch_portal("session", lambda: build_session(followers)) as (_, _, built, server):
        session_id, tiles, driver_token, tokens = built
        result = asyncio.run(_run(server.ws_url, session_id, tiles, driver_token, tokens, actions,
                                  interval_ms / 1000))
    ms, ping = np.asarray(result["delays"]), np.asarray(result["pings"])
    p95, ping95 = float(np.percentile(ms, 95)), float(np.percentile(ping, 95))
    return {
        "followers": followers,
        "actions": actions,
        "interval_ms": interval_ms,
        "follow_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "follow_p95_ms": round(p95, 1),
        "follow_max_ms": round(float(ms.max()), 1),
        "followers_complete": result["complete"],
        "states_per_follower": round(result["states"], 1),
        "refused_actions": result["errors"],
        "ping_p50_ms": round(float(np.percentile(ping, 50)), 1),
        "ping_p95_ms": round(ping95, 1),
        "follow_p95_over_ping_p95": round(p95 / ping95, 2) if ping95 else None,
        "load": round(os.getloadavg()[0], 2),
    }


def main() -> None:
    result = session_bench(followers=_env_int("BENCH_FOLLOWERS", 20), actions=_env_int("BENCH_ACTIONS", 200),
                           interval_ms=float(os.environ.get("BENCH_INTERVAL_MS", 50)))
    print(json.dumps(result))


if __name__ == "__main__":
    main()
