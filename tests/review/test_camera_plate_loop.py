"""The whole loop on real footage shot anamorphic in a camera colour space: Sintel squeezed 2:1 and encoded as
ARRI LogC4, with a timecode. Generation and every proxy see the plate in the working space and desqueezed; the
release keeps the plate's pixel aspect and timecode and carries the working space's chromaticities, the show's fps
and its pinned OCIO config."""

import re
import subprocess
import uuid

import numpy as np
import OpenImageIO as oiio
import pytest

from generation import services
from generation.engine import colour, frames
from generation.engine.sequence import frame_path
from portal import worker
from portal.colour import show_colour
from portal.services import plate_ingest
from review import services as review
from review.models import Release
from tests.camera_plates import FIRST, TIMECODE_1H, ocio_convert, write_plate
from tests.conftest import OIIOTOOL

REGION = [160, 20, 200, 120]  # x, y, width, height in the squeezed plate's pixels: the sky over Sintel


@pytest.fixture
def logc4_request(storage, show, compositor, show_model):
    pattern = write_plate(storage / "plates" / f"sintel-logc4-{uuid.uuid4().hex[:8]}", frames=2,
                          colourspace="ARRI LogC4", pixel_aspect=2.0, timecode_on_first=TIMECODE_1H)
    plate = plate_ingest(show=show, sequence_code="sintel", shot_code="sn010", pattern=pattern,
                         colourspace="ARRI LogC4")
    request = services.request_create(user=compositor, shot=plate.shot, model=show_model, first_frame=FIRST,
                                      last_frame=FIRST + 1, count=1, steps=1, base_seed=4, rect=REGION)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    return request


def _jpeg(data: bytes, tmp_path, name: str) -> np.ndarray:
    (tmp_path / name).write_bytes(data)
    return np.asarray(oiio.ImageBuf(str(tmp_path / name)).get_pixels(oiio.FLOAT)) * 255.0


@pytest.mark.django_db(transaction=True)
def test_proxies_of_an_anamorphic_logc4_plate_are_desqueezed_and_in_the_working_space(client, logc4_request,
                                                                                      tmp_path):
    client.login(username="cora", password="cora-pw")
    plate = logc4_request.plate
    assert plate.pixel_aspect == 2.0 and (plate.width, plate.height) == (512, 436)
    shown = _jpeg(client.get(f"/media/requests/{logc4_request.pk}/plate/{FIRST}.jpg").getvalue(), tmp_path, "p.jpg")
    assert shown.shape == (round(436 * 960 / (512 * 2)), 960, 3)  # 2:1 squeezed 512 wide shows as 1024 wide

    stored = frames.read_channels(frame_path(plate.path_pattern, FIRST), ("R", "G", "B"))  # LogC4 code values
    sc = show_colour(logc4_request.shot.sequence.show)
    expected = colour.make_proxy(ocio_convert(stored, "ARRI LogC4", "ACEScg"), width=960, src="ACEScg",
                                 display=sc.display, view=sc.view, config_name=sc.config, pixel_aspect=2.0)
    frames.write_jpeg(tmp_path / "expected.jpg", expected)  # the same encoder: the same bytes if the same pixels
    expected = _jpeg((tmp_path / "expected.jpg").read_bytes(), tmp_path, "e.jpg")
    np.testing.assert_array_equal(shown, expected, "the plate proxy is OCIO's LogC4 -> ACEScg, then the view")
    as_if_linear = colour.make_proxy(stored, width=960, display=sc.display, view=sc.view, config_name=sc.config,
                                     pixel_aspect=2.0)
    assert np.abs(shown - as_if_linear).mean() > 10, "read as ACEScg, LogC4 code values look washed out"

    variation = logc4_request.variations.get()
    comp = _jpeg(client.get(f"/media/variations/{variation.pk}/proxy/{FIRST}.jpg").getvalue(), tmp_path, "c.jpg")
    assert comp.shape == shown.shape, "the engine's in-context proxy is desqueezed too"
    x, y, w, h = REGION
    outside = np.ones(comp.shape[:2], bool)
    outside[int(y * 960 / 1024) - 2: int((y + h) * 960 / 1024) + 3, int(x * 2 * 960 / 1024) - 2:
            int((x + w) * 2 * 960 / 1024) + 3] = False
    # The review room's player box has the picture's shape, so the desqueezed proxies fill it.
    page = client.get(f"/requests/{logc4_request.pk}/").content.decode()
    assert f'data-aspect="{1024 / 436:.6f}"' in page
    # Outside the region the comp is the converted plate (both JPEGs: a code or two of compression apart).
    assert np.abs(comp[outside] - shown[outside]).mean() < 2.5
    assert np.abs(comp[outside] - as_if_linear[outside]).mean() > 10


@pytest.mark.django_db(transaction=True)
def test_the_release_of_a_logc4_anamorphic_plate_carries_what_the_pipeline_reads(director, compositor,
                                                                                 logc4_request):
    review.pick_make(user=director, variation=logc4_request.variations.get())
    signoff = review.signoff_approve(user=compositor, request=logc4_request)
    worker.drain_embedded()
    release = Release.objects.get(signoff=signoff)
    assert release.status == "done", release.error
    show = logc4_request.shot.sequence.show
    for frame, timecode in ((FIRST, "01:00:00:00"), (FIRST + 1, "01:00:00:01")):
        info = subprocess.run([OIIOTOOL, "--info", "-v", frame_path(release.path_pattern, frame)],
                              capture_output=True, text=True, check=True).stdout
        assert "chromaticities: 0.713, 0.293, 0.165, 0.83, 0.128, 0.044, 0.32168, 0.33767" in info, info
        assert re.search(r"framesPerSecond: 24/1\b", info), info
        assert f"smpte:TimeCode: {timecode}" in info, info
        assert "PixelAspectRatio: 2\n" in info and "full/display size: 512 x 436" in info
        assert f'parallel_track:ocio_config: "{show.ocio_config}"' in info and "latest" not in show.ocio_config
        assert 'parallel_track:working_space: "ACEScg"' in info
        assert 'parallel_track:plate_colourspace: "ARRI LogC4"' in info
