"""Notes at a frame with a drawn shape: checked, stored in display-window pixels, broadcast as events."""

import json

import pytest

from generation.models import RequestEvent
from review import services
from review.models import Note
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db


@pytest.fixture
def variation(director, compositor, shot, show_model):
    return request_with_done_variations(user=compositor, shot=shot, model=show_model, frames=(1001, 1006)
                                        ).variations.first()


def post_note(client, variation, **data):
    return client.post(f"/variations/{variation.pk}/notes", data, HTTP_X_REQUESTED_WITH="fetch")


def test_a_note_with_a_drawn_rectangle_is_stored_and_broadcast(client, variation):
    client.login(username="dana", password="dana-pw")
    shape = {"kind": "rect", "x": 10.26, "y": 20, "width": 400, "height": 30.04}  # wider than the 320 px frame
    assert post_note(client, variation, text="sky too warm here", frame=1003, shape=json.dumps(shape)).status_code == 204
    note = Note.objects.get()
    assert (note.frame, note.text, note.author.username) == (1003, "sky too warm here", "dana")
    assert note.shape == {"kind": "rect", "x": 10.3, "y": 20.0, "width": 309.7, "height": 30.0}
    event = RequestEvent.objects.filter(type="note.added").get()
    assert event.payload["shape"] == note.shape and event.payload["frame"] == 1003 and event.payload["by"] == "dana"


def test_a_freehand_stroke_is_kept_point_by_point_inside_the_frame(client, variation):
    client.login(username="cora", password="cora-pw")
    points = [[0, 0], [50.55, 60], [400, -3]]
    post_note(client, variation, text="this edge", frame=1001, shape=json.dumps({"kind": "stroke", "points": points}))
    assert Note.objects.get().shape == {"kind": "stroke", "points": [[0.0, 0.0], [50.5, 60.0], [320.0, 0.0]]}


MALFORMED = [
    "not json", json.dumps({"kind": "circle"}), json.dumps({"kind": "rect", "x": 1, "y": 1, "width": 0, "height": 5}),
    json.dumps({"kind": "stroke", "points": [[1, 2]]}), json.dumps({"kind": "stroke", "points": [[1, "a"], [2, 3]]}),
    json.dumps({"kind": "stroke", "points": [[1, 2, 3], [2, 3]]}), json.dumps([1, 2]),
    json.dumps({"kind": "stroke", "points": [[1, 1]] * (services.MAX_SHAPE_POINTS + 1)}),
]


def test_it_refuses_a_malformed_shape_and_stores_nothing(client, variation):
    client.login(username="dana", password="dana-pw")
    for shape in MALFORMED:
        response = post_note(client, variation, text="x", frame=1001, shape=shape)
        assert response.status_code == 400, (shape, response.content)
    assert not Note.objects.exists() and not RequestEvent.objects.filter(type="note.added").exists()


def test_a_note_outside_the_requests_frames_or_from_an_outsider_is_refused(client, variation, outsider):
    client.login(username="dana", password="dana-pw")
    assert post_note(client, variation, text="x", frame=1007).status_code == 400
    assert post_note(client, variation, text="plain note, no frame, no shape").status_code == 204
    assert Note.objects.get().shape is None and Note.objects.get().frame is None
    client.logout()
    client.login(username="otto", password="otto-pw")
    assert post_note(client, variation, text="x", frame=1001).status_code == 404
    assert Note.objects.count() == 1
