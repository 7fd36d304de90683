"""The request stream: catch-up from the database, then live, in order, never twice."""

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from generation.consumers import RequestConsumer
from generation.events import event_append
from generation.models import GenerationRequest, RequestEvent
from tests.factories import request_with_done_variations

app = URLRouter([path("ws/requests/<int:request_id>/", RequestConsumer.as_asgi())])


async def _collect(user, request_id: int, after: int, count: int, during=None) -> list[dict]:
    communicator = WebsocketCommunicator(app, f"/ws/requests/{request_id}/?after={after}")
    communicator.scope["user"] = user
    connected, _ = await communicator.connect()
    assert connected
    if during:
        await during()
    received = [await communicator.receive_json_from(timeout=5) for _ in range(count)]
    assert await communicator.receive_nothing(timeout=0.2)
    await communicator.disconnect()
    return received


@pytest.mark.django_db(transaction=True)
def test_a_viewer_reconnecting_with_its_last_seq_gets_exactly_what_it_missed(director, compositor, shot,
                                                                           show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    for i in range(5):
        event_append(request_id=request.pk, type="note.added", payload={"i": i})
    total = request.events.count()
    got = async_to_sync(_collect)(director, request.pk, 3, total - 3)
    assert [e["seq"] for e in got] == list(range(4, total + 1))
    assert all({"type", "seq", "time", "payload"} <= set(e) for e in got)


@pytest.mark.django_db(transaction=True)
def test_live_events_follow_the_catch_up_without_duplicates(director, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    before = request.events.count()

    async def produce():
        for i in range(3):
            await database_sync_to_async(event_append)(request_id=request.pk, type="note.added", payload={"i": i})

    got = async_to_sync(_collect)(director, request.pk, 0, before + 3, during=produce)
    assert [e["seq"] for e in got] == list(range(1, before + 4))


@pytest.mark.django_db(transaction=True)
def test_a_gap_in_the_live_stream_is_filled_from_the_database(director, compositor, shot, show_model):
    """An announcement lost (say, with a Redis restart): the next live event brings the missing one along."""
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    before = request.events.count()

    def write_silently():
        RequestEvent.objects.create(request_id=request.pk, seq=before + 1, type="note.added", payload={})
        GenerationRequest.objects.filter(pk=request.pk).update(last_seq=before + 1)

    async def produce_with_a_lost_announcement():
        await database_sync_to_async(write_silently)()
        await database_sync_to_async(event_append)(request_id=request.pk, type="note.added", payload={"x": 1})

    got = async_to_sync(_collect)(director, request.pk, before, 2, during=produce_with_a_lost_announcement)
    assert [e["seq"] for e in got] == [before + 1, before + 2]


@pytest.mark.django_db(transaction=True)
def test_the_last_event_whose_announcement_was_lost_arrives_within_a_recheck(director, compositor, shot,
                                                                             show_model, settings):
    """No later event comes to bring it along (the request's last, its worker's broker connection cut as it was
    announced): the periodic membership check catches up from the database, once, in order."""
    settings.PT_WS_RECHECK_SECONDS = 0.3
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    before = request.events.count()

    def write_silently():
        for n in (1, 2):
            RequestEvent.objects.create(request_id=request.pk, seq=before + n, type="note.added", payload={})
        GenerationRequest.objects.filter(pk=request.pk).update(last_seq=before + 2)

    async def watch() -> list[dict]:
        communicator = WebsocketCommunicator(app, f"/ws/requests/{request.pk}/?after={before}")
        communicator.scope["user"] = director
        assert (await communicator.connect())[0]
        await communicator.send_json_to({"type": "ping"})  # answered once the connect's catch-up is over
        assert (await communicator.receive_json_from(timeout=5))["type"] == "pong"
        await database_sync_to_async(write_silently)()
        got = [await communicator.receive_json_from(timeout=5) for _ in range(2)]
        assert await communicator.receive_nothing(timeout=0.8)  # several rechecks: nothing twice
        await communicator.disconnect()
        return got

    assert [e["seq"] for e in async_to_sync(watch)()] == [before + 1, before + 2]


@pytest.mark.django_db(transaction=True)
def test_a_stray_announcement_from_another_portal_is_never_forwarded(director, compositor, shot, show_model):
    """Redis pub/sub ignores database numbers: a second portal's request with the same id may be heard. An event
    the database does not have, or of another request, is dropped, and the viewer's own stream goes on."""
    from channels.layers import get_channel_layer

    from generation.events import request_group

    request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    before = request.events.count()

    async def stray_then_real():
        layer = get_channel_layer()
        for stray in ({"type": "note.added", "seq": before + 50, "request": request.pk, "payload": {"stray": 1}},
                      {"type": "note.added", "seq": before + 1, "request": request.pk + 1000, "payload": {}}):
            await layer.group_send(request_group(request.pk), {"type": "request.event", "event": stray})
        await database_sync_to_async(event_append)(request_id=request.pk, type="note.added", payload={"real": 1})

    got = async_to_sync(_collect)(director, request.pk, before, 1, during=stray_then_real)
    assert [(e["seq"], e["payload"]) for e in got] == [(before + 1, {"real": 1})]


def test_the_channel_prefix_names_the_redis_database(monkeypatch):
    import importlib

    import portal.settings as portal_settings

    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:6379/7")
    monkeypatch.delenv("PT_CHANNEL_PREFIX", raising=False)
    try:
        reloaded = importlib.reload(portal_settings)
        assert reloaded.CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == "pt-db7"
        monkeypatch.setenv("PT_CHANNEL_PREFIX", "pt-staging")
        assert importlib.reload(portal_settings).CHANNEL_LAYERS["default"]["CONFIG"]["prefix"] == "pt-staging"
    finally:
        monkeypatch.undo()
        importlib.reload(portal_settings)
