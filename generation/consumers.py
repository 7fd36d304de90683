"""The live stream of one request.

Connect to /ws/requests/<id>/?after=<seq>: the consumer sends every event after <seq> from the database,
then live events, in `seq` order, never twice. Gaps in the live stream (events announced out of order by
two workers, or an announcement lost with Redis) are filled from the database.
"""

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer

from generation.events import events_after, request_group
from generation.selectors import request_for_member
from portal.errors import NotFound
from portal.ws_auth import query_int

FORBIDDEN = 4403


@database_sync_to_async
def _may_view(user, request_id: int) -> bool:
    try:
        request_for_member(user, request_id)
    except NotFound:
        return False
    return True


_events_after = database_sync_to_async(events_after)


class RequestConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.request_id = int(self.scope["url_route"]["kwargs"]["request_id"])
        self.sent_seq = query_int(self.scope, "after")
        self.caught_up = False
        self.pending: list[dict] = []
        user = self.scope.get("user")
        if user is None or not user.is_authenticated or not await _may_view(user, self.request_id):
            await self.close(code=FORBIDDEN)
            return
        # Join first, then read the database: nothing falls between the two.
        await self.channel_layer.group_add(request_group(self.request_id), self.channel_name)
        await self.accept()
        await self._send_from_database()
        self.caught_up = True
        for event in sorted(self.pending, key=lambda e: e["seq"]):
            await self._deliver(event)
        self.pending.clear()

    async def disconnect(self, code):
        if hasattr(self, "request_id"):
            await self.channel_layer.group_discard(request_group(self.request_id), self.channel_name)

    async def receive_json(self, content, **kwargs):
        if isinstance(content, dict) and content.get("type") == "ping":
            await self.send_json({"type": "pong", "seq": self.sent_seq})

    async def dispatch(self, message):
        # Channels hops to its one sync thread to close stale database connections before every handler:
        # with 50 viewers, 50 hops per event, queued on that thread. A live event needs no connection here
        # (a gap is filled through database_sync_to_async, which closes old connections itself).
        if message["type"] == "request.event":
            await self.request_event(message)
        else:
            await super().dispatch(message)

    async def request_event(self, message):
        event = message["event"]
        if not self.caught_up:
            self.pending.append(event)
            return
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
        if event.get("request") != self.request_id:
            return
        await self.send_json(event)
        self.sent_seq = event["seq"]

    async def _send_from_database(self):
        while True:
            batch = await _events_after(self.request_id, self.sent_seq)
            for event in batch:
                await self.send_json(event)
                self.sent_seq = event["seq"]
            if len(batch) < 5000:
                return
