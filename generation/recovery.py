"""Recovery: nothing stranded. The database is the source of truth; the GPU queue is re-derived from it.

A message on the GPU queue is a ticket for one run (``generation.fair_share``), so the queue is right when it
holds as many tickets as there are variations waiting. Recovery:

1. puts every running variation whose owner is dead back in the queue (``requeue``, ``variation.requeued``): on
   the embedded default, at the portal's start, every lease is a dead process's; in production, a lease that has
   expired (its owner stopped renewing it);
2. tops the queue up with tickets: waiting variations minus the tickets the broker holds. A surplus ticket finds
   nothing claimable and does nothing, so recovering twice, or on two workers at once, is harmless.

Every production worker recovers when it starts and then every ``PT_RECOVERY_INTERVAL_S`` (one worker at a time,
by a Redis lock), so a flushed broker or a killed worker strands nothing for longer than a lease and a sweep.
Releases recover the same way in ``review.tasks``.
"""

import logging
import threading

from django.conf import settings
from django.db import close_old_connections

from generation import leases, services
from generation.models import RequestStatus, Variation, VariationStatus
from portal import worker

log = logging.getLogger(__name__)

GPU_TASK = "generation.tasks.generate_variation"
GPU_QUEUE = "gpu"


def requeue_dead(*, every_owner_dead: bool) -> int:
    """Running variations with no live owner go back to the queue; how many did."""
    running = Variation.objects.filter(status=VariationStatus.RUNNING)
    if not every_owner_dead:
        running = running.filter(leases.free())
    requeued = 0
    for variation in running.only("pk", "index", "request_id", "status", "lease_owner"):
        requeued += services.variation_requeue(variation=variation, error="its worker stopped; requeued",
                                               expired_only=not every_owner_dead)
    return requeued


def waiting() -> int:
    """Variations that need a ticket: queued (or backing off), in a request that was not cancelled."""
    return (Variation.objects.filter(status=VariationStatus.QUEUED)
            .exclude(request__status=RequestStatus.CANCELLED).count())


def broker_tickets(queue: str = GPU_QUEUE) -> int:
    """Tickets waiting in the broker's queue (0 on the embedded worker, whose queue died with its process)."""
    if settings.PT_EMBEDDED_WORKER or not settings.CELERY_BROKER_URL.startswith("redis"):
        return 0
    import redis

    client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=10)
    try:
        # kombu keeps one list per priority step: "gpu", then "gpu\x06\x163" and so on.
        return sum(client.llen(name) for name in [queue, *client.scan_iter(match=f"{queue}\x06\x16*")])
    finally:
        client.close()


def recover(*, every_owner_dead: bool = False) -> dict:
    """Requeue dead owners' variations, then top the queue up; what was done."""
    requeued = requeue_dead(every_owner_dead=every_owner_dead)
    missing = max(0, waiting() - broker_tickets())
    for _ in range(missing):
        worker.send_now(GPU_TASK, None)
    if requeued or missing:
        log.warning("recovery: %s running variation(s) requeued, %s ticket(s) sent", requeued, missing)
    return {"requeued": requeued, "tickets": missing}


class Sweeper:
    """A production worker's recovery: at its start, then every interval; one worker at a time (a Redis lock)."""

    LOCK = "pt:recovery-sweep"

    def __init__(self, interval: float) -> None:
        self.interval = interval
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pt-recovery", daemon=True)

    def start(self) -> "Sweeper":
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()

    def _run(self) -> None:
        while True:
            try:
                if self._locked():
                    recover()
                    _recover_releases()
            except Exception:  # noqa: BLE001 - the database or the broker may be restarting: sweep again later
                log.warning("recovery sweep failed; trying again", exc_info=True)
            finally:
                close_old_connections()
            if self._stop.wait(self.interval):
                return

    def _locked(self) -> bool:
        import redis

        client = redis.Redis.from_url(settings.CELERY_BROKER_URL, socket_timeout=10)
        try:
            return bool(client.set(self.LOCK, "1", nx=True, ex=max(1, int(self.interval * 0.8))))
        finally:
            client.close()


_release_recoveries = []  # review.tasks registers its release recovery here (generation does not import review)


def on_recovery(function) -> None:
    """Run ``function()`` with every sweep (review's releases)."""
    _release_recoveries.append(function)


def _recover_releases() -> None:
    for function in _release_recoveries:
        function()


_sweeper: Sweeper | None = None


def start_sweeper(**_) -> None:
    """celery's ``worker_ready``: recover at once, then keep sweeping."""
    global _sweeper
    if _sweeper is None and not settings.PT_EMBEDDED_WORKER:
        _sweeper = Sweeper(float(settings.PT_RECOVERY_INTERVAL_S)).start()
