"""The Parallel Track API from a script or from Nuke's Python: the standard library only.

    client = Client("http://portal:8000", token)
    request = client.submit(shot=12, first_frame=1001, last_frame=1024, count=4, matte_pattern="/shows/…/matte.####.exr")
    final = client.follow(request["id"], on_progress=print)          # the websocket, or polling as a fallback
    client.pick(final["variations"][1]["id"])

Every error from the server raises :class:`ApiError` with the API's stable ``code`` and its message.
This module must not import Django, the portal's other modules or any third-party package.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import re
import socket
import ssl
import struct
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator

# Where a request stands, as the API reports it.
IN_REVIEW_OR_LATER = {"review", "picked", "signed_off", "released"}
UNSUCCESSFUL = {"failed", "cancelled"}
SETTLED_VARIATION = {"done", "failed", "cancelled"}
# Events after which the request's status may have changed: the client reads the request again.
STATUS_EVENTS = {"request.settled", "variation.cancelled", "pick.made", "pick.rejected_all", "signoff.approved",
                 "signoff.sent_back", "release.done", "release.failed"}
FORBIDDEN_CLOSE = 4403
_WS_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class ApiError(Exception):
    """An answer other than 2xx, or no answer: ``status`` 0 when the server could not be reached."""

    def __init__(self, status: int, code: str, message: str, fields: dict | None = None):
        super().__init__(message)
        self.status, self.code, self.message, self.fields = status, code, message, fields or {}

    def as_dict(self) -> dict:
        return {"status": self.status, "code": self.code, "message": self.message, **({"fields": self.fields}
                                                                                      if self.fields else {})}

    def __str__(self) -> str:
        return f"{self.message} ({self.code}, HTTP {self.status})" if self.status else self.message


class Client:
    """Token-authenticated JSON over HTTP to one portal (``server`` like ``http://portal:8000``)."""

    def __init__(self, server: str, token: str, *, timeout: float = 30.0):
        if not server:
            raise ApiError(0, "config", "no server: pass --server or set PT_SERVER")
        if not token:
            raise ApiError(0, "config", "no API token: pass --token or set PT_TOKEN")
        self.server = server.rstrip("/")
        self.token = token
        self.timeout = timeout

    @classmethod
    def from_env(cls, server: str | None = None, token: str | None = None) -> Client:
        return cls(server or os.getenv("PT_SERVER", ""), token or os.getenv("PT_TOKEN", ""))

    # -- HTTP --------------------------------------------------------------------------------------------

    def call(self, method: str, path: str, data: dict | None = None, params: dict | None = None):
        url = path if path.startswith(("http://", "https://")) else f"{self.server}{path}"
        query = {k: v for k, v in (params or {}).items() if v is not None}
        if query:
            url += ("&" if "?" in url else "?") + urllib.parse.urlencode(query)
        body = json.dumps(data).encode() if data is not None else None
        request = urllib.request.Request(url, data=body, method=method, headers={
            "Authorization": f"Token {self.token}", "Accept": "application/json",
            **({"Content-Type": "application/json"} if body is not None else {})})
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raise _api_error(exc.code, exc.read()) from None
        except (urllib.error.URLError, OSError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(0, "unreachable", f"cannot reach {self.server}: {reason}") from None
        return json.loads(raw) if raw else {}

    def get(self, path: str, **params):
        return self.call("GET", path, params=params)

    def post(self, path: str, data: dict | None = None):
        return self.call("POST", path, data=data or {})

    def pages(self, path: str, **params) -> Iterator[dict]:
        """Every row of a paginated list, following ``next``."""
        page = self.get(path, **params)
        while True:
            yield from page.get("results", [])
            if not page.get("next"):
                return
            page = self.get(page["next"])

    # -- the catalogue -----------------------------------------------------------------------------------

    def shows(self) -> list[dict]:
        return list(self.pages("/api/shows/"))

    def shots(self, show_code: str) -> list[dict]:
        return list(self.pages(f"/api/shows/{urllib.parse.quote(show_code)}/shots/"))

    def shot(self, shot_id: int) -> dict:
        return self.get(f"/api/shots/{int(shot_id)}/")

    def find_shot(self, code_or_id: str | int, *, show: str | None = None) -> dict:
        """A shot by id, by code (``sh0040``) or by ``<sequence>_<code>``, on the caller's shows."""
        text = str(code_or_id)
        if text.isdigit():
            return self.shot(int(text))
        shows = [show] if show else [s["code"] for s in self.shows()]
        found = [shot for code in shows for shot in self.shots(code)
                 if text in (shot["code"], f"{shot['sequence']}_{shot['code']}")]
        if not found:
            raise ApiError(404, "not_found", f"no shot {text!r} on your shows")
        if len(found) > 1:
            where = ", ".join(f"{s['show']}/{s['sequence']}/{s['code']}" for s in found)
            raise ApiError(400, "ambiguous", f"shot {text!r} is on several shows ({where}); pass --show")
        return found[0]

    def show(self, code: str) -> dict:
        for show in self.shows():
            if show["code"] == code:
                return show
        raise ApiError(404, "not_found", f"no show {code!r} among yours")

    def models(self, show: str | None = None) -> list[dict]:
        return list(self.pages("/api/models/", show=show))

    # -- the loop ----------------------------------------------------------------------------------------

    def submit(self, *, shot: int, first_frame: int, last_frame: int, count: int = 4, model: int | None = None,
               matte_pattern: str = "", rect: list[int] | None = None, prompt: str = "", steps: int = 25,
               seed: int | None = None, task: str = "sky_replacement", show: str | None = None,
               strength: float | None = None) -> dict:
        """Submit a request; without ``model``, the first model approved on the shot's show that can do ``task``
        (none, for a task that needs no model: the server knows which)."""
        chosen = model
        if model is None:
            show = show or self.shot(shot)["show"]
            able = [m for m in self.models(show=show) if task in m.get("tasks", [task])]
            model = able[0]["id"] if able else None
        data = {"shot": shot, "model": model, "first_frame": first_frame, "last_frame": last_frame,
                "count": count, "task": task, "matte_pattern": matte_pattern, "rect": rect, "prompt": prompt,
                "steps": steps, "seed": seed, "strength": strength}
        try:
            return self.post("/api/requests/", data)
        except ApiError as exc:
            if chosen is None and model is None and exc.code == "model":
                raise ApiError(400, "model", f"no generation model approved on show {show} can do {task}") from None
            raise

    def request(self, request_id: int) -> dict:
        return self.get(f"/api/requests/{int(request_id)}/")

    def cancel(self, request_id: int) -> dict:
        return self.post(f"/api/requests/{int(request_id)}/cancel/")

    def pick(self, variation_id: int, note: str = "") -> dict:
        return self.post(f"/api/variations/{int(variation_id)}/pick/", {"note": note})

    def signoff(self, request_id: int, note: str = "") -> dict:
        return self.post(f"/api/requests/{int(request_id)}/signoff/", {"note": note})

    def send_back(self, request_id: int, note: str) -> dict:
        return self.post(f"/api/requests/{int(request_id)}/send-back/", {"note": note})

    def releases(self, *, request: int | None = None, shot: int | None = None) -> list[dict]:
        return list(self.pages("/api/releases/", request=request, shot=shot))

    # -- following a request -----------------------------------------------------------------------------

    def events(self, request_id: int, *, after: int = 0, idle: float = 15.0) -> Iterator[dict]:
        """The request's events with ``seq > after``, in order, for ever: reconnects with the last seq seen.

        Yields ``{"type": "idle"}`` after ``idle`` seconds without a message, so a caller can look around.
        Raises :class:`ApiError` (403) when the user may not see the request, and ``WebSocketUnavailable``
        when the server never accepts a websocket (then poll instead).
        """
        last, failures, delay = after, 0, 0.5
        while True:
            try:
                ws = WebSocket(self._ws_url(request_id, last), {"Authorization": f"Token {self.token}"},
                               timeout=idle)
            except WebSocketRefused as exc:
                if exc.status in (403, 404):
                    raise ApiError(exc.status, "not_found" if exc.status == 404 else "forbidden",
                                   f"request {request_id} is not yours to watch") from None
                failures += 1
                if failures >= 3:
                    raise WebSocketUnavailable(str(exc)) from None
                time.sleep(delay)
                continue
            except OSError as exc:
                failures += 1
                if failures >= 5:
                    raise WebSocketUnavailable(f"cannot open the event stream: {exc}") from None
                time.sleep(delay)
                delay = min(delay * 2, 5.0)
                continue
            failures, delay = 0, 0.5
            # A refusal is a close (4403) right after the accept: wait a moment for it before saying connected.
            ws.sock.settimeout(min(idle, 1.0))
            announced = False
            try:
                for message in ws.messages():
                    if not announced:
                        announced = True
                        ws.sock.settimeout(idle)
                        yield {"type": "connected", "after": last}
                        if message is None:
                            continue
                    if message is None:
                        ws.send_text('{"type": "ping"}')
                        yield {"type": "idle"}
                        continue
                    event = json.loads(message)
                    if event.get("type") == "pong" or event.get("seq", 0) <= last:
                        continue
                    last = event["seq"]
                    yield event
                if ws.close_code == FORBIDDEN_CLOSE:
                    raise ApiError(403, "forbidden", f"request {request_id} is not yours to watch")
            except OSError:
                pass  # the connection dropped: reconnect after the last seq applied
            finally:
                ws.close()
            time.sleep(delay)

    def follow(self, request_id: int, *, until: str = "review", after: int = 0,
               on_event: Callable[[dict], None] | None = None,
               on_progress: Callable[[float, dict], None] | None = None,
               timeout: float | None = None, poll: bool | None = None, poll_interval: float = 1.0) -> dict:
        """Follow a request until it settles (``until="review"``: in review or later) or is released
        (``until="released"``); returns the request as the API shows it then. It is up to the caller to
        tell success (``status`` in review or later) from failure (``failed``, ``cancelled``).

        ``on_progress(fraction, request)`` gets the mean progress of the variations (0–1);
        ``on_event(event)`` every event of the stream. ``poll=True`` (or PT_CLIENT_POLL=1) reads
        ``/api/requests/<id>/`` every ``poll_interval`` seconds instead of using the websocket.
        """
        if until not in ("review", "released"):
            raise ValueError(f"until must be 'review' or 'released', not {until!r}")
        deadline = None if timeout is None else time.monotonic() + timeout
        tracker = _Progress(self.request(request_id))
        if poll is None:
            poll = os.getenv("PT_CLIENT_POLL", "") == "1"
        if on_progress:
            on_progress(tracker.fraction(), tracker.request)
        if _finished(tracker.request, until):
            return tracker.request

        def reloaded_and_finished() -> bool:
            tracker.reload(self.request(request_id))
            if on_progress:
                on_progress(tracker.fraction(), tracker.request)
            return _finished(tracker.request, until)

        if not poll:
            try:
                for event in self.events(request_id, after=after):
                    if event.get("seq") and on_event:
                        on_event(event)
                    if tracker.apply(event) and on_progress:
                        on_progress(tracker.fraction(), tracker.request)
                    if event["type"] in STATUS_EVENTS or event["type"] in ("connected", "idle"):
                        if reloaded_and_finished():
                            return tracker.request
                    _check_deadline(deadline, request_id)
            except WebSocketUnavailable:
                pass  # a proxy that does not upgrade, for one: fall back to polling
        while not reloaded_and_finished():
            _check_deadline(deadline, request_id)
            time.sleep(poll_interval)
        return tracker.request

    def _ws_url(self, request_id: int, after: int) -> str:
        parts = urllib.parse.urlsplit(self.server)
        scheme = "wss" if parts.scheme == "https" else "ws"
        return f"{scheme}://{parts.netloc}{parts.path}/ws/requests/{int(request_id)}/?after={int(after)}"


def _finished(request: dict, until: str) -> bool:
    status = request["status"]
    if status in UNSUCCESSFUL:
        return True
    return status == "released" if until == "released" else status in IN_REVIEW_OR_LATER


def _check_deadline(deadline: float | None, request_id: int) -> None:
    if deadline is not None and time.monotonic() > deadline:
        raise ApiError(0, "timeout", f"request {request_id} did not settle in time")


class _Progress:
    """The mean progress of a request's variations, from the request as read and the events since."""

    def __init__(self, request: dict):
        self.by_variation: dict[int, float] = {}
        self.reload(request)

    def reload(self, request: dict) -> None:
        self.request = request
        for v in request.get("variations", []):
            done = 1.0 if v["status"] in SETTLED_VARIATION else float(v.get("progress") or 0.0)
            self.by_variation[v["id"]] = max(done, self.by_variation.get(v["id"], 0.0))

    def apply(self, event: dict) -> bool:
        payload = event.get("payload") or {}
        variation = payload.get("variation")
        if event.get("type") == "variation.progress" and variation in self.by_variation:
            self.by_variation[variation] = max(self.by_variation[variation], float(payload.get("progress", 0.0)))
            return True
        if event.get("type") in ("variation.done", "variation.failed", "variation.cancelled"):
            self.by_variation[variation] = 1.0
            return True
        return False

    def fraction(self) -> float:
        values = list(self.by_variation.values())
        return sum(values) / len(values) if values else 0.0


def _api_error(status: int, raw: bytes) -> ApiError:
    try:
        body = json.loads(raw)
    except ValueError:
        body = None
    if isinstance(body, dict) and "message" in body:
        return ApiError(status, str(body.get("code", "error")), str(body["message"]), body.get("fields"))
    if isinstance(body, dict) and "detail" in body:
        return ApiError(status, "error", str(body["detail"]))
    text = raw.decode("utf-8", "replace").strip()
    return ApiError(status, "error", f"HTTP {status}: {text[:200] or 'no message'}")


def to_nuke_pattern(pattern: str) -> str:
    """``element.%04d.exr`` or ``element.####.exr`` → ``element.####.exr`` (Nuke's Read ``file``)."""
    return re.sub(r"%0?(\d*)d", lambda m: "#" * int(m.group(1) or 1), pattern)


# -- a minimal websocket client (RFC 6455: text frames, ping/pong, close; no extensions) --------------------


class WebSocketRefused(OSError):
    def __init__(self, status: int, message: str):
        super().__init__(message)
        self.status = status


class WebSocketUnavailable(Exception):
    """The server never accepted a websocket: the caller should poll."""


class WebSocket:
    def __init__(self, url: str, headers: dict[str, str], *, timeout: float = 15.0):
        parts = urllib.parse.urlsplit(url)
        port = parts.port or (443 if parts.scheme == "wss" else 80)
        sock = socket.create_connection((parts.hostname, port), timeout=timeout)
        if parts.scheme == "wss":
            sock = ssl.create_default_context().wrap_socket(sock, server_hostname=parts.hostname)
        self.sock, self.close_code, self._buffer, self._closed = sock, None, b"", False
        key = base64.b64encode(os.urandom(16)).decode()
        target = parts.path + (f"?{parts.query}" if parts.query else "")
        lines = [f"GET {target} HTTP/1.1", f"Host: {parts.netloc}", "Upgrade: websocket", "Connection: Upgrade",
                 f"Sec-WebSocket-Key: {key}", "Sec-WebSocket-Version: 13"]
        lines += [f"{name}: {value}" for name, value in headers.items()]
        try:
            sock.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin1"))
            self._handshake(key)
        except BaseException:
            sock.close()
            raise

    def _handshake(self, key: str) -> None:
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        status_line, *header_lines = head.decode("latin1").split("\r\n")
        fields = status_line.split(" ", 2)
        status = int(fields[1]) if len(fields) > 1 and fields[1].isdigit() else 0
        if status != 101:
            raise WebSocketRefused(status, f"the server refused the websocket: {status_line}")
        headers = {k.strip().lower(): v.strip() for k, _, v in (h.partition(":") for h in header_lines)}
        expected = base64.b64encode(hashlib.sha1((key + _WS_GUID).encode()).digest()).decode()
        if headers.get("sec-websocket-accept") != expected:
            raise WebSocketRefused(status, "the server's websocket handshake does not match the key")

    def _fill(self) -> None:
        chunk = self.sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def _frame(self) -> tuple[bool, int, bytes]:
        """The next whole frame: (fin, opcode, payload). A timeout keeps any partial frame in the buffer."""
        while True:
            buf = self._buffer
            if len(buf) >= 2:
                length, offset = buf[1] & 0x7F, 2
                if length == 126 and len(buf) >= 4:
                    length, offset = struct.unpack("!H", buf[2:4])[0], 4
                elif length == 127 and len(buf) >= 10:
                    length, offset = struct.unpack("!Q", buf[2:10])[0], 10
                if length < 126 or offset > 2:
                    if buf[1] & 0x80:
                        offset += 4  # the server must not mask; tolerate it anyway
                    if len(buf) >= offset + length:
                        payload = buf[offset:offset + length]
                        if buf[1] & 0x80:
                            mask = buf[offset - 4:offset]
                            payload = bytes(b ^ mask[i % 4] for i, b in enumerate(payload))
                        self._buffer = buf[offset + length:]
                        return bool(buf[0] & 0x80), buf[0] & 0x0F, payload
            self._fill()

    def messages(self) -> Iterator[str | None]:
        """Text messages until the server closes; ``None`` after ``timeout`` seconds of silence."""
        parts: list[bytes] = []
        while not self._closed:
            try:
                fin, opcode, payload = self._frame()
            except socket.timeout:  # noqa: UP041 (an alias of TimeoutError only from 3.10; Nuke 14 has 3.9)
                yield None
                continue
            if opcode == 0x8:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self.close()
                return
            if opcode == 0x9:
                self._send(0xA, payload)
            elif opcode in (0x1, 0x2, 0x0):
                parts.append(payload)
                if fin:
                    yield b"".join(parts).decode("utf-8")
                    parts = []

    def send_text(self, text: str) -> None:
        self._send(0x1, text.encode("utf-8"))

    def _send(self, opcode: int, payload: bytes) -> None:
        mask = os.urandom(4)
        n = len(payload)
        if n < 126:
            head = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 2**16:
            head = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            head = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        self.sock.sendall(head + mask + bytes(b ^ mask[i % 4] for i, b in enumerate(payload)))

    def close(self) -> None:
        if self._closed:
            return
        self._closed = True
        try:
            self._send(0x8, struct.pack("!H", 1000))
        except OSError:
            pass
        self.sock.close()
