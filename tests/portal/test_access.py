"""Outsiders learn nothing about a show; each role does only what it may."""

import pytest
from asgiref.sync import async_to_sync
from channels.routing import URLRouter
from channels.testing import WebsocketCommunicator
from django.urls import path

from generation.consumers import RequestConsumer
from portal.errors import Forbidden
from review import services as review
from tests.factories import request_with_done_variations


@pytest.fixture
def gen_request(compositor, shot, show_model):
    return request_with_done_variations(user=compositor, shot=shot, model=show_model)


def _pages(gen_request):
    variation = gen_request.variations.first()
    return [
        ("get", f"/shots/{gen_request.shot_id}/"),
        ("get", f"/requests/{gen_request.pk}/"),
        ("get", f"/media/variations/{variation.pk}/proxy/{gen_request.first_frame}.jpg"),
        ("get", f"/requests/{gen_request.pk}/audit.csv"),
        ("get", f"/shows/{gen_request.shot.sequence.show.code}/dashboard/"),
        ("get", f"/shows/{gen_request.shot.sequence.show.code}/dashboard.csv"),
        ("post", f"/shots/{gen_request.shot_id}/models/{gen_request.model_id}/approve"),
        ("post", f"/shots/{gen_request.shot_id}/requests/new"),
        ("post", f"/requests/{gen_request.pk}/cancel"),
        ("post", f"/requests/{gen_request.pk}/signoff"),
        ("post", f"/requests/{gen_request.pk}/reject-all"),
        ("post", f"/variations/{variation.pk}/pick"),
        ("post", f"/variations/{variation.pk}/notes"),
    ]


def _api(gen_request):
    variation = gen_request.variations.first()
    return [
        ("get", f"/api/shows/{gen_request.shot.sequence.show.code}/shots/"),
        ("get", f"/api/shots/{gen_request.shot_id}/"),
        ("get", f"/api/requests/{gen_request.pk}/"),
        ("post", f"/api/requests/{gen_request.pk}/cancel/"),
        ("post", f"/api/requests/{gen_request.pk}/signoff/"),
        ("post", f"/api/requests/{gen_request.pk}/send-back/"),
        ("post", f"/api/variations/{variation.pk}/pick/"),
        ("get", f"/api/shows/{gen_request.shot.sequence.show.code}/metrics/"),
    ]


def test_an_outsider_gets_404_on_every_page_of_the_show(client, outsider, gen_request):
    client.force_login(outsider)
    for method, url in _pages(gen_request):
        assert getattr(client, method)(url).status_code == 404, url
    assert gen_request.shot.sequence.show.name not in client.get("/").content.decode()


def test_an_outsider_gets_404_on_every_api_endpoint_of_the_show(client, outsider, gen_request, show_model):
    client.force_login(outsider)
    for method, url in _api(gen_request):
        assert getattr(client, method)(url, content_type="application/json").status_code == 404, url
    created = client.post("/api/requests/", {"shot": gen_request.shot_id, "model": show_model.pk,
                                             "first_frame": 1001, "last_frame": 1002},
                          content_type="application/json")
    assert created.status_code == 404
    assert client.get("/api/shows/").json()["results"] == []
    assert client.get("/api/requests/").json()["results"] == []
    assert client.get("/api/releases/").json()["results"] == []


def test_anonymous_users_are_sent_to_log_in_and_refused_by_the_api(client, gen_request):
    assert client.get(f"/requests/{gen_request.pk}/").status_code == 302
    assert client.get(f"/api/requests/{gen_request.pk}/").status_code in (401, 403)


def test_a_producer_cannot_pick(producer, gen_request):
    with pytest.raises(Forbidden, match="producer cannot pick"):
        review.pick_make(user=producer, variation=gen_request.variations.first())


def test_a_director_cannot_sign_off(director, gen_request):
    review.pick_make(user=director, variation=gen_request.variations.first())
    with pytest.raises(Forbidden, match="director cannot sign off"):
        review.signoff_approve(user=director, request=gen_request)


