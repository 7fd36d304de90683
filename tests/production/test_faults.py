"""The fault suite: real Celery worker processes, PostgreSQL and Redis, faults injected while requests run.

Each fault is one the other users of a shared PostgreSQL and Redis do not feel: this run's own worker processes
are SIGKILLed, only this run's Redis database is flushed, only the connections on this run's Redis database are
cut (``CLIENT KILL ID``), the work area's disk is a tiny tmpfs of the test's own, the portal killed is an ASGI server of the test's own.
Restarting PostgreSQL would hit everyone on the machine, so it runs only with ``PT_FAULTS_RESTART_POSTGRES=1``.

Real websocket viewers (``tests.production.viewers``) watch each request's event stream through the fault,
reconnecting with ``?after=<last seq>`` when their socket drops.

After each: every request reaches a true final state, no variation's output was moved into place twice
(``output_attempts``, and ``variation.done`` events), nothing partial is visible (no work folder of an unfinished
variation, no attempt folder beside a finished one, every frame of a finished one), the event log is complete and
in order, and so is every viewer's stream (the log exactly: every event, in seq order, none twice). Each test records its figures in ``PT_FAULTS_RESULTS`` (a JSON lines file) for ``tests.bench.faults``.
"""

import json
import os
import shutil
import statistics
import subprocess
import threading
import time
from pathlib import Path

import pytest
import redis
from django.conf import settings

from generation import services
from generation.models import GenerationRequest, RequestEvent, Variation
from portal.models import Membership
from tests.conftest import inside
from tests.production.test_production_loop import wait_for
from tests.production.viewers import VIEWERS, Viewers

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

# Short leases and sweeps, so a fault is recovered from in seconds, not the production minute; each frame held
# 0.4 s once written (a slow work area), so the fault lands part-way through a variation's frames on any machine:
# without it a quiet machine writes the small plate's 4 frames in a few milliseconds, between two polls.
FAULT_ENV = {"PT_LEASE_SECONDS": "4", "PT_RECOVERY_INTERVAL_S": "2", "PT_RETRY_BACKOFF_S": "1",
             "PT_FAULT_FRAME_DELAY_S": "0.4"}
FRAMES = (1001, 1004)
SETTLE_S = 300


def _record(name: str, **figures) -> None:
    path = os.getenv("PT_FAULTS_RESULTS")
    if path:
        with open(path, "a") as out:
            out.write(json.dumps({"name": name, **figures}) + "\n")


def _ask(user, shot, model, *, count: int, steps: int, seed: int = 1, last: int = FRAMES[1]) -> GenerationRequest:
    return services.request_create(user=user, shot=shot, model=model, first_frame=FRAMES[0], last_frame=last,
                                   count=count, steps=steps, base_seed=seed)


def _settled(request_ids) -> bool:
    return not GenerationRequest.objects.filter(pk__in=request_ids, status__in=["queued", "running"]).exists()


def _running_with_frames() -> Variation | None:
    return Variation.objects.filter(status="running", frames_done__gte=1).first()


def _resumed_after(moment: float, request_ids) -> bool:
    """Some variation of these requests was claimed after ``moment`` (time.time())."""
    return RequestEvent.objects.filter(request_id__in=request_ids, type="variation.started",
                                       created_at__gt=_aware(moment)).exists()


def _aware(moment: float):
    from datetime import UTC, datetime

    return datetime.fromtimestamp(moment, tz=UTC)


