"""Cleanup in headless Chromium on real footage (Sintel's houses with a grey rig box moving across them): the
compositor picks a released roto of the rig as the region, asks for cleanup, watches the variations stream in,
compares one against the plate in the wipe, a director picks, the compositor signs off and the release is on disk."""

from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation import services
from generation.engine import frames
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest
from portal import worker
from review import services as review
from review.models import Release
from tests.browser.test_review_loop import FIRST_PROXY_SHOWN, wait_for_status
from tests.realdata import testdata as real_footage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST, LAST = 1001, 1005
CROP = (slice(20, 180), slice(620, 876))
DISPLAY = Window(0, 0, 256, 160)


def _box(i: int) -> np.ndarray:
    m = np.zeros((160, 256), np.float32)
    m[50:110, 40 + 14 * i : 84 + 14 * i] = 1.0
    return m


@pytest.fixture
def rigged_shot(show, storage, compositor):
    """The houses crop with the rig ingested as a shot, and a released roto of the rig (key frames at the first
    and last frame, as Nuke's Write of a Roto leaves them), made through the loop."""
    from portal.services import plate_ingest

    root = storage / "plates" / "houses-rig"
    plate, keys = str(root / "plate" / "rig.####.exr"), str(root / "roto" / "rig_keys.####.exr")
    for sub in ("plate", "roto"):
        (root / sub).mkdir(parents=True, exist_ok=True)
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rgb = oiio.ImageBuf(str(real_footage("sintel-demo", f"frame_{16 + i:04d}.png"))).get_pixels(oiio.FLOAT)
        rgb = rgb[CROP][..., :3] ** 2.2
        rgb[_box(i) > 0] = 0.18
        frames.write_exr(frame_path(plate, f), rgb, display_window=DISPLAY, channel_names="RGB")
        if f in (FIRST, LAST):
            frames.write_exr(frame_path(keys, f), _box(i)[..., None], display_window=DISPLAY, channel_names=("A",))
    shot = plate_ingest(show=show, sequence_code="sq040", shot_code="rig", pattern=plate).shot
    roto = services.request_create(user=compositor, shot=shot, model=None, task="roto", first_frame=FIRST,
                                   last_frame=LAST, count=1, matte_pattern=keys, base_seed=1)
    worker.drain_embedded()
    review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=roto.pk),
                           variation=roto.variations.get())
    worker.drain_embedded()
    release = Release.objects.get(signoff__variation__request=roto)
    assert release.status == "done", release.error
    return shot, plate, release


def test_cleanup_of_a_released_roto_streams_wipes_and_releases(
    open_page, compositor, director, show_model, rigged_shot, screenshots
):
    shot, plate, roto_release = rigged_shot
    cora = open_page("cora", "cora-pw")
    cora.goto(f"/shots/{shot.pk}/")
    form = cora.locator("#new-request")
    form.locator("select[name=task]").select_option("cleanup")
    form.locator("select[name=model]").select_option(str(show_model.pk))
    form.locator("input[name=first_frame]").fill(str(FIRST))
    form.locator("input[name=last_frame]").fill(str(LAST))
    form.locator("input[name=count]").fill("2")
    form.locator("input[name=steps]").fill("3")
    form.locator("select[name=matte_release]").select_option(str(roto_release.pk))
    with cora.expect_navigation(url="**/requests/*/"):
        form.locator("button[type=submit]").click()
    request_id = int(cora.url.rstrip("/").rsplit("/", 1)[1])
    request = GenerationRequest.objects.get(pk=request_id)
    assert request.task == "cleanup" and request.matte_pattern == roto_release.path_pattern

    # The variations stream in while the request runs.
    first = cora.wait_for_function(FIRST_PROXY_SHOWN, polling=50, timeout=240_000).json_value()
    assert "/media/variations/" in first["src"]
    wait_for_status(cora, "In review", timeout=240_000)

    # Compare a variation against the plate in the wipe.
    cora.locator('.tile[data-index="0"]').click()
    cora.locator('.mode[data-mode="wipe"]').click()
    cora.wait_for_function("() => !document.getElementById('wipe-ctl').hidden")
    assert cora.locator("#wipe-b").input_value() == "plate"
    cora.wait_for_function(
        "() => ['img-a', 'img-b'].every((id) => { const i = document.getElementById(id);"
        " return i && i.complete && i.naturalWidth > 0; })", timeout=30_000)
    cora.screenshot(path=str(screenshots / "cleanup-wipe.png"), full_page=True)

    dana = open_page("dana", "dana-pw")
    dana.goto(f"/requests/{request_id}/")
    wait_for_status(dana, "In review", timeout=15_000)
    pick = dana.locator('.tile[data-index="1"] .pick')
    pick.wait_for(state="visible")
    dana.wait_for_function("() => !document.querySelector('.tile[data-index=\"1\"] .pick').disabled")
    pick.click()
    cora.wait_for_function("() => document.getElementById('pick-line').textContent.includes('Picked: v02')",
                           timeout=10_000)
    with cora.expect_navigation():
        cora.click("#signoff")
    cora.wait_for_function(
        "() => document.getElementById('release-line').textContent.startsWith('Released v001')", timeout=120_000)

    release = Release.objects.get(signoff__variation__request_id=request_id)
    assert release.status == "done", release.error
    folder = Path(release.path_pattern).parent
    assert len(list(folder.glob("*.exr"))) == LAST - FIRST + 1 and (folder / "manifest.sha256").is_file()
    # The released element over the plate: the plate outside the roto matte, bit for bit; the rig gone inside.
    for f in range(FIRST, LAST + 1):
        element = oiio.ImageBuf(frame_path(release.path_pattern, f))
        spec = element.spec()
        e = element.get_pixels(oiio.FLOAT, oiio.ROI(0, spec.full_width, 0, spec.full_height, 0, 1, 0, 4))
        p = frames.read_channels(frame_path(plate, f), ("R", "G", "B"))
        m = frames.read_matte(frame_path(roto_release.path_pattern, f))
        comp = e[..., :3] + p * (1 - e[..., 3:])
        assert np.array_equal(comp[m == 0], p[m == 0])
        solid = m > 0.99
        assert np.abs(comp[solid] - 0.18).mean() > 0.02