def test_a_director_sign_off_through_the_page_and_the_api_is_403(client, director, gen_request):
    review.pick_make(user=director, variation=gen_request.variations.first())
    client.force_login(director)
    assert client.post(f"/requests/{gen_request.pk}/signoff", {"decision": "approve"}).status_code == 403
    response = client.post(f"/api/requests/{gen_request.pk}/signoff/", {}, content_type="application/json")
    assert response.status_code == 403 and response.json()["code"] == "role"


def test_a_producer_pick_through_the_page_and_the_api_is_403(client, producer, gen_request):
    client.force_login(producer)
    variation = gen_request.variations.first()
    assert client.post(f"/variations/{variation.pk}/pick").status_code == 403
    response = client.post(f"/api/variations/{variation.pk}/pick/", {}, content_type="application/json")
    assert response.status_code == 403


def test_a_producer_cannot_request_variations(client, producer, shot, show_model):
    client.force_login(producer)
    response = client.post("/api/requests/", {"shot": shot.pk, "model": show_model.pk, "first_frame": 1001,
                                              "last_frame": 1002}, content_type="application/json")
    assert response.status_code == 403


async def _ws_connect(user_id: int | None, request_id: int):
    from django.contrib.auth import get_user_model
    from django.contrib.auth.models import AnonymousUser

    user = await get_user_model().objects.aget(pk=user_id) if user_id else AnonymousUser()
    app = URLRouter([path("ws/requests/<int:request_id>/", RequestConsumer.as_asgi())])
    communicator = WebsocketCommunicator(app, f"/ws/requests/{request_id}/")
    communicator.scope["user"] = user
    connected, code = await communicator.connect()
    if connected:  # a refusal is accept, then close 4403 (the page does not retry it)
        if not await communicator.receive_nothing(timeout=0.5):
            message = await communicator.receive_output()
            connected, code = message["type"] != "websocket.close", message.get("code")
    await communicator.disconnect()
    return connected, code


@pytest.mark.django_db(transaction=True)
def test_websockets_admit_members_and_refuse_outsiders_and_anonymous(director, outsider, compositor, shot,
                                                                     show_model):
    gen_request = request_with_done_variations(user=compositor, shot=shot, model=show_model)
    assert async_to_sync(_ws_connect)(director.pk, gen_request.pk)[0] is True
    assert async_to_sync(_ws_connect)(outsider.pk, gen_request.pk) == (False, 4403)
    assert async_to_sync(_ws_connect)(None, gen_request.pk) == (False, 4403)


def _roto_pages(roto_set, frame: int):
    base = f"/shots/{roto_set.shot_id}/roto/{roto_set.name}"
    return [
        ("get", f"/shots/{roto_set.shot_id}/roto/"),
        ("post", f"/shots/{roto_set.shot_id}/roto/new"),
        ("get", f"{base}/"),
        ("get", f"{base}/state.json"),
        ("post", f"{base}/keys/{frame}"),
        ("post", f"{base}/lock/{frame}"),
        ("post", f"{base}/passes"),
        ("get", f"/media/shots/{roto_set.shot_id}/plate/{frame}.jpg"),
        ("get", f"/media/shots/{roto_set.shot_id}/roto/{roto_set.name}/keys/{frame}.jpg"),
    ]


def test_an_outsider_gets_404_on_every_roto_page_and_a_producer_draws_nothing(client, outsider, producer, compositor,
                                                                             shot):
    from generation import roto_keyframes

    roto_set = roto_keyframes.roto_set_create(user=compositor, shot=shot)
    square = [{"tool": "polygon", "points": [[10, 10], [90, 10], [90, 90], [10, 90]]}]
    roto_keyframes.keyframe_draw(user=compositor, roto_set=roto_set, frame=1001, shapes=square)
    client.force_login(outsider)
    for method, url in _roto_pages(roto_set, 1001):
        assert getattr(client, method)(url).status_code == 404, url
    client.force_login(producer)  # a member who may look but not draw
    assert client.get(f"/shots/{shot.pk}/roto/{roto_set.name}/").status_code == 200
    assert client.get(f"/media/shots/{shot.pk}/roto/{roto_set.name}/keys/1001.jpg").status_code == 200
    drawn = client.post(f"/shots/{shot.pk}/roto/{roto_set.name}/keys/1002", {"shapes": square},
                        content_type="application/json")
    assert drawn.status_code == 403 and roto_set.keyframes.count() == 1
