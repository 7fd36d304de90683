"""Worker heartbeats: how the portal knows a Celery worker was alive recently, even a busy one.

A solo-pool worker in the middle of a ten-minute variation answers no ``control.ping`` (its consumer loop is
blocked by the task), so ``/health/`` cannot ask it. Instead each worker process writes a small Redis key every
``PT_WORKER_HEARTBEAT_SECONDS`` from a daemon thread, with the queues it consumes; the key expires after three
beats, so a killed worker disappears by itself. Queue depth is read from the broker's own lists.
"""

import json
import logging
import os
import socket
import threading
import time

from django.conf import settings

log = logging.getLogger(__name__)

KEY_PREFIX = "pt:worker:"
# kombu's Redis transport keeps priorities 3, 6, 9 of a queue in lists named queue + this + the priority.
_PRIORITY_SEP = "\x06\x16"
_PRIORITIES = (3, 6, 9)


def interval() -> float:
    return float(os.getenv("PT_WORKER_HEARTBEAT_SECONDS", "10"))


def _redis():
    import redis

    return redis.Redis.from_url(settings.REDIS_URL, socket_connect_timeout=3, socket_timeout=5)


def beat(client, hostname: str, queues: list[str]) -> None:
    record = {"hostname": hostname, "queues": sorted(queues), "seen": time.time(), "pid": os.getpid()}
    client.set(KEY_PREFIX + hostname, json.dumps(record), ex=max(1, int(3 * interval())))


def _loop(hostname: str, queues: list[str], stop: threading.Event) -> None:
    client = _redis()
    while not stop.is_set():
        try:
            beat(client, hostname, queues)
        except Exception as error:  # noqa: BLE001 - Redis away for a moment: the next beat tries again
            log.warning("worker heartbeat failed: %s", error)
        stop.wait(interval())


_stop = threading.Event()
_started: list[str] = []


def start(hostname: str, queues: list[str]) -> threading.Thread:
    _started.append(hostname)
    thread = threading.Thread(target=_loop, args=(hostname, queues, _stop), name="pt-heartbeat", daemon=True)
    thread.start()
    return thread


def connect(app) -> None:
    """Start the heartbeat when a worker of ``app`` is ready; stop it (and remove the key) at shutdown."""
    from celery.signals import worker_ready, worker_shutdown

    @worker_ready.connect(weak=False)
    def _ready(sender=None, **_):
        hostname = getattr(sender, "hostname", None) or socket.gethostname()
        start(hostname, list(app.amqp.queues.consume_from or app.amqp.queues))

    @worker_shutdown.connect(weak=False)
    def _shutdown(**_):
        _stop.set()
        try:  # at once, not by the daemon thread, which may not get to run again before the process exits
            _redis().delete(*(KEY_PREFIX + hostname for hostname in _started))
        except Exception as error:  # noqa: BLE001 - the key expires by itself after three beats
            log.warning("worker heartbeat not removed: %s", error)


def workers_seen(client=None, *, within: float | None = None) -> list[dict]:
    """The heartbeats younger than ``within`` seconds (default PT_WORKER_SEEN_SECONDS, 60)."""
    within = float(os.getenv("PT_WORKER_SEEN_SECONDS", "60")) if within is None else within
    client = client or _redis()
    now = time.time()
    seen = []
    for key in client.scan_iter(match=KEY_PREFIX + "*", count=100):
        raw = client.get(key)
        if not raw:
            continue
        record = json.loads(raw)
        if now - float(record.get("seen", 0)) <= within:
            seen.append(record)
    return seen


def queue_names() -> list[str]:
    """The queues tasks are routed to (CELERY_TASK_ROUTES), in a stable order."""
    return sorted({route["queue"] for route in settings.CELERY_TASK_ROUTES.values()})


def queue_depths(client=None) -> dict[str, int]:
    """Messages waiting in each queue of the Redis broker (every priority), not yet taken by a worker."""
    client = client or _redis()
    depths = {}
    for queue in queue_names():
        names = [queue] + [f"{queue}{_PRIORITY_SEP}{p}" for p in _PRIORITIES]
        with client.pipeline(transaction=False) as pipe:
            for name in names:
                pipe.llen(name)
            depths[queue] = int(sum(pipe.execute()))
    return depths
