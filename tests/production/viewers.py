"""Real websocket viewers of one request's event stream, for the fault suite.

Each viewer is a websocket client (the ``websockets`` package, as a pipeline script would be) authenticated by an
API token, connected to ``/ws/requests/<id>/?after=<seq>``. When its socket drops (the server killed, the database
restarting under the consumer), it connects again with ``after=`` the last seq it received, as the review page does,
and keeps everything it was sent, in arrival order. After a fault, :meth:`Viewers.check` compares each viewer's
stream with the request's event log in the database: complete, in order, nothing twice.
"""

from __future__ import annotations

import asyncio
import json
import threading
import time

VIEWERS = 3  # viewers per request in the fault suite


class Viewers:
    """``count`` viewers of request ``request_id`` at ``ws_url`` (``ws://host:port``), on a thread of their own."""

    def __init__(self, ws_url: str, request_id: int, token: str, count: int = 3) -> None:
        self.url = f"{ws_url}/ws/requests/{request_id}/"
        self.request_id = request_id
        self.token = token
        self.count = count
        self.received: list[list[tuple[int, str]]] = [[] for _ in range(count)]
        self.connects = [0] * count
        self.refused = [0] * count  # closes with 4403: a refusal, never expected here
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._main()), name="pt-viewers", daemon=True)

    def start(self) -> Viewers:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def __enter__(self) -> Viewers:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    @property
    def connected(self) -> bool:
        return all(self.connects)

    @property
    def reconnects(self) -> int:
        return sum(max(0, n - 1) for n in self.connects)

    async def _main(self) -> None:
        await asyncio.gather(*(self._viewer(i) for i in range(self.count)))

    async def _viewer(self, i: int) -> None:
        import websockets

        while not self._stop.is_set():
            after = self.received[i][-1][0] if self.received[i] else 0
            try:
                async with websockets.connect(f"{self.url}?after={after}", open_timeout=10, close_timeout=1,
                                              additional_headers={"Authorization": f"Token {self.token}"},
                                              max_queue=None) as socket:
                    self.connects[i] += 1
                    while not self._stop.is_set():
                        try:
                            text = await asyncio.wait_for(socket.recv(), timeout=0.5)
                        except TimeoutError:
                            continue
                        event = json.loads(text)
                        if event.get("type") not in ("pong", "error") and "seq" in event:
                            self.received[i].append((int(event["seq"]), str(event["type"])))
            except websockets.exceptions.ConnectionClosed as closed:
                self.refused[i] += getattr(closed.rcvd, "code", None) == 4403
            except (OSError, TimeoutError, websockets.exceptions.WebSocketException):
                pass  # the server is down or restarting: connect again
            if not self._stop.is_set():
                await asyncio.sleep(0.25)

    def _log(self) -> list[tuple[int, str]]:
        from generation.models import RequestEvent

        return list(RequestEvent.objects.filter(request_id=self.request_id).order_by("seq")
                    .values_list("seq", "type"))

    def caught_up(self) -> bool:
        """Every viewer has been sent the log's last event (so far)."""
        log = self._log()
        return bool(log) and all(got and got[-1][0] >= log[-1][0] for got in self.received)

    def check(self, timeout: float = 30.0) -> dict:
        """Once every viewer has caught up with the log (or ``timeout`` passed): how many viewers' streams are the
        log exactly (every event, in seq order, none twice), and the reconnections it took."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not self.caught_up():
            time.sleep(0.2)
        log = self._log()
        complete = sum(got == log for got in self.received)
        return {"viewers": self.count, "viewers_complete": complete, "viewer_reconnects": self.reconnects,
                "viewers_refused": sum(self.refused)}

    def describe(self) -> str:
        """What went wrong, for an assertion message: each viewer's seqs against the log's."""
        log = [seq for seq, _ in self._log()]
        return "; ".join(f"viewer {i}: {len(got)} events, seqs {[s for s, _ in got][:5]}…{[s for s, _ in got][-5:]}, "
                         f"connects {self.connects[i]} (log {len(log)} events, last {log[-1:]})"
                         for i, got in enumerate(self.received))
