"""The review room's viewer in headless Chromium: grid, in context, wipe and single views on the synced frame,
display/view switching, notes with drawn shapes seen by a second viewer, pick history, iterate from here."""

import os
import shutil
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine.registry import read_model_card
from generation.models import GenerationModel, GenerationRequest, Variation
from review.models import Note
from tests.browser.conftest import REPO
from tests.browser.test_review_loop import ask_for_variations, wait_caught_up, wait_for_status

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

P3 = "display-p3-display--aces-1-0-sdr-video"
UNTONEMAPPED = "srgb-display--un-tone-mapped"
IMAGES_READY = """(ids) => ids.every((id) => { const i = document.getElementById(id);
  return i && !i.hidden && i.complete && i.naturalWidth > 0; })"""
TILES_READY = """() => [...document.querySelectorAll('#grid .tile img')]
  .every((i) => !i.hidden && i.complete && i.naturalWidth > 0)"""


DEMO_SKY = REPO / "deploy" / "demo-model" / "demo-sky"


@pytest.fixture
def sky_model(request, show, storage):
    """The trained demo sky model when the checkout has it (screenshots with skies), else the tiny test model."""
    if not (DEMO_SKY / "parallel_track.json").is_file():
        return request.getfixturevalue("show_model")
    target = storage / "models" / "demo-sky"
    if not target.is_dir():
        shutil.copytree(DEMO_SKY, target)
    card = read_model_card(str(target))
    model = GenerationModel.objects.create(name=card.name, kind="show_model", path=card.path, status="approved",
                                           manifest_hash=card.manifest_hash)
    model.approved_shows.add(show)
    return model


@pytest.fixture
def shots_dir(screenshots) -> Path:
    folder = Path(os.environ.get("PT_SCREENSHOT_DIR") or screenshots)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def decoded(page, src: str, tmp_path: Path) -> np.ndarray:
    response = page.request.get(src)
    assert response.ok and response.headers["content-type"] == "image/jpeg", src
    path = tmp_path / f"{abs(hash(src))}.jpg"
    path.write_bytes(response.body())
    return np.asarray(oiio.ImageBuf(str(path)).get_pixels(oiio.FLOAT)) * 255.0


def ready_request(page, shot, *, count: int, steps: int) -> tuple[int, list[Variation]]:
    request_id = ask_for_variations(page, shot, count=count, steps=steps)
    wait_for_status(page, "In review")
    page.wait_for_function(TILES_READY)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # keys go to the page
    return request_id, list(Variation.objects.filter(request_id=request_id).order_by("index"))


def src(page, element_id: str) -> str:
    return page.locator(f"#{element_id}").get_attribute("src") or ""


