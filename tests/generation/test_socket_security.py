"""The request stream's door: origin (scheme, host and port), refusal as 4403 after accept, membership
re-checked while the socket is open, bad frames answered. Real channels communicators over the portal's own
websocket stack (session middleware, origin check, consumer)."""

import asyncio

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.urls import path

from generation.consumers import RequestConsumer
from generation.events import event_append
from portal.models import Membership
from portal.ws_auth import TokenOrSession
from tests.factories import request_with_done_variations

stack = TokenOrSession(URLRouter([path("ws/requests/<int:request_id>/", RequestConsumer.as_asgi())]))


def _session_cookie(client, user) -> str:
    client.force_login(user)
    return f"{settings.SESSION_COOKIE_NAME}={client.cookies[settings.SESSION_COOKIE_NAME].value}"


def _socket(request_id: int, cookie: str, origin: str | None, host: str = "localhost:8000", scheme: str = "ws"):
    headers = [(b"host", host.encode()), (b"cookie", cookie.encode())]
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    communicator = WebsocketCommunicator(stack, f"/ws/requests/{request_id}/?after=0", headers=headers)
    communicator.scope["scheme"] = scheme
    return communicator


async def _until_closed(communicator, timeout: float = 5.0) -> tuple[list[dict], int | None]:
    """Everything the socket sends until it closes: (events, close code); (events, None) if it stays open."""
    events = []
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        # receive_nothing waits without cancelling the application (receive_output's timeout would kill it)
        if await communicator.receive_nothing(timeout=0.05, interval=0.01):
            continue
        message = await communicator.receive_output(timeout=1)
        if message["type"] == "websocket.close":
            return events, message.get("code")
        events.append(message)
    return events, None


async def _connect_outcome(communicator) -> tuple[bool, int | None, int]:
    """(accepted, close code, events received) of one connection attempt."""
    connected, code = await communicator.connect(timeout=5)
    if not connected:
        return False, code, 0
    events, code = await _until_closed(communicator, timeout=0.5)
    await communicator.disconnect()
    return True, code, len(events)


async def _open_viewer(request_id: int, cookie: str, drain: float = 0.3):
    """A director's socket from the portal's own origin, its catch-up read and still open."""
    communicator = _socket(request_id, cookie, "http://localhost:8000")
    assert (await communicator.connect(timeout=5))[0]
    assert (await _until_closed(communicator, timeout=drain))[1] is None
    return communicator


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin", ["http://localhost:9000", "https://localhost:8000", "http://evil.example:8000",
                                    None, "null", "http://localhost:notaport"])
def test_a_page_of_another_origin_is_refused_with_4403_after_accept(client, director, compositor, shot,
                                                                    show_model, origin):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)
    accepted, code, events = async_to_sync(_connect_outcome)(_socket(request.pk, cookie, origin))
    assert (accepted, code, events) == (True, 4403, 0)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("origin, host, scheme", [("http://localhost:8000", "localhost:8000", "ws"),
                                                  ("http://127.0.0.1", "127.0.0.1", "ws"),
                                                  ("https://localhost", "localhost:443", "wss")])
def test_the_portals_own_origin_gets_the_stream(client, director, compositor, shot, show_model, origin, host,
                                                scheme):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)
    outcome = async_to_sync(_connect_outcome)(_socket(request.pk, cookie, origin, host, scheme))
    assert outcome == (True, None, request.events.count())


@pytest.mark.django_db(transaction=True)
def test_a_trusted_origin_behind_a_proxy_gets_the_stream_and_its_port_matters(settings, client, director,
                                                                              compositor, shot, show_model):
    settings.CSRF_TRUSTED_ORIGINS = ["https://portal.studio.lan:8443"]
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)
    trusted = async_to_sync(_connect_outcome)(_socket(request.pk, cookie, "https://portal.studio.lan:8443"))
    assert trusted == (True, None, request.events.count())
    other_port = async_to_sync(_connect_outcome)(_socket(request.pk, cookie, "https://portal.studio.lan:9443"))
    assert other_port == (True, 4403, 0)