def _check(request_ids) -> dict:
    """The figures of the suite: completed / expected, duplicates, partial versions visible; the log in order."""
    completed = duplicates = partial = 0
    for request in GenerationRequest.objects.filter(pk__in=request_ids):
        frames = request.last_frame - request.first_frame + 1
        types = list(RequestEvent.objects.filter(request=request).order_by("seq").values_list("type", flat=True))
        seqs = list(RequestEvent.objects.filter(request=request).order_by("seq").values_list("seq", flat=True))
        assert seqs == list(range(1, len(seqs) + 1)), f"request {request.pk}: its event log has gaps"
        assert types.count("request.settled") == (1 if request.status in ("review", "failed") else 0), types
        variations = list(request.variations.all())
        completed += request.status == "review" and all(v.status == "done" for v in variations)
        for variation in variations:
            dones = RequestEvent.objects.filter(request=request, type="variation.done",
                                                payload__variation=variation.pk).count()
            duplicates += max(0, variation.output_attempts - 1) + max(0, dones - 1)
            partial += len(services.variation_attempt_folders(variation)) if variation.status == "done" else 0
            if variation.status == "done":
                written = list((Path(variation.work_dir) / "exr").glob("element.*.exr"))
                partial += len(written) != frames
            elif Path(variation.work_dir).exists():
                partial += 1
    return {"completed": completed, "expected": len(request_ids), "duplicates": duplicates,
            "partial_visible": partial}


def _assert_clean(figures: dict, viewers: Viewers | None = None) -> None:
    assert figures["completed"] == figures["expected"], figures
    assert figures["duplicates"] == 0 and figures["partial_visible"] == 0, figures
    if viewers is not None:
        assert figures["viewers_complete"] == figures["viewers"], (figures, viewers.describe())
        assert figures["viewers_refused"] == 0, figures


def _settled_and_seen(request_ids, viewers: Viewers | None) -> dict:
    """The suite's figures, with the viewers' once they have caught up."""
    figures = _check(request_ids)
    if viewers is not None:
        figures.update(viewers.check())
    return figures


def _fresh_worker(workers, **extra):
    if workers.current is not None:
        workers.current.stop()
    return workers.start(**FAULT_ENV, **extra)


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings.REDIS_URL)


def _settle_and_check(name: str, request, viewers, *, since: float, recover_s: float | None = None) -> dict:
    """The end of every fault: the request settles, its figures (recover_s, when not measured already, from
    ``since`` to settled) are recorded under ``name``, and nothing is missing, doubled or half-visible."""
    wait_for(lambda: _settled([request.pk]), "the request to settle", timeout=SETTLE_S)
    if recover_s is None:
        recover_s = time.time() - since
    figures = _settled_and_seen([request.pk], viewers)
    _record(name, **figures, recover_s=round(recover_s, 2))
    _assert_clean(figures, viewers)
    return figures


def _running_request(workers, compositor, shot, show_model, watch, *, count: int, steps: int):
    """A fresh worker and a watched request, once a variation is part-way through its frames."""
    worker = _fresh_worker(workers)
    request = _ask(compositor, shot, show_model, count=count, steps=steps)
    viewers = watch(request)
    wait_for(_running_with_frames, "a variation part-way through its frames", timeout=240)
    return worker, request, viewers


def test_a_worker_sigkilled_during_generation(workers, compositor, shot, show_model, watch):
    first, request, viewers = _running_request(workers, compositor, shot, show_model, watch, count=2, steps=10)
    assert first.kill() == -9
    killed = time.time()
    workers.start(wait=False, **FAULT_ENV)
    wait_for(lambda: _resumed_after(killed, [request.pk]), "the killed variation to be taken over", timeout=120)
    _settle_and_check("worker_sigkill_generation", request, viewers, since=killed,
                      recover_s=time.time() - killed)
    types = list(RequestEvent.objects.filter(request=request).values_list("type", flat=True))
    assert "variation.requeued" in types or types.count("variation.started") > 2


def test_redis_flushed_mid_run(workers, compositor, shot, show_model, watch):
    _, request, viewers = _running_request(workers, compositor, shot, show_model, watch, count=3, steps=6)
    client = _redis()
    assert client.llen("gpu") >= 1, "the flush must lose tickets for the test to mean anything"
    client.flushdb()  # this run's Redis database only: the queued tickets and the channel groups go
    flushed = time.time()
    wait_for(lambda: _resumed_after(flushed, [request.pk]), "work to resume after the flush", timeout=120)
    _settle_and_check("redis_flushed", request, viewers, since=flushed,
                      recover_s=time.time() - flushed)