def test_every_view_mode_stays_on_the_frame_the_wipe_drags_and_display_view_switches(
    open_page, compositor, shot, sky_model, shots_dir, tmp_path
):
    cora = open_page("cora", "cora-pw")
    request_id, (v1, v2, *_) = ready_request(cora, shot, count=4, steps=8)
    cora.keyboard.press("ArrowRight")
    cora.keyboard.press("ArrowRight")
    assert cora.locator("#frame-number").inner_text() == "1003"
    cora.wait_for_function(TILES_READY)
    cora.screenshot(path=str(shots_dir / "review-grid.png"))

    # In context: the selected variation over its plate, on the same frame; x flips to the plate.
    cora.keyboard.press("c")
    assert cora.locator("#grid").is_hidden() and cora.locator("#large").is_visible()
    cora.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
    assert src(cora, "img-a") == f"/media/variations/{v1.pk}/proxy/1003.jpg"
    assert src(cora, "img-b") == f"/media/requests/{request_id}/plate/1003.jpg"
    box = cora.locator("#large-box").bounding_box()
    cora.keyboard.press("d")  # a freehand stroke along the horizon, with a note
    cora.mouse.move(box["x"] + box["width"] * 0.15, box["y"] + box["height"] * 0.45)
    cora.mouse.down()
    for k in range(1, 9):
        cora.mouse.move(box["x"] + box["width"] * (0.15 + 0.07 * k), box["y"] + box["height"] * (0.45 - 0.02 * (k % 2)))
    cora.mouse.up()
    cora.fill("#note-text", "horizon glow too strong behind the towers")
    cora.click("#note-add")
    cora.wait_for_function("() => document.querySelectorAll('#overlay polyline.note-shape:not(.pending)').length === 1")
    cora.evaluate("() => document.activeElement && document.activeElement.blur()")
    stroke = Variation.objects.get(pk=v1.pk).notes.get().shape
    assert stroke["kind"] == "stroke" and len(stroke["points"]) >= 9 and all(0 <= x <= 320 for x, _ in stroke["points"])
    cora.screenshot(path=str(shots_dir / "review-incontext.png"))
    cora.keyboard.press("x")
    assert cora.locator("#img-a").evaluate("(i) => getComputedStyle(i).opacity") == "0"
    cora.keyboard.press("x")
    cora.keyboard.press("ArrowRight")
    cora.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
    assert src(cora, "img-a").endswith("/1004.jpg") and src(cora, "img-b").endswith("/1004.jpg")

    # Wipe: A is the selected variation, B the plate; drag the wipe, then compare two variations.
    cora.keyboard.press("w")
    assert cora.locator("#wipe-handle").is_visible()
    cora.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    cora.mouse.down()
    cora.mouse.move(box["x"] + box["width"] * 0.3, box["y"] + box["height"] * 0.6, steps=5)
    cora.mouse.up()
    wipe = cora.evaluate("() => window.ptViewer.wipe")
    assert abs(wipe - 0.3) < 0.01
    assert cora.locator("#img-a").evaluate("(i) => i.style.clipPath").startswith("inset(0px 70")
    handle = cora.locator("#wipe-handle").bounding_box()
    assert abs(handle["x"] + handle["width"] / 2 - (box["x"] + box["width"] * 0.3)) < 3
    cora.select_option("#wipe-b", str(v2.pk))
    cora.evaluate("() => document.activeElement && document.activeElement.blur()")
    cora.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
    assert src(cora, "img-b") == f"/media/variations/{v2.pk}/proxy/1004.jpg"
    assert cora.locator("#label-a").inner_text() == "A v01" and cora.locator("#label-b").inner_text() == "B v02"
    cora.mouse.click(box["x"] + box["width"] * 0.55, box["y"] + box["height"] * 0.5)
    cora.select_option("#wipe-b", "plate")
    cora.evaluate("() => document.activeElement && document.activeElement.blur()")
    cora.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"])
    cora.screenshot(path=str(shots_dir / "review-wipe.png"))

    # Single: the selected tile large, in the chosen layer; number keys change the tile.
    cora.keyboard.press("s")
    cora.keyboard.press("2")
    cora.wait_for_function(IMAGES_READY, arg=["img-a"])
    assert src(cora, "img-a") == f"/media/variations/{v2.pk}/proxy/1004.jpg" and cora.locator("#img-b").is_hidden()
    cora.select_option("#layer", "element")
    assert src(cora, "img-a") == f"/media/variations/{v2.pk}/proxy/1004.jpg?kind=element"

    # Display/view: every image is rendered again by the server through OCIO; pixels differ from sRGB.
    cora.select_option("#layer", "incontext")
    cora.keyboard.press("g")
    srgb_src = cora.locator('#grid .tile[data-index="0"] img').get_attribute("src")
    cora.select_option("#display-view", P3)
    cora.wait_for_function(TILES_READY, timeout=30_000)
    p3_src = cora.locator('#grid .tile[data-index="0"] img').get_attribute("src")
    assert p3_src != srgb_src and urlsplit(p3_src).path == urlsplit(srgb_src).path
    assert parse_qs(urlsplit(p3_src).query) == {"display": ["Display P3 - Display"],
                                                 "view": ["ACES 1.0 - SDR Video"]}
    srgb, p3 = decoded(cora, srgb_src, tmp_path), decoded(cora, p3_src, tmp_path)
    assert srgb.shape == p3.shape and np.abs(srgb - p3).mean() > 0.5  # same tone scale, other primaries
    cora.select_option("#display-view", UNTONEMAPPED)
    cora.wait_for_function(TILES_READY, timeout=30_000)
    raw = decoded(cora, cora.locator('#grid .tile[data-index="0"] img').get_attribute("src"), tmp_path)
    assert np.abs(srgb - raw).mean() > 3
    cora.select_option("#display-view", P3)
    cora.keyboard.press("c")
    cora.wait_for_function(IMAGES_READY, arg=["img-a", "img-b"], timeout=30_000)
    assert "display=Display+P3" in src(cora, "img-b") and "display=Display+P3" in src(cora, "img-a")


