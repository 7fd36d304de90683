""""Iterate from here": a new request prefilled from a variation, with its lineage on both request pages."""

import pytest

from generation.models import GenerationRequest, RequestEvent
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db


@pytest.fixture
def origin(compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=3, frames=(1002, 1005))
    GenerationRequest.objects.filter(pk=request.pk).update(prompt="stormy dusk", steps=7)
    return request.variations.get(index=2)


def form_value(html: str, name: str) -> str:
    import re

    found = re.search(rf'name="{name}"[^>]*value="([^"]*)"', html)
    return found.group(1) if found else ""


def test_the_shot_form_is_prefilled_from_the_variation(client, origin):
    client.login(username="cora", password="cora-pw")
    html = client.get(f"/shots/{origin.request.shot_id}/?from={origin.pk}").content.decode()
    assert f"Iterate from request {origin.request_id} v03" in html
    assert form_value(html, "derived_from") == str(origin.pk)
    assert (form_value(html, "first_frame"), form_value(html, "last_frame")) == ("1002", "1005")
    assert (form_value(html, "count"), form_value(html, "steps")) == ("3", "7")
    assert form_value(html, "prompt") == "stormy dusk"
    assert form_value(html, "base_seed") == str(origin.seed)
    assert form_value(html, "matte_pattern") == origin.request.matte_pattern != ""
    assert form_value(html, "rect") == ""

    drawn = client.get(f"/shots/{origin.request.shot_id}/?from={origin.pk}&rect=10,20,100,40").content.decode()
    assert form_value(drawn, "rect") == "10 20 100 40" and form_value(drawn, "matte_pattern") == ""


def test_a_request_made_from_the_form_records_where_it_came_from(client, origin):
    client.login(username="cora", password="cora-pw")
    request = origin.request
    response = client.post(f"/shots/{request.shot_id}/requests/new", {
        "derived_from": origin.pk, "task": "sky_replacement", "model": request.model_id, "first_frame": 1002,
        "last_frame": 1005, "count": 2, "steps": 3, "rect": "10 20 100 40", "prompt": "calmer", "base_seed": origin.seed + 1})
    assert response.status_code == 302, response.content
    new = GenerationRequest.objects.exclude(pk=request.pk).get()
    assert new.derived_from == origin and new.rect == [10, 20, 100, 40] and new.base_seed == origin.seed + 1
    assert new.variations.get(index=0).seed == origin.seed + 1

    child_page = client.get(f"/requests/{new.pk}/").content.decode()
    assert f'href="/requests/{request.pk}/">request {request.pk} · v03</a>' in child_page
    parent_page = client.get(f"/requests/{request.pk}/").content.decode()
    assert f'href="/requests/{new.pk}/" data-request="{new.pk}">request {new.pk}</a> from v03 by cora' in parent_page
    told = RequestEvent.objects.get(request=request, type="request.iterated")
    assert told.payload == {"request": new.pk, "variation": origin.pk, "label": "v03", "by": "cora"}
    shot_page = client.get(f"/shots/{request.shot_id}/").content.decode()
    assert f"from <a href=\"/requests/{request.pk}/\">{request.pk} v03</a>" in shot_page


def test_it_refuses_to_iterate_from_another_shots_variation(client, origin, show):
    from portal.models import Sequence, Shot

    other_shot = Shot.objects.create(sequence=Sequence.objects.get(show=show), code="sh020")
    other_shot.plates.create(path_pattern=origin.request.plate.path_pattern, first_frame=1001, last_frame=1006,
                             display_window=origin.request.plate.display_window,
                             data_window=origin.request.plate.data_window, channels=["R", "G", "B"],
                             matte_pattern=origin.request.plate.matte_pattern)
    client.login(username="cora", password="cora-pw")
    response = client.post(f"/shots/{other_shot.pk}/requests/new", {
        "derived_from": origin.pk, "model": origin.request.model_id, "first_frame": 1002, "last_frame": 1005,
        "count": 1, "steps": 1})
    assert response.status_code == 400 and b"same shot" in response.content
    assert GenerationRequest.objects.count() == 1
