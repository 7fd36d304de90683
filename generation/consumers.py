"""The live stream of one request.

Connect to /ws/requests/<id>/?after=<seq>: the consumer sends every event after <seq> from the database,
then live events, in `seq` order, never twice. Gaps in the live stream (events announced out of order by
two workers, or an announcement lost with Redis) are filled from the database.

Who may watch is checked at connect and again while the socket is open: before every live event that carries
people's words or decisions (notes, prompts, picks; progress ticks are not worth a database hop per viewer), on
every ping, and every PT_WS_RECHECK_SECONDS on a quiet socket. A user removed from the show or deactivated is
closed with 4403 within seconds, and gets no event after the change. The periodic check also catches up from the
database, so an event whose announcement was lost (a worker's broker connection cut as it appended the request's
last event) reaches the viewer within a recheck, not only when a later event comes. A refusal is
always 4403 after accept, the code the page takes as final. A frame the consumer cannot read is answered
with an ``error`` message; the socket stays open.
"""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from generation.events import events_after, request_group
from generation.selectors import request_for_member
from portal.errors import NotFound
from portal.ws_auth import FORBIDDEN, query_int

RECHECK_SECONDS = 5.0
# Frequent events with nothing a person wrote: delivered on the last membership check (the periodic one).
TICKS = frozenset({"variation.progress", "variation.frame", "release.progress"})


@database_sync_to_async
def _may_view(user, request_id: int) -> bool:
    """Whether the user, as the database has them now (active, still on the show), may watch the request."""
    if user is None or not user.is_authenticated:
        return False
    current = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    if current is None:
        return False
    try:
        request_for_member(current, request_id)
    except NotFound:
        return False
    return True


_events_after = database_sync_to_async(events_after)


class EventStreamConsumer(AsyncJsonWebsocketConsumer):
    """One append-only event log, streamed by ``seq``: the catch-up from the database, the live events in order and
    never twice, gaps filled from the database, the membership watch, ``ping``/``pong``. A subclass names the log
    (``stream_key``, ``event_type``, ``group_name``, ``log_after``) and who may watch it (``may_watch``)."""

    event_type = "request.event"  # the channel-layer message a live event comes in
    stream_key = "request"  # the log's id in every event, and the URL's kwarg is <stream_key>_id
    quiet = TICKS  # event types delivered without a membership check of their own

    def group_name(self) -> str:
        raise NotImplementedError

    async def may_watch(self) -> bool:
        raise NotImplementedError

    async def log_after(self, seq: int) -> list[dict]:
        raise NotImplementedError

    async def on_allowed(self):
        """After the access check, before joining the group: a subclass loads what it keeps per socket."""

    async def on_joined(self):
        """After joining the group, before the catch-up: an event appended here is caught up like any other."""

    async def connect(self):
        self.stream_id = int(self.scope["url_route"]["kwargs"][f"{self.stream_key}_id"])
        self.sent_seq = query_int(self.scope, "after")
        self.caught_up = False
        self.pending: list[dict] = []
        self.allowed = False
        self.watch = None
        self.sending = asyncio.Lock()  # one sender at a time: the live path and the periodic catch-up
        await self.accept()  # refusals too: a close before accept is an HTTP 403 that the page retries
        if not await self.may_watch():
            await self.close(code=FORBIDDEN)
            return
        self.allowed = True
        await self.on_allowed()
        # Join first, then read the database: nothing falls between the two.
        await self.channel_layer.group_add(self.group_name(), self.channel_name)
        self.watch = asyncio.ensure_future(self._watch_membership())
        await self.on_joined()
        async with self.sending:
            await self._send_from_database()
            self.caught_up = True
            for event in sorted(self.pending, key=lambda e: e["seq"]):
                await self._deliver(event)
            self.pending.clear()

    async def disconnect(self, code):
        if getattr(self, "watch", None) is not None:
            self.watch.cancel()
        if hasattr(self, "stream_id"):
            await self.channel_layer.group_discard(self.group_name(), self.channel_name)

    async def _watch_membership(self):
        interval = float(getattr(settings, "PT_WS_RECHECK_SECONDS", RECHECK_SECONDS))
        while True:
            await asyncio.sleep(interval)
            if not await self._still_allowed():
                return
            if self.caught_up:
                async with self.sending:
                    await self._send_from_database()  # whatever was appended but never announced

    async def _still_allowed(self) -> bool:
        if await self.may_watch():
            return True
        self.allowed = False  # nothing more is delivered, even an event already on its way
        await self.channel_layer.group_discard(self.group_name(), self.channel_name)
        await self.close(code=FORBIDDEN)
        return False

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        """A frame that is not a JSON object gets an answer, not a crashed socket."""
        if text_data is None:
            return await self._answer_bad_frame("frames are JSON text, not binary")
        try:
            content = json.loads(text_data)
        except ValueError:
            return await self._answer_bad_frame("a frame must be a JSON object such as {\"type\": \"ping\"}")
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        if not isinstance(content, dict) or content.get("type") != "ping":
            return await self._answer_bad_frame("the only message a viewer sends is {\"type\": \"ping\"}")
        if await self._still_allowed():
            await self.send_json({"type": "pong", "seq": self.sent_seq})

    async def _answer_bad_frame(self, message: str):
        await self.send_json({"type": "error", "code": "bad_frame", "message": message})

    async def dispatch(self, message):
        # Channels hops to its one sync thread to close stale database connections before every handler:
        # with 50 viewers, 50 hops per event, queued on that thread. A live event needs no connection here
        # (a gap is filled through database_sync_to_async, which closes old connections itself).
        if message["type"] == self.event_type:
            await self.stream_event(message)
        else:
            await super().dispatch(message)

    async def stream_event(self, message):
        event = message["event"]
        if not self.allowed:
            return  # refused, or closed for lost membership
        if not self.caught_up:
            self.pending.append(event)
            return
        if event.get("type") not in self.quiet and not await self._still_allowed():
            return
        async with self.sending:
            await self._deliver(event)

    async def _deliver(self, event: dict):
        if event["seq"] <= self.sent_seq:
            return  # already sent (from the database or an earlier announcement)
        if event["seq"] > self.sent_seq + 1:
            # Fill the gap from the database, in order. The event itself is announced only after its commit,
            # so if it is ours it was just sent from there; if the database does not have it, it is not ours
            # (a stray announcement) and is never forwarded.
            await self._send_from_database()
            return
        if event.get(self.stream_key) != self.stream_id:
            return
        await self.send_json(event)
        self.sent_seq = event["seq"]

    async def _send_from_database(self):
        while self.allowed:
            batch = await self.log_after(self.sent_seq)
            for event in batch:
                await self.send_json(event)
                self.sent_seq = event["seq"]
            if len(batch) < 5000:
                return


class RequestConsumer(EventStreamConsumer):
    """/ws/requests/<id>/: the request's event log."""

    def group_name(self) -> str:
        return request_group(self.stream_id)

    @property
    def request_id(self) -> int:
        return self.stream_id

    async def may_watch(self) -> bool:
        return await _may_view(self.scope.get("user"), self.stream_id)

    async def log_after(self, seq: int) -> list[dict]:
        return await _events_after(self.stream_id, seq)

    request_event = EventStreamConsumer.stream_event
