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

from channels.db import database_sync_to_async
from django.contrib.auth import get_user_model

from generation.consumers import EventStreamConsumer
from portal.errors import NotFound, PortalError
from review import sessions

# A driver's view change and presence carry nothing anyone wrote: delivered on the periodic membership check.
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


class SessionConsumer(EventStreamConsumer):
    event_type = "session.event"
    stream_key = "session"
    quiet = QUIET

    async def connect(self):
        self.user, self.joined = None, False
        self.drives: dict | None = None  # drive frames not written yet, merged (the newest value of each field)
        self.driving = None
        await super().connect()

    def group_name(self) -> str:
        return sessions.session_group(self.stream_id)

    async def dispatch(self, message):
        # A participant's frame skips Channels' hop to the sync thread (closing stale connections) too: the drive's
        # own database_sync_to_async closes them, and the hop queued behind every write on that one thread.
        if message["type"] == "websocket.receive":
            await self.websocket_receive(message)
        else:
            await super().dispatch(message)

    async def may_watch(self) -> bool:
        self.user = await _participant(self.user or self.scope.get("user"), self.stream_id)
        return self.user is not None

    async def log_after(self, seq: int) -> list[dict]:
        return await _after(self.stream_id, seq)

    async def on_allowed(self):
        self.facts = await _facts(self.stream_id)

    async def on_joined(self):
        await self._publish(await _presence(user=self.user, session_id=self.stream_id, joined=True, announce=False))
        self.joined = True

    async def disconnect(self, code):
        await super().disconnect(code)
        if self.joined:
            self.joined = False
            await self._publish(await _presence(user=self.user, session_id=self.stream_id, joined=False,
                                                announce=False))

    async def _publish(self, message: dict):
        """A committed event of ours, to everyone in the session (this socket included, through the group)."""
        await self.channel_layer.group_send(self.group_name(), {"type": self.event_type, "event": message})

    async def receive_json(self, content, **kwargs):
        kind = content.get("type") if isinstance(content, dict) else None
        if kind == "ping" or not self.allowed:
            return await super().receive_json(content) if self.allowed else None
        if kind == "drive":
            return self._queue_drive(content.get("state"))
        if kind != "hand":
            return await self._error("bad_frame", "a participant sends ping, drive or hand")
        try:
            message = await _hand(user=self.user, session_id=self.stream_id, to=str(content.get("to", "")),
                                  announce=False)
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
                message = await _drive(user=self.user, session_id=self.stream_id, state=state, facts=self.facts,
                                       announce=False)
            except PortalError as error:
                await self._error(error.code, error.message)
                continue
            await self._publish(message)

    async def _error(self, code: str, message: str):
        await self.send_json({"type": "error", "code": code, "message": message})
