"""The stdlib websocket client: a stream cut again and again still arrives whole, in order, once."""

import socket
import threading
import time
from urllib.parse import urlsplit

import pytest

from generation.events import event_append
from portal.client.api import ApiError, Client
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db(transaction=True)


class CuttingProxy:
    """Forwards TCP to the portal, but drops each connection after ``limit`` bytes from the server."""

    def __init__(self, target_url: str, limit: int):
        target = urlsplit(target_url)
        self.target, self.limit, self.connections = (target.hostname, target.port), limit, 0
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"http://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            self.connections += 1
            server = socket.create_connection(self.target)
            threading.Thread(target=self._pipe, args=(client, server, None), daemon=True).start()
            threading.Thread(target=self._pipe, args=(server, client, self.limit), daemon=True).start()

    @staticmethod
    def _pipe(src, dst, limit):
        sent = 0
        try:
            while limit is None or sent < limit:
                chunk = src.recv(4096 if limit is None else min(4096, limit - sent))
                if not chunk:
                    break
                dst.sendall(chunk)
                sent += len(chunk)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            s.close()

    def close(self):
        self.listener.close()


def test_events_reconnect_after_the_last_seq_and_never_repeat_or_skip(live_portal, token_for, compositor, shot,
                                                                       show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    for i in range(29):
        event_append(request_id=request.pk, type="variation.progress",
                     payload={"variation": 1, "stage": "denoise", "done": i, "total": 29, "progress": i / 29})
    proxy = CuttingProxy(live_portal.url, limit=900)  # the handshake and a few events per connection
    try:
        seen, deadline = [], time.monotonic() + 40
        for event in Client(proxy.url, token_for(compositor)).events(request.pk, after=0, idle=2):
            if "seq" in event:
                seen.append(event["seq"])
            if seen[-1:] == [30] or time.monotonic() > deadline:
                break
    finally:
        proxy.close()
    assert seen == list(range(1, 31))
    assert proxy.connections >= 3, "the proxy never cut the stream: the test proves nothing"


def test_an_outsider_cannot_follow_a_request(live_portal, token_for, compositor, outsider, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    with pytest.raises(ApiError) as refused:
        next(iter(Client(live_portal.url, token_for(outsider)).events(request.pk)))
    assert refused.value.status == 403
