"""Roto in headless Chromium, on real footage: a compositor draws key frames on two frames of a real sequence
(polygons traced on the swan, brush and erase), asks for roto, sees the mattes stream in over
the plate, fixes one frame, gets the second pass (only the frames that depend on the fix computed again), signs
it off in the review room (overlay / matte / outline) and finds the release on disk with who drew each key frame.

DAVIS (CC BY-NC) is used here for testing only and never appears in a committed image; the README's screenshot
is made by the last test on Sintel (© Blender Foundation, CC BY 3.0, "Sintel, Blender Foundation,
durian.blender.org").
"""

import os
import re
import shutil
import subprocess
import uuid
from pathlib import Path

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RotoPass, RotoSet
from portal.services import plate_ingest
from review.models import Release
from tests.camera_plates import write_plate
from tests.conftest import OIIOTOOL
from tests.realdata import REPO
from tests.realdata import testdata as real_footage

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

FIRST, LAST = 1001, 1010
CROP = (slice(30, 430), slice(80, 600))  # 520 x 400 around the swan, with a margin of water
W, H = 520, 400
KEYS = (1001, 1006)
FIX = 1003

# Polled in the page every 20 ms: a moment where some of the pass's mattes are on screen and others not yet
# computed is proof they stream in (a pass that only showed once finished would never record one).
STREAM_WATCH = """() => {
  window.__partial = null;
  window.__watch = setInterval(() => {
    const r = window.ptRoto, p = r.server && r.server.passes[r.server.passes.length - 1];
    if (!p) return;
    const done = (r.computed.get(p.number) || new Set()).size, total = p.last - p.first + 1;
    const img = document.getElementById("pass-img");
    if (!window.__partial && done > 0 && done < total && !img.hidden && img.complete && img.naturalWidth > 0)
      window.__partial = {pass: p.number, done, total, src: img.getAttribute("src")};
  }, 20);
}"""


def _read8(path) -> np.ndarray:
    return oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)


def _truth(index: int) -> np.ndarray:
    masks = real_footage("davis16", "blackswan", "masks")
    return _read8(masks / f"{index:05d}.png")[CROP][..., 0] > 127


@pytest.fixture
def swan(show, storage):
    """Ten frames of DAVIS blackswan (a crop) as a scene-linear EXR plate, ingested as a shot."""
    folder = real_footage("davis16", "blackswan", "frames")
    root = storage / "plates" / f"swan-{uuid.uuid4().hex[:8]}"
    root.mkdir(parents=True)
    pattern = str(root / "swan.####.exr")
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rgb = (_read8(folder / f"{i:05d}.jpg")[CROP].astype(np.float32) / 255) ** 2.2
        frames.write_exr(frame_path(pattern, f), rgb, display_window=Window(0, 0, W, H), channel_names="RGB")
    return plate_ingest(show=show, sequence_code="sq030", shot_code="swan", pattern=pattern).shot


# ----------------------------------------------------------------------------------------------- the drawing


def _to_page(page, x: float, y: float) -> tuple[float, float]:
    box = page.locator("#draw-layer").bounding_box()
    width, height = (int(v) for v in page.evaluate("() => [document.getElementById('roto').dataset.width, "
                                                    "document.getElementById('roto').dataset.height]"))
    return box["x"] + x * box["width"] / width, box["y"] + y * box["height"] / height


def _outline(mask: np.ndarray, epsilon: float = 1.0) -> list[tuple[float, float]]:
    """The points an artist would click around the object: its outer contour, simplified."""
    contours, _ = cv2.findContours(mask.astype(np.uint8), cv2.RETR_EXTERNAL, cv2.CHAIN_APPROX_NONE)
    largest = max(contours, key=cv2.contourArea)
    return [(float(x), float(y)) for x, y in cv2.approxPolyDP(largest, epsilon, True)[:, 0]]


def go_to_frame(page, frame: int) -> None:
    page.locator(f'#timeline span[data-frame="{frame}"]').click()
    page.wait_for_function("(f) => window.ptRoto.frame === f", arg=frame)


