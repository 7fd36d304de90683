"""The append-only event log of a request, and its live stream.

An event is written in the caller's transaction and only announced to websocket viewers once that
transaction commits, so nobody is told about a row that was rolled back. Viewers that miss the
announcement (a dropped socket, a Redis restart) catch up from the database by `seq`.
"""

import asyncio
import logging
import os
import threading

from asgiref.sync import async_to_sync
from channels.layers import InMemoryChannelLayer, get_channel_layer
from django.db import transaction
from django.db.models import F

from generation.models import GenerationRequest, RequestEvent
from portal import worker

log = logging.getLogger(__name__)


def request_group(request_id: int) -> str:
    return f"request-{request_id}"


def event_append(*, request_id: int, type: str, payload: dict | None = None, actor=None) -> RequestEvent:
    """Append an event with the request's next `seq` and announce it after commit."""
    with transaction.atomic():
        # The UPDATE holds the request row until commit, so concurrent writers get distinct seqs.
        GenerationRequest.objects.filter(pk=request_id).update(last_seq=F("last_seq") + 1)
        seq = GenerationRequest.objects.filter(pk=request_id).values_list("last_seq", flat=True).get()
        event = RequestEvent.objects.create(request_id=request_id, seq=seq, type=type, payload=payload or {},
                                            actor=actor)
        message = event.as_message()
        transaction.on_commit(lambda: _announce(request_id, message))
    return event


def _announce(request_id: int, message: dict) -> None:
    announce(request_group(request_id), {"type": "request.event", "event": message})


def announce(group: str, layer_message: dict) -> None:
    """Send ``layer_message`` to a channel-layer group from any thread (a view, a worker, a consumer's sync
    hop); a failure is logged, never raised: the database has the event and viewers catch up from it."""
    layer = get_channel_layer()
    if layer is None:
        return
    send = layer.group_send(group, layer_message)
    try:
        loop = worker.server_loop()
        if loop is not None and loop.is_running() and not _on_loop(loop):
            # The embedded worker thread, or a sync view in the server: announce on the server's loop
            # (the in-memory layer lives there; the Redis layer's connections too).
            asyncio.run_coroutine_threadsafe(send, loop).result(timeout=5)
        elif not isinstance(layer, InMemoryChannelLayer) and not _on_loop(_announcer_loop()):
            asyncio.run_coroutine_threadsafe(send, _announcer_loop()).result(timeout=5)
        else:
            async_to_sync(_await)(send)
    except Exception:  # noqa: BLE001 - the database has the event; viewers catch up on reconnect
        log.warning("could not announce event %s to %s", layer_message["event"].get("seq"), group, exc_info=True)


async def _await(coroutine) -> None:
    await coroutine


_announcer: tuple[int, asyncio.AbstractEventLoop] | None = None
_announcer_lock = threading.Lock()


def _announcer_loop() -> asyncio.AbstractEventLoop:
    """This process's loop for announcing from sync code (a Celery worker): the Redis channel layer keeps its
    connections per loop, so async_to_sync's fresh loop per event reconnected to Redis every time, ~20 ms
    of CPU per event. Per pid: a forked worker child starts its own."""
    global _announcer
    with _announcer_lock:
        if _announcer is None or _announcer[0] != os.getpid():
            loop = asyncio.new_event_loop()
            threading.Thread(target=loop.run_forever, name="pt-announcer", daemon=True).start()
            _announcer = (os.getpid(), loop)
        return _announcer[1]


def _on_loop(loop: asyncio.AbstractEventLoop) -> bool:
    try:
        return asyncio.get_running_loop() is loop
    except RuntimeError:
        return False


def events_after(request_id: int, seq: int, limit: int = 5000) -> list[dict]:
    events = RequestEvent.objects.filter(request_id=request_id, seq__gt=seq).order_by("seq")[:limit]
    return [e.as_message() for e in events]