@pytest.mark.django_db(transaction=True)
def test_an_outsider_is_refused_with_4403_after_accept(client, outsider, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, outsider)
    outcome = async_to_sync(_connect_outcome)(_socket(request.pk, cookie, "http://localhost:8000"))
    assert outcome == (True, 4403, 0)


def _remove(user, show):
    Membership.objects.filter(user=user, show=show).delete()


def _deactivate(user, show):
    type(user).objects.filter(pk=user.pk).update(is_active=False)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lose_access", [_remove, _deactivate], ids=["removed", "deactivated"])
def test_a_user_who_loses_access_gets_no_note_written_after_and_is_closed(settings, client, director, compositor,
                                                                         shot, show_model, lose_access):
    settings.PT_WS_RECHECK_SECONDS = 60  # the note itself must trigger the check
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)
    caught_up = request.events.count()

    async def scenario():
        communicator = _socket(request.pk, cookie, "http://localhost:8000")
        connected, _ = await communicator.connect(timeout=5)
        assert connected
        events, code = await _until_closed(communicator, timeout=0.5)
        assert (len(events), code) == (caught_up, None)  # still open: an ordinary viewer
        await database_sync_to_async(lose_access)(director, shot.show)
        await database_sync_to_async(event_append)(request_id=request.pk, type="note.added",
                                                   payload={"text": "after removal"})
        started = asyncio.get_running_loop().time()
        later, code = await _until_closed(communicator, timeout=5)
        await communicator.disconnect()
        return later, code, asyncio.get_running_loop().time() - started

    later, code, seconds = async_to_sync(scenario)()
    assert code == 4403 and seconds < 3
    assert not any("after removal" in message.get("text", "") for message in later)


@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("lose_access", [_remove, _deactivate], ids=["removed", "deactivated"])
def test_a_quiet_socket_of_a_user_who_loses_access_is_closed_within_seconds(settings, client, director, compositor,
                                                                            shot, show_model, lose_access):
    settings.PT_WS_RECHECK_SECONDS = 0.3
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)

    async def scenario():
        communicator = await _open_viewer(request.pk, cookie, drain=1.0)  # open while on the show
        await database_sync_to_async(lose_access)(director, shot.show)
        started = asyncio.get_running_loop().time()
        _, code = await _until_closed(communicator, timeout=5)
        await communicator.disconnect()
        return code, asyncio.get_running_loop().time() - started

    code, seconds = async_to_sync(scenario)()
    assert code == 4403 and seconds < 3


@pytest.mark.django_db(transaction=True)
def test_a_ping_after_losing_access_closes_at_once(settings, client, director, compositor, shot, show_model):
    settings.PT_WS_RECHECK_SECONDS = 60
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)

    async def scenario():
        communicator = await _open_viewer(request.pk, cookie)
        await communicator.send_json_to({"type": "ping"})
        pong = await communicator.receive_json_from(timeout=5)
        await database_sync_to_async(_remove)(director, shot.show)
        await communicator.send_json_to({"type": "ping"})
        after = await _until_closed(communicator, timeout=2)
        await communicator.disconnect()
        return pong, after

    pong, (messages, code) = async_to_sync(scenario)()
    assert pong["type"] == "pong"
    assert (messages, code) == ([], 4403)


@pytest.mark.django_db(transaction=True)
def test_bad_frames_are_answered_and_the_socket_lives_on(client, director, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    cookie = _session_cookie(client, director)

    async def scenario():
        communicator = await _open_viewer(request.pk, cookie)
        answers = []
        for frame in ({"text_data": "{not json"}, {"bytes_data": b"\x00\x01"}, {"text_data": "[1, 2]"},
                      {"text_data": '{"type": "pick"}'}, {"text_data": "9" * 5000}):
            await communicator.send_to(**frame)
            answers.append(await communicator.receive_json_from(timeout=5))
        await communicator.send_json_to({"type": "ping"})
        pong = await communicator.receive_json_from(timeout=5)
        await communicator.disconnect()
        return answers, pong

    answers, pong = async_to_sync(scenario)()
    assert [(a["type"], a["code"]) for a in answers] == [("error", "bad_frame")] * 5
    assert all(a["message"] for a in answers)
    assert pong["type"] == "pong"
