"""The roto pages over HTTP (the embedded default, real OIIO/OCIO): bad input gets a clear 4xx and loses nothing;
the page's JSON state; the plate and key-frame JPEGs; a matte element's matte and outline proxies."""

import numpy as np
import OpenImageIO as oiio
import pytest

from generation import roto_keyframes
from generation.models import RotoKeyFrame
from portal import worker
from tests.conftest import PLATE_SIZE

SQUARE = [{"tool": "polygon", "points": [[40, 30], [160, 30], [160, 120], [40, 120]], "feather": 2}]


@pytest.fixture
def roto_set(compositor, shot):
    return roto_keyframes.roto_set_create(user=compositor, shot=shot)


def _url(roto_set, tail: str) -> str:
    return f"/shots/{roto_set.shot_id}/roto/{roto_set.name}/{tail}"


@pytest.mark.parametrize(("body", "says"), [
    (b"{not json", "not JSON"),
    (b"[1, 2]", "a JSON object"),
    (b'{"shapes": "polygon"}', "draw 1 to"),
    (b'{"shapes": [{"tool": "polygon", "points": [[1, 1], [2, 2], [3, "x"]]}]}', "must be a number"),
])
def test_bad_drawings_are_refused_with_a_clear_400_and_nothing_is_kept(client, compositor, roto_set, body, says):
    client.force_login(compositor)
    response = client.post(_url(roto_set, "keys/1002"), body, content_type="application/json")
    assert response.status_code == 400 and says in response.content.decode()
    assert not RotoKeyFrame.objects.exists()


def test_a_frame_outside_the_plate_and_a_lock_without_a_pass_are_refused(client, compositor, roto_set):
    client.force_login(compositor)
    response = client.post(_url(roto_set, "keys/999"), {"shapes": SQUARE}, content_type="application/json")
    assert response.status_code == 400 and "outside the plate's frames 1001-1006" in response.content.decode()
    assert client.post(_url(roto_set, "lock/1002"), {"locked": "1"}).status_code == 400
    assert client.post(_url(roto_set, "lock/1002"), {"locked": "maybe"}).status_code == 400
    assert client.post(_url(roto_set, "passes"), {"first_frame": "x"}).status_code == 400
    assert client.get(f"/media/shots/{roto_set.shot_id}/plate/999.jpg").status_code == 404
    assert client.get(_url(roto_set, "").replace("/r01/", "/r99/")).status_code == 404


def _jpeg(response, tmp_path) -> np.ndarray:
    assert response.status_code == 200 and response["Content-Type"] == "image/jpeg"
    path = tmp_path / f"proxy-{len(list(tmp_path.iterdir()))}.jpg"
    path.write_bytes(b"".join(response.streaming_content))
    return oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)


@pytest.mark.django_db(transaction=True)
def test_drawn_key_frames_a_pass_and_its_matte_and_outline_proxies(client, compositor, roto_set, tmp_path):
    client.force_login(compositor)
    for frame in (1001, 1006):
        response = client.post(_url(roto_set, f"keys/{frame}"), {"shapes": SQUARE}, content_type="application/json")
        assert response.status_code == 200, response.content
    state = response.json()
    assert [k["frame"] for k in state["keys"]] == [1001, 1006] and state["keys"][0]["by"] == "cora"
    assert state["keys"][0]["tools"] == ["polygon"] and state["passes"] == []
    key = _jpeg(client.get(state["keys"][0]["matte"]), tmp_path)
    k = key.shape[1] / PLATE_SIZE[0]  # proxies are the proxy width
    assert key[int(75 * k), int(100 * k)].min() > 250 and key[5, 5].max() < 5  # white inside, black outside
    plate = _jpeg(client.get(f"/media/shots/{roto_set.shot_id}/plate/1003.jpg"), tmp_path)
    assert plate.shape[2] == 3 and plate.std() > 5

    asked = client.post(_url(roto_set, "passes"))
    assert asked.status_code == 201, asked.content
    worker.drain_embedded()
    again = client.post(_url(roto_set, "passes"))
    assert again.status_code == 400 and "nothing changed since pass 1" in again.content.decode()
    passes = client.get(_url(roto_set, "state.json")).json()["passes"]
    assert passes[0]["number"] == 1 and passes[0]["variation_status"] == "done"
    variation = passes[0]["variation"]
    matte = _jpeg(client.get(f"/media/variations/{variation}/proxy/1003.jpg?kind=matte"), tmp_path)
    outline = _jpeg(client.get(f"/media/variations/{variation}/proxy/1003.jpg?kind=outline"), tmp_path)
    scale = matte.shape[1] / PLATE_SIZE[0]
    assert matte[int(75 * scale), int(100 * scale)].min() > 200 and matte[3, 3].max() < 10
    yellow = (outline[..., 0] > 200) & (outline[..., 1] > 170) & (outline[..., 2] < 90)
    assert yellow.any() and not yellow[int(75 * scale), int(100 * scale)]  # the edge, not the inside
    assert client.get(f"/media/variations/{variation}/proxy/1003.jpg?kind=nonsense").status_code == 400