def choose_tool(page, tool: str) -> None:
    page.locator(f'.tool[data-tool="{tool}"]').click()


def draw_polygon(page, points) -> None:
    choose_tool(page, "polygon")
    for x, y in points:
        page.mouse.click(*_to_page(page, x, y))
    page.keyboard.press("Enter")  # closes the shape


def drag(page, start, end) -> None:
    page.mouse.move(*_to_page(page, *start))
    page.mouse.down()
    page.mouse.move(*_to_page(page, *end), steps=8)
    page.mouse.up()


def save_key(page, frame: int) -> None:
    page.locator("#save-key").click()
    page.wait_for_function(
        "(f) => { const m = document.getElementById('roto-message');"
        " return m.textContent === `key frame ${f} saved` || m.classList.contains('error'); }", arg=frame,
        timeout=30_000)
    said = page.locator("#roto-message").inner_text()
    assert said == f"key frame {frame} saved", said


def ask_and_watch(page, number: int) -> dict:
    """Ask for the next pass and wait until it is in review; returns the moment it was caught half-way."""
    page.evaluate(STREAM_WATCH)
    page.locator("#ask").click()
    page.wait_for_function(
        "(n) => { const li = document.querySelector(`#pass-list li[data-pass='${n}']`);"
        " return li && li.dataset.status === 'review'; }", arg=number, timeout=240_000)
    return page.evaluate("() => { clearInterval(window.__watch); return window.__partial; }")


def roto_shapes(frame: int) -> list[str]:
    """The tools of the shapes the server received for the newest key frame at ``frame``."""
    from generation.models import RotoKeyFrame

    return [s["tool"] for s in RotoKeyFrame.objects.filter(frame=frame).latest("pk").shapes]


def _iou(matte: np.ndarray, truth: np.ndarray) -> float:
    found = matte >= 0.5
    return float((found & truth).sum() / (found | truth).sum())


def _mattes(request: GenerationRequest) -> dict[int, np.ndarray]:
    pattern = request.variations.get().exr_pattern
    return {f: frames.read_matte(frame_path(pattern, f)) for f in range(FIRST, LAST + 1)}


# -------------------------------------------------------------------------------------------------- the test


