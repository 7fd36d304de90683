"""The live stream of a dailies session: the request stream's protocol, on the session's own event log.

Connect to /ws/sessions/<id>/?after=<seq>: every session event after <seq> from the database, then live ones, in
``seq`` order, never twice, gaps filled from the database; ``{"type": "ping"}`` → ``{"type": "pong", "seq": …}``.
A participant also sends what the session does: ``{"type": "drive", "state": {...}}`` (the driver only),
``{"type": "hand", "to": "<username>"}`` (the driver; a supervisor or director may take control by naming
themselves). Each becomes a session event for everyone; a refused one is answered ``{"type": "error", "code",
"message"}`` and the socket stays open. Opening and closing a socket is presence (``session.presence``).
Refusals (not logged in, not on the show, removed while watching) are 4403 after accept, as for requests.
"""

import asyncio
import json

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.auth import get_user_model

from portal.errors import NotFound, PortalError
from portal.ws_auth import FORBIDDEN, query_int
from review import sessions

RECHECK_SECONDS = 5.0
# A driver's view change carries nothing anyone wrote: delivered on the periodic membership check.
QUIET = frozenset({"session.state", "session.presence"})


@database_sync_to_async
def _participant(user, session_id: int):
    """The user as the database has them now, if they may watch the session; else None."""
    if user is None or not user.is_authenticated:
        return None
    current = get_user_model().objects.filter(pk=user.pk, is_active=True).first()
    if current is None:
        return None
    try:
        sessions.session_for_member(current, session_id)
    except NotFound:
        return None
    return current


_after = database_sync_to_async(sessions.session_events_after)
_drive = database_sync_to_async(sessions.drive)
_hand = database_sync_to_async(sessions.hand_control)
_presence = database_sync_to_async(sessions.presence)
_facts = database_sync_to_async(sessions.session_facts)


class SessionConsumer(AsyncJsonWebsocketConsumer):
    async def connect(self):
        self.session_id = int(self.scope["url_route"]["kwargs"]["session_id"])
        self.sent_seq = query_int(self.scope, "after")
        self.caught_up, self.allowed, self.joined = False, False, False
        self.pending: list[dict] = []
        self.watch = None
        self.drives: dict | None = None  # drive frames not written yet, merged (the newest value of each field)
        self.driving = None
        await self.accept()
        self.user = await _participant(self.scope.get("user"), self.session_id)
        if self.user is None:
            await self.close(code=FORBIDDEN)
            return
        self.allowed = True
        self.facts = await _facts(self.session_id)
        self.group = sessions.session_group(self.session_id)
        await self.channel_layer.group_add(self.group, self.channel_name)  # join first, then read the database
        self.watch = asyncio.ensure_future(self._watch_membership())
        await self._publish(await _presence(user=self.user, session_id=self.session_id, joined=True, announce=False))
        self.joined = True
        await self._catch_up()
        self.caught_up = True
        for event in sorted(self.pending, key=lambda e: e["seq"]):
            await self._deliver(event)
        self.pending.clear()

    async def disconnect(self, code):
        if self.watch is not None:
            self.watch.cancel()
        if getattr(self, "group", None):
            await self.channel_layer.group_discard(self.group, self.channel_name)
        if self.joined:
            self.joined = False
            await self._publish(await _presence(user=self.user, session_id=self.session_id, joined=False,
                                                announce=False))

    async def _publish(self, message: dict):
        """A committed event of ours, to everyone in the session (this socket included, through the group)."""
        await self.channel_layer.group_send(self.group, {"type": "session.event", "event": message})

    async def _watch_membership(self):
        interval = float(getattr(settings, "PT_WS_RECHECK_SECONDS", RECHECK_SECONDS))
        while True:
            await asyncio.sleep(interval)
            if not await self._still_allowed():
                return

    async def _still_allowed(self) -> bool:
        if await _participant(self.user, self.session_id) is not None:
            return True
        self.allowed = False
        await self.channel_layer.group_discard(self.group, self.channel_name)
        await self.close(code=FORBIDDEN)
        return False

    async def receive(self, text_data=None, bytes_data=None, **kwargs):
        try:
            content = json.loads(text_data) if text_data is not None else None
        except ValueError:
            content = None
        if not isinstance(content, dict):
            return await self._error("bad_frame", "a frame is a JSON object such as {\"type\": \"ping\"}")
        await self.receive_json(content)

    async def receive_json(self, content, **kwargs):
        kind = content.get("type")
        if not self.allowed:
            return
        if kind == "ping":
            if await self._still_allowed():
                await self.send_json({"type": "pong", "seq": self.sent_seq})
            return
        if kind == "drive":
            return self._queue_drive(content.get("state"))
        try:
            if kind == "hand":
                message = await _hand(user=self.user, session_id=self.session_id, to=str(content.get("to", "")),
                                      announce=False)
            else:
                return await self._error("bad_frame", "a participant sends ping, drive or hand")
        except PortalError as error:
            return await self._error(error.code, error.message)
        await self._publish(message)

    def _queue_drive(self, state):
        """A scrub sends faster than a loaded server writes: frames that arrive while one is being written are
        merged and written as one state, so followers get the driver's newest view instead of a growing backlog."""
        if not isinstance(state, dict):
            return asyncio.ensure_future(self._error("state", "a drive frame carries a state object"))
        self.drives = (self.drives or {}) | state
        if self.driving is None or self.driving.done():
            self.driving = asyncio.ensure_future(self._write_drives())

    async def _write_drives(self):
        while self.drives is not None and self.allowed:
            state, self.drives = self.drives, None
            try:
                message = await _drive(user=self.user, session_id=self.session_id, state=state, facts=self.facts,
                                       announce=False)
            except PortalError as error:
                await self._error(error.code, error.message)
                continue
            await self._publish(message)

    async def _error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})

    async def dispatch(self, message):
        if message["type"] == "session.event":  # no hop to the sync thread per live event (see RequestConsumer)
            await self.session_event(message)
        else:
            await super().dispatch(message)

    async def session_event(self, message):
        event = message["event"]
        if not self.allowed:
            return
        if not self.caught_up:
            self.pending.append(event)
            return
        if event.get("type") not in QUIET and not await self._still_allowed():
            return
        await self._deliver(event)

    async def _deliver(self, event: dict):
        if event["seq"] <= self.sent_seq or event.get("session") != self.session_id:
            return
        if event["seq"] > self.sent_seq + 1:
            await self._catch_up()  # a gap: the database has everything up to this event, in order
            return
        await self.send_json(event)
        self.sent_seq = event["seq"]

    async def _catch_up(self):
        while self.allowed:
            batch = await _after(self.session_id, self.sent_seq)
            for event in batch:
                await self.send_json(event)
                self.sent_seq = event["seq"]
            if len(batch) < 5000:
                return