def test_a_drawn_note_pick_history_and_iterate_from_here_reach_every_viewer(
    open_page, compositor, director, shot, show_model, shots_dir
):
    cora = open_page("cora", "cora-pw")
    request_id, (v1, v2) = ready_request(cora, shot, count=2, steps=1)
    dana = open_page("dana", "dana-pw")
    dana.goto(f"/requests/{request_id}/")
    wait_for_status(dana, "In review", timeout=15_000)
    dana.wait_for_function(TILES_READY)

    # dana draws a box on v02 in context at frame 1002 and writes a note.
    dana.keyboard.press("ArrowRight")
    dana.keyboard.press("2")
    dana.keyboard.press("c")
    dana.click('.tool[data-tool="rect"]')
    box = dana.locator("#large-box").bounding_box()
    dana.mouse.move(box["x"] + box["width"] * 0.1, box["y"] + box["height"] * 0.1)
    dana.mouse.down()
    dana.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.4, steps=6)
    dana.mouse.up()
    dana.fill("#note-text", "clouds too busy in here")
    dana.click("#note-add")

    # cora sees it arrive: counted on the tile, listed under v02, the box drawn over frame 1002 when chosen.
    cora.wait_for_function("() => document.querySelector('.tile[data-index=\"1\"] .note-count').textContent === '✎ 1'")
    note = Note.objects.get()
    assert note.variation_id == v2.pk and note.frame == 1002 and note.author.username == "dana"
    assert note.shape["kind"] == "rect"
    assert abs(note.shape["x"] - 32) < 2 and abs(note.shape["width"] - 128) < 2 and abs(note.shape["height"] - 54) < 2
    cora.keyboard.press("2")
    cora.keyboard.press("c")
    cora.click("#notes li")
    assert cora.locator("#frame-number").inner_text() == "1002"
    drawn = cora.locator("#overlay rect.note-shape.chosen")
    assert drawn.count() == 1
    assert abs(float(drawn.get_attribute("x")) - note.shape["x"]) < 0.01
    assert cora.locator("#notes li").inner_text().startswith("1002 ✎ dana clouds too busy")
    cora.screenshot(path=str(shots_dir / "review-note-seen.png"))
    cora.keyboard.press("ArrowRight")
    assert cora.locator("#overlay rect").count() == 0, "a note's shape stays on its own frame"

    # Pick history: a pick, a change of pick and a reject-all, live on the other page, oldest first.
    dana.keyboard.press("g")
    dana.click('.tile[data-index="0"] .pick')
    dana.wait_for_function("() => document.querySelectorAll('#pick-history li').length === 1")
    dana.click('.tile[data-index="1"] .pick')
    dana.wait_for_function("() => document.querySelectorAll('#pick-history li').length === 2")
    dana.fill("form[action$='reject-all'] input[name=note]", "none of them sits in the shot")
    with dana.expect_navigation():
        dana.click("form[action$='reject-all'] button")
    cora.wait_for_function("() => document.querySelectorAll('#pick-history li').length === 3")
    history = cora.locator("#pick-history li").all_inner_texts()
    assert history[0].startswith("v01 picked by dana ")
    assert history[1].startswith("changed to v02 picked by dana ")
    assert history[2].startswith("all rejected by dana: “none of them sits in the shot”")
    dana.wait_for_function("() => document.querySelectorAll('#pick-history li').length === 3")
    assert dana.locator("#pick-history li").all_inner_texts() == history, "a reloaded page rebuilds the history"
    cora.locator(".decision").screenshot(path=str(shots_dir / "review-pick-history.png"))

    # Iterate from here: a box drawn on v02 becomes the new request's region.
    cora.keyboard.press("c")
    cora.keyboard.press("r")
    cora.locator("#large-box").scroll_into_view_if_needed()
    box = cora.locator("#large-box").bounding_box()
    cora.mouse.move(box["x"] + box["width"] * 0.25, box["y"] + 2)
    cora.mouse.down()
    cora.mouse.move(box["x"] + box["width"] * 0.75, box["y"] + box["height"] * 0.5, steps=4)
    cora.mouse.up()
    assert cora.locator("#iterate").inner_text().startswith("Iterate in this box")
    with cora.expect_navigation(url="**/shots/*/**"):
        cora.click("#iterate")
    form = cora.locator("#new-request")
    assert form.locator("input[name=derived_from]").input_value() == str(v2.pk)
    x, y, w, h = map(int, form.locator("input[name=rect]").input_value().split())
    assert abs(x - 80) <= 2 and y <= 2 and abs(w - 160) <= 3 and abs(h - 90) <= 3
    assert form.locator("input[name=base_seed]").input_value() == str(v2.seed)
    form.locator("input[name=count]").fill("1")
    with cora.expect_navigation(url="**/requests/*/"):
        form.locator("button[type=submit]").click()
    new = GenerationRequest.objects.exclude(pk=request_id).get()
    assert new.derived_from_id == v2.pk and new.rect == [x, y, w, h]
    assert f"Iterates from request {request_id} · v02" in cora.locator("#lineage").inner_text()
    dana.wait_for_function("(n) => document.querySelector(`#iterations a[data-request='${n}']`)", arg=new.pk)
    assert f"Iterations: request {new.pk} from v02 by cora" in dana.locator("#lineage").inner_text(), "live"
    wait_for_status(cora, "In review")
    cora.goto(f"/requests/{request_id}/")
    wait_caught_up(cora, request_id)
    assert cora.locator("#iterations .iteration").count() == 1, "the replayed event does not repeat it"
    assert f"request {new.pk} from v02 by cora" in cora.locator("#lineage").inner_text()