def _restart_redis() -> None:
    """Stop the Redis server REDIS_URL names without saving (everything in it is lost, every database), start it
    again as .ci/run does, and wait until it answers."""
    from urllib.parse import urlsplit

    port = str(urlsplit(settings.REDIS_URL).port or 6379)
    subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "shutdown", "nosave"], capture_output=True)
    wait_for(lambda: subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "ping"],
                                    capture_output=True).returncode != 0, "Redis to stop", timeout=30)
    subprocess.run(["redis-server", "--daemonize", "yes", "--bind", "127.0.0.1", "--port", port, "--save", "",
                    "--appendonly", "no"], check=True, capture_output=True)
    wait_for(lambda: b"PONG" in subprocess.run(["redis-cli", "-h", "127.0.0.1", "-p", port, "ping"],
                                               capture_output=True).stdout, "Redis to answer again", timeout=30)


@pytest.mark.skipif(os.getenv("PT_FAULTS_RESTART_REDIS") != "1",
                    reason="restarting Redis hits every user of it: PT_FAULTS_RESTART_REDIS=1")
def test_redis_restarted_mid_run(workers, compositor, shot, show_model, watch):
    """The Redis server itself stopped and started again empty (the broker, the queued tickets, the channel layer's
    pub/sub, every connection): the worker reconnects, recovery re-derives the queue, the viewers catch up."""
    _, request, viewers = _running_request(workers, compositor, shot, show_model, watch, count=3, steps=6)
    _restart_redis()
    restarted = time.time()
    wait_for(lambda: _resumed_after(restarted, [request.pk]), "work to resume after the restart", timeout=120)
    _settle_and_check("redis_restarted", request, viewers, since=restarted,
                      recover_s=time.time() - restarted)


def _local_ports(pid: int) -> set[int]:
    """The local TCP ports of process ``pid``'s sockets (from /proc: its fds' socket inodes in /proc/net/tcp)."""
    inodes = set()
    for fd in Path(f"/proc/{pid}/fd").iterdir():
        try:
            target = os.readlink(fd)
        except OSError:
            continue
        if target.startswith("socket:["):
            inodes.add(target[8:-1])
    ports = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if fields[9] in inodes:
                ports.add(int(fields[1].rsplit(":", 1)[1], 16))
    return ports


def _cut_connections(client: redis.Redis, pid: int) -> int:
    """Kill the Redis connections of process ``pid`` (our worker) on this run's database, and no one else's."""
    db = client.connection_pool.connection_kwargs.get("db", 0)
    ports = _local_ports(pid)
    cut = 0
    for entry in client.client_list():
        if int(entry.get("db", -1)) == db and int(entry["addr"].rsplit(":", 1)[1]) in ports:
            cut += bool(client.client_kill_filter(_id=entry["id"]))
    return cut


def test_the_broker_connection_cut_mid_run(workers, compositor, shot, show_model, watch):
    worker, request, viewers = _running_request(workers, compositor, shot, show_model, watch, count=2, steps=10)
    assert _cut_connections(_redis(), worker.proc.pid) >= 1
    cut = time.time()
    _settle_and_check("broker_connection_cut", request, viewers, since=cut)


def _tmpfs(folder: Path, size: str) -> bool:
    folder.mkdir(parents=True, exist_ok=True)
    return subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(folder)],
                          capture_output=True).returncode == 0


def test_the_work_area_disk_full_then_freed(workers, compositor, shot, show_model, watch):
    """A tmpfs of 64 KiB over this shot's work folder: the attempt fails with ENOSPC, is retried after a back-off;
    the disk grows back and the retry completes. Nothing half-written is left in view."""
    folder = inside(Path(settings.WORK_ROOT) / shot.show.code / shot.code, settings.WORK_ROOT)
    shutil.rmtree(folder, ignore_errors=True)
    if not _tmpfs(folder, "64k"):
        pytest.skip("cannot mount a tmpfs here (not root): the disk-full fault needs one")
    try:
        _fresh_worker(workers, PT_MAX_ATTEMPTS="8")
        request = _ask(compositor, shot, show_model, count=1, steps=2)
        viewers = watch(request)
        wait_for(lambda: RequestEvent.objects.filter(request=request, type="variation.requeued").exists(),
                 "the full disk to be met and the variation requeued", timeout=240)
        full = time.time()
        subprocess.run(["mount", "-o", "remount,size=64m", str(folder)], check=True)
        _settle_and_check("work_disk_full", request, viewers, since=full)
        requeued = RequestEvent.objects.filter(request=request, type="variation.requeued").first().payload
        assert requeued["error"].startswith("OSError") and requeued["retry_in_s"] >= 1, requeued
    finally:
        subprocess.run(["umount", "-l", str(folder)], capture_output=True)


