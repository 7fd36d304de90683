"""Roto through the whole loop on the embedded default, on real footage: key frames in through the API, a
matte per frame from the worker, sign-off with no pick, a released matte with the plate's windows on disk."""

import re
import subprocess
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest
from portal import worker
from review import services as review
from review.models import Release
from tests.conftest import OIIOTOOL
from tests.realdata import testdata as real_footage

FIRST, LAST = 1001, 1006
CROP = (slice(150, 310), slice(300, 540))
DISPLAY = Window(0, 0, 240, 160)


def _read(path) -> np.ndarray:
    return oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)


@pytest.fixture
def swan_shot(show, storage):
    """A scene-linear plate of blackswan (a crop) ingested as a shot, and a key-frame sequence with two frames."""
    from portal.services import plate_ingest

    folder = real_footage("davis16", "blackswan")
    root = storage / "plates" / "swan"
    plate, keys = str(root / "plate" / "swan.####.exr"), str(root / "roto" / "swan_roto.####.exr")
    for sub in ("plate", "roto"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rgb = (_read(folder / "frames" / f"{i:05d}.jpg")[CROP].astype(np.float32) / 255) ** 2.2
        frames.write_exr(frame_path(plate, f), rgb, display_window=DISPLAY, channel_names="RGB")
        if f in (FIRST, LAST):  # what Nuke's Write of a Roto's alpha leaves: only the frames the artist drew
            matte = (_read(folder / "masks" / f"{i:05d}.png")[CROP][..., :1] > 127).astype(np.float32)
            frames.write_exr(frame_path(keys, f), matte, display_window=DISPLAY, channel_names=("A",))
    ingested = plate_ingest(show=show, sequence_code="sq020", shot_code="swan", pattern=plate)
    return ingested.shot, keys


@pytest.mark.django_db(transaction=True)
def test_roto_from_key_frames_to_a_released_matte(client, compositor, swan_shot):
    shot, keys = swan_shot
    client.force_login(compositor)
    response = client.post(
        "/api/requests/",
        {
            "shot": shot.pk,
            "task": "roto",
            "first_frame": FIRST,
            "last_frame": LAST,
            "count": 1,
            "matte_pattern": keys,
            "seed": 7,
        },
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    worker.drain_embedded()
    request = GenerationRequest.objects.get(pk=response.json()["id"])
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    assert request.status == "review"
    assert request.events.get(type="request.created").payload["key_frames"] == 2  # the dashboard counts them
    for f in range(FIRST, LAST + 1):
        header = frames.read_header(frame_path(variation.exr_pattern, f))
        assert header.channels == ("A",) and header.display_window == DISPLAY
    matte = frames.read_matte(frame_path(variation.exr_pattern, 1003))
    assert 0.05 < (matte > 0.5).mean() < 0.6

    # No director's pick: roto needs none, the compositor signs the variation off directly.
    review.signoff_approve(user=compositor, request=request, variation=variation)
    worker.drain_embedded()
    release = Release.objects.get()
    assert release.status == "done", release.error
    released = frame_path(release.path_pattern, 1003)
    assert Path(released).is_file()
    info = subprocess.run([OIIOTOOL, "--info", "-v", released], capture_output=True, text=True, check=True).stdout
    assert re.search(r"240 x\s+160, 1 channel, half openexr", info) and "channel list: A\n" in info
    assert 'parallel_track:roto_keyframes: "1001,1006"' in info and 'parallel_track:signed_off_by: "cora"' in info


def _released_roto(client, compositor, shot, keys) -> Release:
    """Roto the swan from its two key frames, sign it off and release it (through the API and the worker)."""
    client.force_login(compositor)
    response = client.post("/api/requests/", {"shot": shot.pk, "task": "roto", "first_frame": FIRST, "last_frame": LAST,
                                              "count": 1, "matte_pattern": keys, "seed": 7},
                           content_type="application/json")
    assert response.status_code == 201, response.content
    worker.drain_embedded()
    request = GenerationRequest.objects.get(pk=response.json()["id"])
    review.signoff_approve(user=compositor, request=request, variation=request.variations.get())
    worker.drain_embedded()
    release = Release.objects.get(signoff__variation__request=request)
    assert release.status == "done", release.error
    return release


@pytest.mark.django_db(transaction=True)
def test_a_released_roto_is_the_matte_of_a_generation_request(client, compositor, swan_shot, show_model):
    """The loop closes: roto the swan, release it, and a generation request takes the released roto as its
    matte (offered by the API and the shot's form), runs through the worker and covers the matte on every frame."""
    shot, keys = swan_shot
    release = _released_roto(client, compositor, shot, keys)
    offered = client.get(f"/api/shots/{shot.pk}/mattes/").json()
    assert [(m["release"], m["version"], m["path"]) for m in offered] == [(release.pk, 1, release.path_pattern)]
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert f'<select name="matte_release"><option value="">none</option><option value="{release.pk}">Roto v001' in page

    body = {"shot": shot.pk, "model": show_model.pk, "task": "sky_replacement", "first_frame": FIRST,
            "last_frame": LAST, "count": 1, "steps": 2, "seed": 3, "matte_release": release.pk}
    response = client.post("/api/requests/", body, content_type="application/json")
    assert response.status_code == 201, response.content
    assert response.json()["matte_pattern"] == release.path_pattern
    worker.drain_embedded()
    variation = GenerationRequest.objects.get(pk=response.json()["id"]).variations.get()
    assert variation.status == "done", variation.error
    assert variation.coverage is not None and not variation.coverage_flagged, variation.coverage
    for f in range(FIRST, LAST + 1):
        rgba, _ = frames.read_rgba(frame_path(variation.exr_pattern, f))
        matte = frames.read_matte(frame_path(release.path_pattern, f))
        assert rgba.shape[:2] == matte.shape == (DISPLAY.height, DISPLAY.width)
        # Where the released roto says "swan", the element is opaque; where it says nothing, the element is empty.
        assert rgba[..., 3][matte > 0.99].min() > 0.99 and rgba[..., 3][matte == 0].max() == 0

    # Bad choices are refused with a clear message: both a matte and a rect, a release of nothing, roto on a roto.
    refusals = [({"rect": [0, 0, 10, 10]}, "give the region once"),
                ({"matte_release": release.pk + 100}, f"release {release.pk + 100} is not a released matte"),
                ({"task": "roto", "model": None, "matte_pattern": keys}, "roto does not take a matte"),
                ({"first_frame": FIRST - 1}, "outside the plate's range")]
    for change, message in refusals:
        response = client.post("/api/requests/", {**body, **change}, content_type="application/json")
        assert response.status_code == 400 and message in str(response.json()), (change, response.content)


@pytest.mark.django_db(transaction=True)
def test_roto_refuses_more_than_one_variation(client, compositor, swan_shot):
    """The same key frames make the same matte whatever the seed: count > 1 would be identical copies, so it is
    refused at request time with a message that says why, and nothing is created or queued."""
    shot, keys = swan_shot
    client.force_login(compositor)
    body = {"shot": shot.pk, "task": "roto", "first_frame": FIRST, "last_frame": LAST, "matte_pattern": keys}
    response = client.post("/api/requests/", {**body, "count": 3}, content_type="application/json")
    assert response.status_code == 400, response.content
    message = str(response.json())
    assert "3 variations would be identical" in message and "ask for 1" in message
    assert not GenerationRequest.objects.exists()
