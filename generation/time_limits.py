"""Soft and hard time limits that hold on every pool, the solo pool and the embedded worker included.

Celery enforces ``soft_time_limit`` and ``time_limit`` only on its prefork pool (a signal to the child, then
killing it). A task here runs inside a :class:`Deadline` instead:

- soft: the task calls :meth:`Deadline.check` between denoising steps, frames or files; past the soft limit it
  raises :class:`TimeLimit`, and the task records the failure and removes its staging output itself;
- hard: a watchdog thread. If the block is still running at soft + ``PT_HARD_LIMIT_GRACE_S`` (stuck in C code that
  never comes back to a check: a hung mount, a wedged driver), it calls ``on_hard()`` (the failure recorded, the
  staging output removed) and then ends the worker process, the only way to stop a thread: the supervisor starts
  it again (``Restart=always`` in deploy/systemd), and the task's unacknowledged message, when redelivered, finds
  its work failed and does nothing. The embedded worker lives inside the portal and is never ended: there the
  failure is recorded and the stuck thread is left (logged).
"""

import logging
import os
import threading
import time
from collections.abc import Callable

from django.conf import settings
from django.db import connection

log = logging.getLogger(__name__)

HARD_LIMIT_EXIT_CODE = 70  # the worker's exit status after a hard limit (EX_SOFTWARE)
RECORD_TIMEOUT_S = 30.0  # how long the failure's recording may take before the process ends anyway


class TimeLimit(Exception):
    """The task ran past its soft time limit."""


def _end_process() -> None:
    logging.shutdown()
    os._exit(HARD_LIMIT_EXIT_CODE)


class Deadline:
    """``with Deadline(soft_s, on_hard=...) as deadline: ... deadline.check() ...``; ``grace_s`` defaults to
    ``PT_HARD_LIMIT_GRACE_S``; ``end_process`` (tests) replaces ending the process."""

    def __init__(self, soft_s: float, *, on_hard: Callable[[], None], what: str, grace_s: float | None = None,
                 end_process: Callable[[], None] | None = None) -> None:
        self.soft_s = float(soft_s)
        self.grace_s = float(settings.PT_HARD_LIMIT_GRACE_S if grace_s is None else grace_s)
        self.what = what
        self._on_hard = on_hard
        self._end_process = end_process or _end_process
        self._done = threading.Event()
        self._started = 0.0
        self.hard_reached = False
        self._thread = threading.Thread(target=self._watch, name="pt-hard-limit", daemon=True)

    @property
    def soft_message(self) -> str:
        return f"{self.what} ran past its time limit of {self.soft_s:g} s"

    @property
    def hard_message(self) -> str:
        return f"{self.what} ran past its hard time limit of {self.soft_s + self.grace_s:g} s and was stopped"

    def __enter__(self) -> "Deadline":
        self._started = time.monotonic()
        self._thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._done.set()

    def passed(self) -> bool:
        return time.monotonic() - self._started > self.soft_s

    def check(self) -> None:
        """Between steps: raise :class:`TimeLimit` once the soft limit has passed."""
        if self.passed():
            raise TimeLimit(self.soft_message)

    def _record(self) -> None:
        try:
            self._on_hard()
        except Exception:  # noqa: BLE001 - the process is ended all the same; recovery sees the dead lease
            log.exception("recording the hard time limit failed")
        finally:
            connection.close()

    def _watch(self) -> None:
        if self._done.wait(self.soft_s + self.grace_s):
            return
        self.hard_reached = True
        log.critical("%s", self.hard_message)
        # Recorded on a thread of its own, waited for a while: a recording stuck too (the database gone) does not
        # keep the process alive; the dead process's lease then runs out and recovery takes the work.
        recorder = threading.Thread(target=self._record, name="pt-hard-limit-record", daemon=True)
        recorder.start()
        recorder.join(RECORD_TIMEOUT_S)
        if settings.PT_EMBEDDED_WORKER and self._end_process is _end_process:
            log.error("embedded worker: %s; its thread is left running", self.hard_message)
            return
        self._end_process()