@pytest.mark.skipif(os.getenv("PT_FAULTS_RESTART_POSTGRES") != "1",
                    reason="restarting PostgreSQL hits every user of it: PT_FAULTS_RESTART_POSTGRES=1")
def test_postgres_restarted_mid_run(workers, compositor, shot, show_model, watch):
    _, request, viewers = _running_request(workers, compositor, shot, show_model, watch, count=2, steps=10)
    version = sorted(os.listdir("/etc/postgresql"))[0]
    subprocess.run(["pg_ctlcluster", "--skip-systemctl-redirect", version, "main", "restart"], check=True)
    restarted = time.time()
    from django.db import connection

    connection.close()
    wait_for(lambda: RequestEvent.objects.filter(request=request, created_at__gt=_aware(restarted)).exists(),
             "the request's work to go on after the restart", timeout=120)
    _settle_and_check("postgres_restarted", request, viewers, since=restarted,
                      recover_s=time.time() - restarted)


def test_the_portal_restarted_with_viewers_connected(workers, service_env, compositor, shot, show_model, watch):
    """An ASGI server of the test's own, SIGKILLed while viewers watch a running request and started again on the
    same port while the worker goes on appending events: the viewers reconnect with their last seq and catch up,
    every stream the log exactly."""
    from tests.production.conftest import AsgiServer

    _fresh_worker(workers)
    server = AsgiServer(service_env)
    try:
        request = _ask(compositor, shot, show_model, count=2, steps=10)
        viewers = watch(request, server=server)
        wait_for(_running_with_frames, "a variation part-way through its frames", timeout=240)
        assert server.kill() == -9
        killed = time.time()
        wait_for(lambda: RequestEvent.objects.filter(request=request, created_at__gt=_aware(killed)).exists(),
                 "an event the viewers cannot have been sent", timeout=60)
        connects = sum(viewers.connects)
        server = server.again()
        wait_for(lambda: sum(viewers.connects) >= connects + VIEWERS and viewers.caught_up(),
                 "every viewer to reconnect and catch up", timeout=60)
        figures = _settle_and_check("portal_restarted_with_viewers", request, viewers, since=killed,
                                    recover_s=time.time() - killed)
        assert figures["viewer_reconnects"] >= VIEWERS
    finally:
        server.stop()