def test_a_compositor_draws_key_frames_asks_for_roto_fixes_a_frame_and_releases_it(
        open_page, compositor, swan, screenshots):
    cora = open_page("cora", "cora-pw")
    cora.goto(f"/shots/{swan.pk}/")
    cora.click("#roto-link")
    with cora.expect_navigation(url="**/roto/r01/"):
        cora.click("#roto-new")
    cora.wait_for_function("() => window.ptRoto && window.ptRoto.server !== null")

    # Key frame 1001: a polygon traced around the swan, feathered 2 px; a brush dab and an erase on top.
    cora.locator("#feather").fill("2")
    draw_polygon(cora, _outline(_truth(0)))
    inside = cv2.distanceTransform(_truth(0).astype(np.uint8), cv2.DIST_L2, 5)
    y, x = np.unravel_index(int(inside.argmax()), inside.shape)  # the swan's thickest point
    cora.locator("#radius").fill("4")
    choose_tool(cora, "brush")
    drag(cora, (x - 3, y), (x + 3, y))
    choose_tool(cora, "erase")
    drag(cora, (5, 5), (40, 10))  # a corner far from the swan: erasing nothing drawn there
    save_key(cora, KEYS[0])
    assert roto_shapes(KEYS[0]) == ["polygon", "brush", "erase"]
    # Key frame 1006: another traced polygon, unfeathered. (A box alone is no key frame for this swan: GrabCut
    # takes in the bank and the water inside the box, IoU 0.44; the box is for objects that stand out, below.)
    go_to_frame(cora, KEYS[1])
    truth = _truth(KEYS[1] - FIRST)
    cora.locator("#feather").fill("0")
    draw_polygon(cora, _outline(truth))
    save_key(cora, KEYS[1])
    cora.locator("#draw-layer").screenshot(path=str(screenshots / "roto-1-key.png"))
    roto = RotoSet.objects.get(shot=swan)
    assert roto_shapes(KEYS[1]) == ["polygon"]
    keys = {row.frame: row for row in roto.keyframes.all()}
    assert sorted(keys) == list(KEYS) and {row.drawn_by.username for row in keys.values()} == {"cora"}
    polygon_iou = _iou(frames.read_matte(keys[KEYS[0]].path), _truth(0))
    second_iou = _iou(frames.read_matte(keys[KEYS[1]].path), truth)
    assert min(polygon_iou, second_iou) > 0.95, f"a traced polygon lands off the swan: {polygon_iou:.3f} {second_iou:.3f}"
    assert cora.locator("#key-list li").count() == 2 and "drawn by cora" in cora.locator("#key-list").inner_text()

    # Ask for roto on the first frame's view: the pass's mattes land over the plate while it computes.
    go_to_frame(cora, FIRST)
    partial = ask_and_watch(cora, 1)
    assert partial and partial["pass"] == 1 and "/media/variations/" in partial["src"], partial
    cora.locator("#stage").screenshot(path=str(screenshots / "roto-2-pass1.png"))
    first = RotoPass.objects.get(roto_set=roto, number=1).request
    one = _mattes(first)
    assert {f: round(_iou(one[f], _truth(f - FIRST)), 3) for f in one}  # every frame has a matte

    # Fix frame 1003: a traced polygon; the second pass recomputes only 1002..1005, keeps 1007..1010.
    go_to_frame(cora, FIX)
    draw_polygon(cora, _outline(_truth(FIX - FIRST)))
    save_key(cora, FIX)
    assert "locked" in cora.locator("#frame-state").inner_text()
    partial = ask_and_watch(cora, 2)
    assert cora.locator("#pass-list li").count() == 2
    second = RotoPass.objects.get(roto_set=roto, number=2)
    assert second.recomputed == [1002, 1004, 1005] and second.locked == [1007, 1008, 1009, 1010]
    history = cora.locator("#pass-list").inner_text()
    assert "Pass 2" in history and "3 frame(s) computed, 4 kept from pass 1" in history and "Pass 1" in history
    two = _mattes(second.request)
    for f in (1001, 1006, 1007, 1008, 1009, 1010):
        assert np.array_equal(two[f], one[f]), f"frame {f} changed though it does not depend on the fix"
    assert _iou(two[FIX], _truth(FIX - FIRST)) > 0.9
    cora.locator("#stage").screenshot(path=str(screenshots / "roto-3-pass2.png"))

    # Lock a frame the artist is happy with, then unlock it again (the next pass would compute it once more).
    go_to_frame(cora, 1008)
    cora.locator("#lock").click()
    cora.wait_for_function("() => window.ptRoto.server.locked.includes(1008)")
    assert "locked" in cora.locator("#frame-state").inner_text()
    assert RotoSet.objects.get(pk=roto.pk).locked == [FIX, 1008]
    cora.locator("#unlock").click()
    cora.wait_for_function("() => !window.ptRoto.server.locked.includes(1008)")
    assert RotoSet.objects.get(pk=roto.pk).locked == [FIX]

    # The review room: overlay, matte alone, outline; then the compositor signs it off (no pick) and releases.
    with cora.expect_navigation(url=f"**/requests/{second.request_id}/"):
        cora.locator("#pass-list li[data-pass='2'] a").click()
    assert "pass 2" in cora.locator("#roto-pass-line").inner_text()
    cora.wait_for_function("() => document.querySelector('#grid .tile img:not([hidden])')")
    cora.keyboard.press("s")  # the single large view; the toggles work on the grid's tiles too
    for layer, kind in (("matte", "kind=matte"), ("outline", "kind=outline"), ("incontext", "")):
        cora.locator(f'.matte-toggle[data-layer="{layer}"]').click()
        cora.wait_for_function(
            "(k) => { const i = document.getElementById('img-a');"
            " return !i.hidden && i.complete && i.naturalWidth > 0 && (k ? i.src.includes(k) : !i.src.includes('kind=')); }",
            arg=kind, timeout=30_000)
        cora.locator("#large-box").screenshot(path=str(screenshots / f"roto-4-review-{layer}.png"))
    with cora.expect_navigation():
        cora.click("#signoff")
    cora.wait_for_function(
        "() => document.getElementById('release-line').textContent.startsWith('Released v001')", timeout=60_000)

    release = Release.objects.get(signoff__variation__request=second.request)
    assert release.status == "done" and release.version == 1, release.error
    folder = Path(release.path_pattern).parent
    assert len(list(folder.glob("*.exr"))) == LAST - FIRST + 1 and (folder / "manifest.sha256").is_file()
    info = subprocess.run([OIIOTOOL, "--info", "-v", frame_path(release.path_pattern, FIX)], capture_output=True,
                          text=True, check=True).stdout
    assert re.search(rf"{W} x\s+{H}, 1 channel, half openexr", info) and "channel list: A\n" in info
    assert 'parallel_track:roto_pass: "2"' in info and 'parallel_track:signed_off_by: "cora"' in info
    assert re.search(r'parallel_track:roto_keyframes_drawn: "1001 by cora at \S+; 1003 by cora at \S+; '
                     r'1006 by cora at \S+"', info), info


