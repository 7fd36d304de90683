"""Review room: event fan-out to 50 websocket viewers, and the proxy path against oiiotool.

DATABASE_URL=postgres://postgres@127.0.0.1:5432/pt_bench REDIS_URL=redis://127.0.0.1:6379/10 \
    python -m tests.bench.streaming
→ one JSON object (last line): viewers, event_p50_ms, event_p95_ms (goal p95 ≤ 100 ms),
proxy_speedup_vs_oiiotool (goal ≥ 2), proxy_p999_code_error (goal ≤ 1), and informative keys.

Event fan-out, in production mode: uvicorn serves portal.asgi:application with PostgreSQL and
channels-redis (the production tier's AsgiServer). The bench makes its own scratch database
(``<DATABASE_URL's name>_streaming``, migrated, dropped at the end) with a show, a shot, a request and
five members with API tokens. BENCH_VIEWERS (50) websockets authenticate by token and watch the request;
once each has caught up from the database, a separate emitter process (as a Celery worker would) appends
BENCH_EVENTS (200) events every BENCH_INTERVAL_MS (20) through ``event_append`` → commit → channel-layer
group send → consumer → socket. Delay = arrival wall clock − the event's ``time`` (its ``created_at``,
stamped by the emitter before the INSERT), over every (viewer, event) pair. Clocks are the same host's.

Proxy path: BENCH_PROXY_FRAMES (6) frames of the 1920×1080 demo plate (ACEScg half EXR). Ours: OIIO
reads R,G,B → ``colour.make_proxy`` (box resize to 960 wide, then the display/view through the baked
65³ LUT) → OIIO writes JPEG, in this process, the LUT baked once beforehand (a worker process keeps it).
oiiotool: one process for all the frames (``--frames`` with a ``#`` pattern: the config is loaded once,
as ours is) doing read → ``--ch R,G,B`` → ``--ociodisplay:from=<working space>`` (same config
``ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3``, same display/view) → ``--resize:filter=box`` to the same size → JPEG,
the order the issue names. It is also timed with the resize first (``oiiotool_resize_first_fps``): the
same order as ours, the strictest comparison. Both run with OIIO's thread pool at BENCH_THREADS (2, the
machine's cores); OCIO's CPU processor applies single-threaded in both. Note that oiiotool uses the OCIO
bundled in OpenImageIO's wheel (``oiiotool_ocio_version``), ours PyOpenColorIO (``ocio_version``).
proxy_p999_code_error compares our 8-bit proxy with the exact OCIO processor applied to the same
resized pixels (``make_proxy(exact=True)``), before JPEG compression. A third reference, free of oiiotool's
OCIO build: the issue's order done exactly in this process (read → PyOpenColorIO display/view at full size →
box resize → JPEG), ``exact_ocio_fps``.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import numpy as np

REPO = Path(__file__).resolve().parents[2]
CONFIG = "ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3"  # the pinned default: both OCIO builds know it
WORKING_SPACE = "ACEScg"
MEMBERS = ("director", "supervisor", "compositor", "producer", "compositor")


def _env_int(name: str, default: int) -> int:
    return int(os.environ.get(name, default))


# ------------------------------------------------------------------------------------------ fan-out


def _scratch_url(url: str, suffix: str) -> str:
    parts = urlsplit(url)
    if parts.scheme not in ("postgres", "postgresql"):
        sys.exit("DATABASE_URL must name a PostgreSQL server, e.g. postgres://postgres@127.0.0.1:5432/pt_bench")
    name = (parts.path.lstrip("/") or "pt_bench") + f"_{suffix}"
    return urlunsplit(parts._replace(path=f"/{name}"))


def _admin(url: str, sql: str) -> None:
    import psycopg

    with psycopg.connect(urlunsplit(urlsplit(url)._replace(path="/postgres")), autocommit=True) as conn:
        conn.execute(sql)


def _setup_django(database_url: str, redis_url: str, *, migrate: bool) -> None:
    os.environ.update(DATABASE_URL=database_url, REDIS_URL=redis_url)
    os.environ.setdefault("SECRET_KEY", "pt-bench-streaming-" + "k3y" * 20)  # production refuses the embedded one
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "portal.settings")
    import django

    django.setup()
    if migrate:
        from django.core.management import call_command

        call_command("migrate", verbosity=0)


@contextmanager
def scratch_portal(suffix: str, build: Callable[[], object]) -> Iterator[tuple[str, str, object, object]]:
    """Production mode on a scratch PostgreSQL database (DATABASE_URL's name + ``_<suffix>``, made anew) and
    REDIS_URL: migrate, ``build()`` the rows, start an ASGI server; yields ``(scratch url, redis url, what build
    returned, server)``; the server stopped and the database dropped afterwards."""
    database_url, redis_url = os.environ.get("DATABASE_URL", ""), os.environ.get("REDIS_URL", "")
    if not redis_url:
        sys.exit("REDIS_URL must name a Redis database, e.g. redis://127.0.0.1:6379/10")
    scratch = _scratch_url(database_url, suffix)
    name = urlsplit(scratch).path.lstrip("/")
    _admin(scratch, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    _admin(scratch, f'CREATE DATABASE "{name}"')
    server = None
    try:
        _setup_django(scratch, redis_url, migrate=True)
        from django.conf import settings
        from django.db import connections

        from tests.production.conftest import AsgiServer

        built = build()
        connections.close_all()
        env = dict(os.environ, DATABASE_URL=scratch, REDIS_URL=redis_url, PT_VAR_DIR=str(settings.VAR_DIR),
                   PYTHONUNBUFFERED="1", LOG_LEVEL="WARNING", HF_HUB_OFFLINE="1")
        server = AsgiServer(env)
        yield scratch, redis_url, built, server
    finally:
        if server is not None:
            server.stop()
        try:
            from django.db import connections

            connections.close_all()
        except Exception:  # noqa: BLE001 - Django may not be set up yet
            pass
        _admin(scratch, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def build_request(viewers: int) -> tuple[int, list[str]]:
    """A show with one shot, plate and request, and its members' API tokens (one per viewer, cycled)."""
    from django.contrib.auth import get_user_model

    from generation.events import event_append
    from generation.models import GenerationModel, GenerationRequest
    from portal.models import Membership, Plate, Sequence, Shot, Show
    from portal.tokens import token_issue

    code = f"bench{os.getpid()}"
    show = Show.objects.create(code=code, name="Bench streaming")
    users = []
    for i, role in enumerate(MEMBERS):
        user = get_user_model().objects.create(username=f"{code}-{role}-{i}")
        Membership.objects.create(user=user, show=show, role=role)
        users.append(user)
    shot = Shot.objects.create(sequence=Sequence.objects.create(show=show, code="sq010"), code="sh010",
                               first_frame=1001, last_frame=1096)
    plate = Plate.objects.create(shot=shot, path_pattern="/p.####.exr", first_frame=1001, last_frame=1096,
                                 display_window={}, data_window={}, channels=[])
    model = GenerationModel.objects.create(name=f"{code}-model", kind="show_model", path="/m", status="approved")
    request = GenerationRequest.objects.create(shot=shot, plate=plate, first_frame=1001, last_frame=1096, count=12,
                                               model=model, requested_by=users[2], status="running")
    event_append(request_id=request.pk, type="request.created", actor=users[2], payload={"by": users[2].username})
    tokens = [token_issue(user=user, name="bench")[1] for user in users]
    return request.pk, [tokens[i % len(tokens)] for i in range(viewers)]


def _emit(database_url: str, redis_url: str, request_id: int, events: int, interval: float) -> None:
    """The emitter process: progress events through the real event_append, as a worker appends them."""
    _setup_django(database_url, redis_url, migrate=False)
    from generation.events import event_append

    next_at = time.monotonic()
    for n in range(events):
        event_append(request_id=request_id, type="variation.progress", payload={
            "variation": n % 12, "index": n % 12, "stage": "frames", "done": n, "total": events,
            "progress": round(n / events, 4)})
        next_at += interval
        time.sleep(max(0.0, next_at - time.monotonic()))


async def _viewer(url: str, token: str, last_seq: int, ready: asyncio.Event, arrivals: list) -> None:
    import websockets

    async with websockets.connect(url, additional_headers={"Authorization": f"Token {token}"},
                                  max_queue=None, open_timeout=60) as socket:
        async for text in socket:
            received = time.time()
            event = json.loads(text)
            if event["seq"] == 1:
                ready.set()  # caught up from the database: joined the group, live from here
            else:
                arrivals.append((event["seq"], event["time"], received))
            if event["seq"] >= last_seq:
                return


async def _watch(ws_url: str, request_id: int, tokens: list[str], events: int, start_emitter) -> list[list]:
    url = f"{ws_url}/ws/requests/{request_id}/?after=0"
    readies = [asyncio.Event() for _ in tokens]
    arrivals: list[list] = [[] for _ in tokens]
    tasks = [asyncio.create_task(_viewer(url, token, 1 + events, ready, got))
             for token, ready, got in zip(tokens, readies, arrivals, strict=True)]
    await asyncio.wait_for(asyncio.gather(*(r.wait() for r in readies)), timeout=120)
    emitter = start_emitter()
    try:
        deadline = time.monotonic() + 60 + events
        while not all(task.done() for task in tasks):
            if emitter.exitcode not in (None, 0):
                raise RuntimeError(f"the emitter process exited with {emitter.exitcode}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"viewers still waiting; received {[len(a) for a in arrivals]}")
            await asyncio.sleep(0.2)
        await asyncio.gather(*tasks)  # a viewer's error surfaces here
    finally:
        for task in tasks:
            task.cancel()
        emitter.join(timeout=30)
    return arrivals


def stream_bench(*, viewers: int = 50, events: int = 200, interval_ms: float = 20.0) -> dict:
    """Delay from emission to arrival over every (viewer, event) pair, in production mode."""
    with scratch_portal("streaming", lambda: build_request(viewers)) as (scratch, redis_url, built, server):
        request_id, tokens = built
        context = multiprocessing.get_context("spawn")

        def start_emitter():
            process = context.Process(target=_emit, args=(scratch, redis_url, request_id, events, interval_ms / 1000))
            process.start()
            return process

        arrivals = asyncio.run(_watch(server.ws_url, request_id, tokens, events, start_emitter))
    return _delays(arrivals, events)


def _delays(arrivals: list[list], events: int) -> dict:
    delays, complete = [], 0
    for got in arrivals:
        complete += [seq for seq, _, _ in got] == list(range(2, 2 + events))  # all, in order, once
        delays += [(received - dt.datetime.fromisoformat(stamp).timestamp()) * 1000 for _, stamp, received in got]
    ms = np.asarray(delays)
    return {
        "viewers": len(arrivals),
        "events": events,
        "event_p50_ms": round(float(np.percentile(ms, 50)), 1),
        "event_p95_ms": round(float(np.percentile(ms, 95)), 1),
        "event_max_ms": round(float(ms.max()), 1),
        "viewers_complete_in_order": complete,
    }


# ------------------------------------------------------------------------------------------ proxies


def _oiiotool() -> str:
    found = Path(sys.executable).with_name("oiiotool")
    return str(found) if found.exists() else (shutil.which("oiiotool") or "oiiotool")


def _oiiotool_seconds(pattern: str, out_pattern: str, frames: range, size: tuple[int, int], display: str,
                      view: str, threads: int, *, resize_first: bool) -> float:
    display_op = [f"--ociodisplay:from={WORKING_SPACE}", display, view]
    resize_op = ["--resize:filter=box", f"{size[1]}x{size[0]}"]
    ops = resize_op + display_op if resize_first else display_op + resize_op
    args = [_oiiotool(), "--threads", str(threads), "--colorconfig", CONFIG, "--frames",
            f"{frames.start}-{frames.stop - 1}", pattern.replace("####", "#"), "--ch", "R,G,B", *ops,
            "--compression", "jpeg:90", "-o", out_pattern.replace("####", "#")]
    start = time.perf_counter()
    subprocess.run(args, check=True, capture_output=True)
    return time.perf_counter() - start


def proxy_bench(*, frame_count: int = 6, threads: int = 2, width: int = 1920, height: int = 1080) -> dict:
    """Our proxy path's fps against oiiotool's on the same demo-plate frames, and the LUT's code error."""
    import OpenImageIO as oiio
    import PyOpenColorIO as ocio

    from generation.engine import colour, frames
    from generation.engine.demo_plate import render_demo_plate
    from generation.engine.sequence import frame_path

    oiio.attribute("threads", threads)
    display, view = colour.default_display_view(CONFIG)
    root = Path(tempfile.mkdtemp(prefix="pt-bench-streaming-"))
    try:
        plate = render_demo_plate(root / "plate", first=1001, last=1000 + frame_count, width=width,
                                  height=height)["plate"]
        frame_range = range(1001, 1001 + frame_count)
        proxy_width = width // 2  # 960 for the 1920 plate
        size = colour.proxy_size(height, width, proxy_width)
        (root / "ours").mkdir()
        (root / "oiiotool").mkdir()
        colour.make_proxy(np.zeros((2, 2, 3), np.float32), width=2, src=WORKING_SPACE, display=display, view=view,
                          config_name=CONFIG)  # bake the LUT once, as a worker process has
        errors = []
        start = time.perf_counter()
        for frame in frame_range:
            pixels = frames.read_channels(frame_path(plate, frame), ["R", "G", "B"])
            proxy = colour.make_proxy(pixels, width=proxy_width, src=WORKING_SPACE, display=display, view=view,
                                      config_name=CONFIG)
            frames.write_jpeg(root / "ours" / f"proxy.{frame}.jpg", proxy)
        ours = time.perf_counter() - start
        for frame in frame_range:
            pixels = frames.read_channels(frame_path(plate, frame), ["R", "G", "B"])
            kwargs = dict(width=proxy_width, src=WORKING_SPACE, display=display, view=view, config_name=CONFIG)
            exact = colour.make_proxy(pixels, exact=True, **kwargs)
            errors.append(np.abs(colour.make_proxy(pixels, **kwargs).astype(np.int16) - exact.astype(np.int16)))
        start = time.perf_counter()
        for frame in frame_range:  # the issue's order done exactly, in this process: a reference free of oiiotool
            pixels = frames.read_channels(frame_path(plate, frame), ["R", "G", "B"])
            shown = colour.display_view(pixels, src=WORKING_SPACE, display=display, view=view, config_name=CONFIG)
            small = frames.resize(shown, size[1], size[0])
            frames.write_jpeg(root / "ours" / f"exact.{frame}.jpg", (np.clip(small, 0, 1) * 255 + 0.5).astype(np.uint8))
        exact_seconds = time.perf_counter() - start
        out = str(root / "oiiotool" / "proxy.####.jpg")
        theirs = _oiiotool_seconds(plate, out, frame_range, size, display, view, threads, resize_first=False)
        theirs_resize_first = _oiiotool_seconds(plate, out, frame_range, size, display, view, threads,
                                                resize_first=True)
    finally:
        shutil.rmtree(root, ignore_errors=True)
    error = np.concatenate([e.reshape(-1) for e in errors])
    ours_fps, theirs_fps = frame_count / ours, frame_count / theirs
    return {
        "proxy_frames": frame_count,
        "proxy_size": [size[1], size[0]],
        "proxy_threads": threads,
        "proxy_fps": round(ours_fps, 2),
        "oiiotool_fps": round(theirs_fps, 3),
        "oiiotool_resize_first_fps": round(frame_count / theirs_resize_first, 3),
        "proxy_speedup_vs_oiiotool": round(ours_fps / theirs_fps, 2),
        "proxy_speedup_vs_oiiotool_resize_first": round(ours_fps * theirs_resize_first / frame_count, 2),
        "exact_ocio_fps": round(frame_count / exact_seconds, 3),
        "proxy_speedup_vs_exact_ocio": round(ours_fps * exact_seconds / frame_count, 2),
        "proxy_p999_code_error": float(np.percentile(error, 99.9)),
        "proxy_max_code_error": int(error.max()),
        "ocio_version": ocio.__version__,
        "oiiotool_ocio_version": oiio.get_string_attribute("opencolorio_version"),
    }


def main() -> None:
    load_at_start = [round(x, 2) for x in os.getloadavg()]
    result = stream_bench(viewers=_env_int("BENCH_VIEWERS", 50), events=_env_int("BENCH_EVENTS", 200),
                          interval_ms=float(os.environ.get("BENCH_INTERVAL_MS", "20")))
    width, height = (int(n) for n in os.environ.get("BENCH_PLATE", "1920x1080").split("x"))
    result.update(proxy_bench(frame_count=_env_int("BENCH_PROXY_FRAMES", 6), threads=_env_int("BENCH_THREADS", 2),
                              width=width, height=height))
    result["load_average_start"] = load_at_start  # 1, 5, 15 minutes; the machine has os.cpu_count() cores
    result["load_average_end"] = [round(x, 2) for x in os.getloadavg()]
    result["cpu_count"] = os.cpu_count()
    print(json.dumps(result))


if __name__ == "__main__":
    sys.exit(main())