def test_a_variation_stuck_past_its_hard_limit_ends_its_solo_worker(workers, compositor, shot, show_model, watch):
    """The solo pool enforces no time limit of Celery's: a variation stuck where it never checks (its plate's first
    frame held by a write lease, so the worker's open(2) waits in the kernel, as on a file server gone quiet) is
    failed by the watchdog at soft + grace, and the worker process ends (the supervisor starts it again); the next
    worker does not run it again."""
    import fcntl
    import signal

    from generation.engine.sequence import frame_path
    from generation.time_limits import HARD_LIMIT_EXIT_CODE

    if workers.current is not None:
        workers.current.stop()
    request = _ask(compositor, shot, show_model, count=1, steps=2, seed=5)
    viewers = watch(request)
    first = frame_path(request.plate.path_pattern, FRAMES[0])
    previous = signal.signal(signal.SIGIO, signal.SIG_IGN)  # the lease's break notice; the kernel waits 45 s
    held = os.open(first, os.O_RDONLY)
    try:
        fcntl.fcntl(held, fcntl.F_SETLEASE, fcntl.F_WRLCK)  # another process's open waits until it is let go
        stuck = workers.start(wait=False, PT_GENERATE_SOFT_LIMIT_S="4", PT_HARD_LIMIT_GRACE_S="2", **FAULT_ENV)
        wait_for(lambda: not stuck.alive, "the stuck worker to end itself at its hard limit", timeout=40)
    finally:
        os.close(held)
        signal.signal(signal.SIGIO, previous)
    assert stuck.proc.returncode == HARD_LIMIT_EXIT_CODE, stuck.log_tail()
    variation = request.variations.get()
    assert variation.status == "failed" and "hard time limit of 6 s" in variation.error, variation.error
    assert services.variation_attempt_folders(variation) == [] and not Path(variation.work_dir).exists()
    workers.start(wait=False, **FAULT_ENV)  # what the supervisor does; the redelivered ticket finds nothing to run
    time.sleep(6)
    figures = _settled_and_seen([request.pk], viewers)
    assert figures["viewers_complete"] == figures["viewers"], viewers.describe()
    assert GenerationRequest.objects.get(pk=request.pk).status == "failed"
    assert request.variations.get().attempts == 1


def test_fair_share_eight_requesters_two_workers(workers, django_user_model, show, shot, show_model):
    """8 people × 3 requests at once on 2 worker processes: all complete, and no one waits much longer than
    the others (the largest of the people's mean waits over the mean of them; goal ≤ 2)."""
    if workers.current is not None:
        workers.current.stop()
    pair = [workers.start(**FAULT_ENV), workers.start(**FAULT_ENV)]
    people = []
    for n in range(8):
        user = django_user_model.objects.create_user(f"req{n}", password="x")
        Membership.objects.create(user=user, show=show, role="compositor")
        people.append(user)
    made: dict[int, list[int]] = {}

    def ask_three(user):
        from django.db import connection

        try:
            made[user.pk] = [_ask(user, shot, show_model, count=1, steps=1, seed=user.pk * 10 + k,
                                  last=FRAMES[0] + 1).pk for k in range(3)]
        finally:
            connection.close()

    threads = [threading.Thread(target=ask_three, args=(user,)) for user in people]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    ids = [pk for pks in made.values() for pk in pks]
    wait_for(lambda: _settled(ids), "24 requests to settle", timeout=SETTLE_S * 2)
    assert all(worker.alive for worker in pair)
    waits = {}
    for user_id, pks in made.items():
        rows = GenerationRequest.objects.filter(pk__in=pks)
        waits[user_id] = statistics.mean(
            (r.variations.get().started_at - r.created_at).total_seconds() for r in rows)
    ratio = max(waits.values()) / statistics.mean(waits.values())
    figures = _check(ids)
    _record("fair_share", **figures, max_over_mean_wait=round(ratio, 3),
            mean_wait_s=round(statistics.mean(waits.values()), 2))
    _assert_clean(figures)
    assert ratio <= 2.0, waits


def test_two_claims_at_once_on_postgresql_one_wins(workers, compositor, shot, show_model):
    """Eight threads deliver the same variation at once (no worker running): one lease, one attempt."""
    from django.db import connection

    from tests.factories import request_with_done_variations

    if workers.current is not None:
        workers.current.stop()  # no live worker or sweeper may take it meanwhile
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
    GenerationRequest.objects.filter(pk=request.pk).update(status="queued")
    variation = request.variations.get()
    Variation.objects.filter(pk=variation.pk).update(status="queued")
    barrier, won = threading.Barrier(8), []

    def claim(n: int) -> None:
        try:
            barrier.wait()
            if services.variation_claim(variation_id=variation.pk, worker_name=f"w{n}") is not None:
                won.append(n)
        finally:
            connection.close()

    threads = [threading.Thread(target=claim, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    variation.refresh_from_db()
    assert len(won) == 1 and variation.attempts == 1 and variation.claimed_by == f"w{won[0]}"
    assert RequestEvent.objects.filter(request=request, type="variation.started").count() == 1
