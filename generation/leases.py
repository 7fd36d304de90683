"""Leases: which attempt runs a piece of work now, and until when.

A claim is one conditional UPDATE that takes the lease only when it is free (no owner, or its expiry has passed)
and names the new owner, a token unique to the attempt. The holder renews it by heartbeat, every third of its
length; a holder that cannot renew has lost it and stops without moving anything into place. So a second delivery
of a task while the first still runs matches no row and does nothing, and a dead owner's lease runs out and the
next delivery takes the work over. Outputs are written to the attempt's own staging folder and moved into place by
the holder only, under the row's lock (``services.variation_finish``), so two attempts never share a folder.

A lease held by nobody ("retry", with an expiry) is a back-off: the work waits until then before any claim.
"""

import logging
import os
import socket
import threading
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta

from django.conf import settings
from django.db import connection
from django.db.models import Q
from django.utils import timezone

log = logging.getLogger(__name__)

# Bad input is never retried; these are: the disk, the network, the database or the broker going away.
_NOT_TRANSIENT_OS = (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError)


def transient(exc: BaseException) -> bool:
    """An error worth another attempt after a back-off: I/O (a full or flaky disk), a lost database or broker."""
    from django.db import InterfaceError, OperationalError
    from kombu.exceptions import OperationalError as BrokerError
    from redis.exceptions import ConnectionError as RedisConnectionError

    if isinstance(exc, _NOT_TRANSIENT_OS):
        return False
    return isinstance(exc, (OSError, OperationalError, InterfaceError, BrokerError, RedisConnectionError))


BACKOFF_OWNER = "retry"  # a lease no one holds: the work waits out its back-off


def lease_seconds() -> float:
    return float(settings.PT_LEASE_SECONDS)


def owner_token(worker_name: str) -> str:
    """The owner of one attempt: the worker, its process and a random part (two attempts never share one)."""
    return f"{worker_name or socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:10]}"


def expiry(seconds: float | None = None) -> datetime:
    return timezone.now() + timedelta(seconds=lease_seconds() if seconds is None else seconds)


def free(prefix: str = "lease_") -> Q:
    """The lease is free: no owner, or its expiry passed (``prefix``: the lease's field names on the model)."""
    now = timezone.now()
    return (Q(**{f"{prefix}owner": ""}) | Q(**{f"{prefix}expires_at__isnull": True})
            | Q(**{f"{prefix}expires_at__lt": now}))


def backoff_seconds(attempt: int) -> float:
    """Exponential back-off after a transient failure: base × 2^(attempt-1), capped."""
    base, cap = float(settings.PT_RETRY_BACKOFF_S), float(settings.PT_RETRY_BACKOFF_MAX_S)
    return min(cap, base * 2 ** max(0, attempt - 1))


class Heartbeat:
    """Renews a lease every third of its length on a thread of its own while the block runs.

    ``renew()`` returns False once the lease is someone else's: ``lost`` is then True and stays so. A renewal that
    raises (the database restarting) is tried again at the next beat; the lease lapses only if that lasts longer
    than the lease.
    """

    def __init__(self, renew: Callable[[], bool], interval: float | None = None) -> None:
        self._renew = renew
        self._interval = interval if interval is not None else lease_seconds() / 3
        self._stop = threading.Event()
        self._lost = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pt-lease-heartbeat", daemon=True)

    @property
    def lost(self) -> bool:
        return self._lost.is_set()

    def __enter__(self) -> "Heartbeat":
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._thread.join(timeout=self._interval + 5)

    def _run(self) -> None:
        try:
            while not self._stop.wait(self._interval):
                try:
                    held = self._renew()
                except Exception:  # noqa: BLE001 - the database may be restarting: try at the next beat
                    log.warning("lease renewal failed; trying again", exc_info=True)
                    connection.close()
                    continue
                if not held:
                    self._lost.set()
                    return
        finally:
            connection.close()


def work_lease_take(kind: str, key: int, worker_name: str):
    """Take the lease on work without a status row here (a release) when it is free: the held ``WorkLease``
    (its ``owner`` the attempt's token, ``attempts`` counting this one), or None while another lives."""
    from django.db.models import F

    from generation.models import WorkLease

    WorkLease.objects.get_or_create(kind=kind, key=key)
    owner = owner_token(worker_name)
    taken = WorkLease.objects.filter(free(""), kind=kind, key=key).update(
        owner=owner, expires_at=expiry(), attempts=F("attempts") + 1)
    return WorkLease.objects.get(kind=kind, key=key) if taken else None


def work_lease_renew(lease) -> bool:
    from generation.models import WorkLease

    return bool(WorkLease.objects.filter(pk=lease.pk, owner=lease.owner).update(expires_at=expiry()))


def work_lease_end(lease, *, wrote_output: bool) -> bool:
    """The holder is done (``wrote_output``: its output was moved into place, counted); False if it was lost."""
    from django.db.models import F

    from generation.models import WorkLease

    fields = {"output_attempts": F("output_attempts") + 1} if wrote_output else {}
    return bool(WorkLease.objects.filter(pk=lease.pk, owner=lease.owner).update(owner="", expires_at=None, **fields))


def work_lease_holds(lease) -> bool:
    from generation.models import WorkLease

    return WorkLease.objects.filter(pk=lease.pk, owner=lease.owner).exists()


class LeaseLost(Exception):
    """Another attempt holds the work now: this one moves nothing into place."""
