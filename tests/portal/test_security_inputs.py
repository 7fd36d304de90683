"""Inputs that answered 500: each gets a clear 4xx (JSON on the API), and changes nothing."""

import pytest
from asgiref.sync import async_to_sync
from asgiref.testing import ApplicationCommunicator

from generation.models import GenerationRequest
from review.models import Note
from tests.factories import request_with_done_variations

HUGE = str(10**30)


def _api_error(response, status: int = 400) -> dict:
    assert response.status_code == status, response.content[:300]
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert body["code"] and body["message"]
    return body


def test_a_huge_limit_on_the_api_is_a_clear_400(client, compositor, shot):
    client.force_login(compositor)
    body = _api_error(client.get(f"/api/requests/?limit={HUGE}"))
    assert "limit" in body["message"]
    _api_error(client.get(f"/api/releases/?offset={HUGE}"))
    assert client.get("/api/requests/?limit=5").status_code == 200


@pytest.mark.parametrize("query", ["end=9999-12-31", "start=0001-01-01&end=0001-01-01", f"start=2026-01-01&end={HUGE}"])
def test_dates_at_the_calendars_edge_are_a_clear_400_on_the_metrics_api_and_dashboard(client, producer, show, query):
    client.force_login(producer)
    _api_error(client.get(f"/api/shows/{show.code}/metrics/?{query}"))
    for page in ("dashboard/", "dashboard.csv"):
        response = client.get(f"/shows/{show.code}/{page}?{query}")
        assert response.status_code == 400 and b"date" in response.content


def test_a_json_body_nested_100000_deep_is_a_clear_400(client, compositor, shot):
    client.force_login(compositor)
    deep = "[" * 100_000 + "]" * 100_000
    _api_error(client.post("/api/requests/", deep, content_type="application/json"))
    assert not GenerationRequest.objects.exists()


def test_a_form_seed_of_10_to_the_30_is_a_clear_400(client, compositor, shot, show_model):
    client.force_login(compositor)
    response = client.post(f"/shots/{shot.pk}/requests/new", {
        "model": show_model.pk, "first_frame": shot.first_frame, "last_frame": shot.last_frame, "count": 1,
        "steps": 2, "rect": "0 0 10 10", "base_seed": HUGE})
    assert response.status_code == 400 and b"base_seed" in response.content
    assert not GenerationRequest.objects.exists()


@pytest.mark.parametrize("frame", ["--1", "\u00b2", "1e3", HUGE])
def test_a_note_frame_that_is_no_whole_number_is_a_clear_400(client, director, compositor, shot, show_model, frame):
    variation = request_with_done_variations(user=compositor, shot=shot, model=show_model).variations.first()
    client.force_login(director)
    response = client.post(f"/variations/{variation.pk}/notes", {"text": "warmer", "frame": frame})
    assert response.status_code == 400 and b"frame" in response.content
    assert not Note.objects.exists()


@pytest.mark.parametrize("url", ["/api/requests/abc/", "/api/shots/1.5/", "/api/variations/x/pick/",
                                 "/api/requests/-1/cancel/", "/api/nowhere/"])
def test_an_api_url_that_names_no_id_gets_a_json_404(client, compositor, url):
    client.force_login(compositor)
    assert _api_error(client.get(url), 404)["code"] == "not_found"


async def _asgi_get(path: str) -> int:
    from portal.asgi import application

    communicator = ApplicationCommunicator(application, {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET", "scheme": "http",
        "path": path, "raw_path": path.encode(), "query_string": b"", "root_path": "",
        "headers": [(b"host", b"localhost")], "server": ("localhost", 80), "client": ("127.0.0.1", 1)})
    await communicator.send_input({"type": "http.request", "body": b""})
    start = await communicator.receive_output(timeout=10)
    return start["status"]


@pytest.mark.django_db
@pytest.mark.parametrize("path", ["/static/../x", "/static/../portal/settings.py", "/static/%2e%2e/x",
                                  "/static/js/../../README.md"])
def test_a_static_path_that_climbs_out_is_a_404(path):
    assert async_to_sync(_asgi_get)(path) == 404