# ----------------------------------------------------------------------------------- the README's screenshot

SINTEL_HAIR = {1001: (345, 60, 240, 280), 1010: (360, 58, 255, 262)}  # boxes around her hair and head


def test_the_readme_screenshot_of_a_roto_overlay_on_sintel(open_page, compositor, show, storage, screenshots):
    """A box on the first and last frame of Sintel around her head, GrabCut, one pass, the review room's overlay
    and outline: docs/roto-overlay.png (kept when PT_WRITE_DOCS=1)."""
    pattern = write_plate(storage / "plates" / f"sintel-{uuid.uuid4().hex[:8]}", frames=10, colourspace="ACEScg")
    shot = plate_ingest(show=show, sequence_code="real", shot_code="sn030", pattern=pattern).shot
    cora = open_page("cora", "cora-pw")
    cora.goto(f"/shots/{shot.pk}/roto/")
    with cora.expect_navigation(url="**/roto/r01/"):
        cora.click("#roto-new")
    cora.wait_for_function("() => window.ptRoto && window.ptRoto.server !== null")
    for frame, (x, y, w, h) in SINTEL_HAIR.items():
        go_to_frame(cora, frame)
        choose_tool(cora, "box")
        drag(cora, (x, y), (x + w, y + h))
        save_key(cora, frame)
    cora.locator(".roto-main").screenshot(path=str(screenshots / "roto-sintel-key.png"))
    go_to_frame(cora, 1005)
    ask_and_watch(cora, 1)
    cora.locator(".roto-layout").screenshot(path=str(screenshots / "roto-sintel-page.png"))
    request = RotoPass.objects.get(roto_set__shot=shot, number=1).request
    cora.goto(f"/requests/{request.pk}/")
    cora.wait_for_function("() => document.querySelector('#grid .tile img:not([hidden])')")
    cora.keyboard.press("s")
    shots = {}
    for layer in ("incontext", "matte", "outline"):
        cora.locator(f'.matte-toggle[data-layer="{layer}"]').click()
        cora.evaluate("() => window.ptReview.showFrame(1005)")
        cora.wait_for_function(
            "() => { const i = document.getElementById('img-a'); return !i.hidden && i.complete && i.naturalWidth > 0"
            " && i.dataset.frame === '1005'; }", timeout=30_000)
        shots[layer] = screenshots / f"roto-sintel-{layer}.png"
        cora.locator("#large-box").screenshot(path=str(shots[layer]))
    if os.environ.get("PT_WRITE_DOCS") == "1":
        for layer, name in (("incontext", "roto-overlay.png"), ("outline", "roto-outline.png")):
            shutil.copy(shots[layer], REPO / "docs" / name)
        shutil.copy(screenshots / "roto-sintel-page.png", REPO / "docs" / "roto-page.png")
