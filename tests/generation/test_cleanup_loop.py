"""Cleanup through the whole loop on the embedded default, on real footage (Sintel's houses, a moving box to
remove): a request through the API, variations from the worker with coverage and flicker, a director's pick,
sign-off, a released RGBA element whose comp over the plate is the plate outside the matte."""

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

FIRST, LAST = 1001, 1005
CROP = (slice(20, 180), slice(620, 876))
DISPLAY = Window(0, 0, 256, 160)


@pytest.fixture
def houses_shot(show, storage):
    """Sintel frames 16-20 (the houses, a crop) with a grey box moving across them, ingested as a shot, and
    the box's matte on the show's storage."""
    from portal.services import plate_ingest

    root = storage / "plates" / "houses"
    plate, matte = str(root / "plate" / "houses.####.exr"), str(root / "matte" / "houses_rig.####.exr")
    for sub in ("plate", "matte"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rgb = oiio.ImageBuf(str(real_footage("sintel-demo", f"frame_{16 + i:04d}.png"))).get_pixels(oiio.FLOAT)
        rgb = rgb[CROP][..., :3] ** 2.2
        m = np.zeros(rgb.shape[:2], np.float32)
        m[50:110, 40 + 14 * i : 84 + 14 * i] = 1.0
        rgb[m > 0] = 0.18
        frames.write_exr(frame_path(plate, f), rgb, display_window=DISPLAY, channel_names="RGB")
        frames.write_exr(frame_path(matte, f), m[..., None], display_window=DISPLAY, channel_names=("A",))
    ingested = plate_ingest(show=show, sequence_code="sq030", shot_code="houses", pattern=plate)
    return ingested.shot, plate, matte


@pytest.mark.django_db(transaction=True)
def test_cleanup_from_request_to_a_released_element(client, compositor, director, show_model, houses_shot):
    shot, plate, matte = houses_shot
    client.force_login(compositor)
    response = client.post(
        "/api/requests/",
        {"shot": shot.pk, "task": "cleanup", "model": show_model.pk, "first_frame": FIRST, "last_frame": LAST,
         "count": 2, "matte_pattern": matte, "seed": 11, "steps": 3},
        content_type="application/json",
    )
    assert response.status_code == 201, response.content
    worker.drain_embedded()
    request = GenerationRequest.objects.get(pk=response.json()["id"])
    assert request.status == "review"
    variations = list(request.variations.order_by("index"))
    assert len(variations) == 2
    for v in variations:
        assert v.status == "done", v.error
        assert v.coverage == 1.0 and 0 < v.flicker_ratio < 1.2
    picked = variations[1]
    review.pick_make(user=director, variation=picked)
    review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=request.pk))
    worker.drain_embedded()
    release = Release.objects.get()
    assert release.status == "done", release.error
    for f in range(FIRST, LAST + 1):
        released = frame_path(release.path_pattern, f)
        element = oiio.ImageBuf(released)
        spec = element.spec()
        e = element.get_pixels(oiio.FLOAT, oiio.ROI(0, spec.full_width, 0, spec.full_height, 0, 1, 0, 4))
        p = frames.read_channels(frame_path(plate, f), ("R", "G", "B"))
        m = frames.read_matte(frame_path(matte, f))
        comp = e[..., :3] + p * (1 - e[..., 3:])
        assert np.array_equal(comp[m == 0], p[m == 0])
        assert np.abs(comp[m > 0] - 0.18).mean() > 0.02  # the grey box is gone
    info = subprocess.run([OIIOTOOL, "--info", "-v", frame_path(release.path_pattern, 1003)],
                          capture_output=True, text=True, check=True).stdout
    # the data window is the matte's box (frame 1003: x 68..111, y 50..109) inside the plate's display window
    assert re.search(r"44 x\s+60, 4 channel, half openexr", info) and "full/display size: 256 x 160" in info
    assert 'parallel_track:task: "cleanup"' in info and "parallel_track:cleanup_method" in info
    assert 'parallel_track:signed_off_by: "cora"' in info and f'parallel_track:model: "{show_model.name}"' in info
    assert Path(release.path_pattern).parent.is_dir()
