"""Where tasks run.

Production: on Celery workers through the Redis broker. Embedded default: on one worker thread inside the
portal process, running the very same Celery task code (``Task.apply``), so one machine needs no Redis.
Tasks are always sent after the surrounding transaction commits, so a worker never sees a missing row.
"""

import asyncio
import importlib
import logging
import threading
from concurrent.futures import Future, ThreadPoolExecutor

from django.conf import settings
from django.db import close_old_connections, transaction

log = logging.getLogger(__name__)

_executor: ThreadPoolExecutor | None = None
_executor_lock = threading.Lock()
_server_loop: asyncio.AbstractEventLoop | None = None


def remember_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """The ASGI server's loop: the embedded worker announces events on it (the in-memory layer is per loop)."""
    global _server_loop
    _server_loop = loop


def server_loop() -> asyncio.AbstractEventLoop | None:
    return _server_loop


def _embedded_executor() -> ThreadPoolExecutor:
    global _executor
    with _executor_lock:
        if _executor is None:
            _executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="pt-worker")
        return _executor


def _task(task):
    """A task object, or a task's dotted name imported here (on the worker thread, not in the request)."""
    if not isinstance(task, str):
        return task
    from celery import current_app

    importlib.import_module(task.rsplit(".", 1)[0])
    return current_app.tasks[task]


def _run_embedded(task, args: tuple) -> None:
    try:
        task = _task(task)
        result = task.apply(args=args)
        if result.failed():
            log.error("task %s%r failed: %s", task.name, args, result.result)
    except Exception:  # noqa: BLE001 - a task that cannot even be found; the worker thread must live on
        log.exception("task %s%r could not run", task, args)
    finally:
        close_old_connections()


def enqueue(task, *args) -> None:
    """Send `task(*args)` once the current transaction commits. `task` may be a task's dotted name, so the web
    process never imports the engine (torch) just to queue a generation."""
    transaction.on_commit(lambda: send_now(task, *args))


def send_now(task, *args) -> Future | None:
    if settings.PT_EMBEDDED_WORKER:
        return _embedded_executor().submit(_run_embedded, task, args)
    if isinstance(task, str):
        from celery import current_app

        current_app.send_task(task, args=args)  # routed by name (CELERY_TASK_ROUTES)
        return None
    task.apply_async(args=args)
    return None


def send_later(task, *args, countdown: float) -> None:
    """Send `task(*args)` in ``countdown`` seconds (a retry's back-off): on the embedded worker from a timer."""
    if settings.PT_EMBEDDED_WORKER:
        timer = threading.Timer(countdown, send_now, args=(task, *args))
        timer.daemon = True
        timer.start()
        return
    from celery import current_app

    current_app.send_task(task if isinstance(task, str) else task.name, args=args, countdown=countdown)


def drain_embedded(timeout: float = 600.0) -> None:
    """Wait until the embedded worker has run everything sent so far (tests and the demo command)."""
    marker = _embedded_executor().submit(lambda: None)
    marker.result(timeout=timeout)


def embedded_backlog() -> int:
    """Tasks waiting for the embedded worker thread (``/metrics``'s queue depth on the embedded default)."""
    with _executor_lock:
        return 0 if _executor is None else _executor._work_queue.qsize()


def embedded_usable() -> bool:
    """The embedded worker can take tasks: not shut down, no thread died (it is started on the first task)."""
    with _executor_lock:
        return _executor is None or not (_executor._shutdown or _executor._broken)
