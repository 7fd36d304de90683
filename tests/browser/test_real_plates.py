"""The review grid on real plates, in headless Chromium: coverage beside flicker on every tile, a variation with
holes flagged and picked only through the confirm (an override the pick event records); and the grid of a sky
request on Sintel and on Beachball, ingested through `manage.py ingest_plate`, kept as docs/review-real-*.png.

Sintel: © Blender Foundation, CC BY 3.0 ("Sintel, Blender Foundation, durian.blender.org"). Beachball: OpenEXR's
sample images (BSD). DAVIS is not used here: its licence keeps it out of the repository's screenshots.
"""

import shutil
import uuid

import pytest
from django.core.management import call_command

from generation import services
from generation.models import GenerationRequest, RequestEvent, Variation
from portal.models import Shot
from review.models import Pick
from tests import realdata
from tests.browser.test_review_loop import wait_caught_up, wait_for_status
from tests.browser.test_review_views import TILES_READY, shots_dir, sky_model  # noqa: F401 - fixtures, see below
from tests.camera_plates import write_plate
from tests.factories import request_with_done_variations

pytestmark = [pytest.mark.browser, pytest.mark.django_db(transaction=True)]

TILE_FIGURES = """() => [...document.querySelectorAll('#grid .tile')].map((t) => ({
  id: t.dataset.variation, flicker: t.querySelector('.flicker').textContent,
  coverage: t.querySelector('.coverage').textContent, flagged: t.querySelector('.coverage').classList.contains('flagged'),
  tileFlagged: t.classList.contains('coverage-flagged')}))"""


def _finished_through_the_service(compositor, shot, show_model, coverages: list[float]) -> GenerationRequest:
    """A request whose variations the worker's own finish call settles, with these coverage figures."""
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=len(coverages))
    GenerationRequest.objects.filter(pk=request.pk).update(status="running")
    Variation.objects.filter(request=request).update(status="running")
    for variation, coverage in zip(request.variations.order_by("index"), coverages, strict=True):
        services.variation_finish(variation=variation, exr_pattern="", proxy_pattern="", compute_seconds=2.0,
                                  flicker_ratio=0.4, element_window={}, coverage=coverage)
    return request


def test_the_tile_shows_coverage_and_a_holed_variation_is_picked_only_through_the_confirm(
    open_page, director, compositor, shot, show_model
):
    request = _finished_through_the_service(compositor, shot, show_model, [0.874, 1.0])
    holed, full = request.variations.order_by("index")
    dana = open_page("dana", "dana-pw")
    dana.goto(f"/requests/{request.pk}/")
    wait_for_status(dana, "In review")
    wait_caught_up(dana, request.pk)
    tiles = {t["id"]: t for t in dana.evaluate(TILE_FIGURES)}
    assert tiles[str(holed.pk)]["coverage"] == "coverage 87.4% ⚠ holes"
    assert tiles[str(holed.pk)]["flagged"] and tiles[str(holed.pk)]["tileFlagged"]
    assert tiles[str(full.pk)]["coverage"] == "coverage 100.0%" and not tiles[str(full.pk)]["flagged"]
    assert tiles[str(holed.pk)]["flicker"].startswith("flicker 0.40")  # beside flicker, on the same tile

    asked = []
    dana.once("dialog", lambda d: (asked.append(d.message), d.dismiss()))
    dana.locator(f'.tile[data-variation="{holed.pk}"] .pick').click()
    dana.wait_for_timeout(500)
    assert asked and "covers only 87.4%" in asked[0] and not Pick.objects.exists()

    dana.once("dialog", lambda d: d.accept())
    dana.locator(f'.tile[data-variation="{holed.pk}"] .pick').click()
    wait_for_status(dana, "Picked", timeout=15_000)
    event = RequestEvent.objects.get(request=request, type="pick.made")
    assert event.payload["override_coverage"] is True and event.payload["variation"] == holed.pk

    dana.locator(f'.tile[data-variation="{full.pk}"] .pick').click()  # full coverage: no confirm, no override
    dana.wait_for_function("() => document.getElementById('pick-history').children.length === 2")
    latest = RequestEvent.objects.filter(request=request, type="pick.made").last()
    assert latest.payload["variation"] == full.pk and "override_coverage" not in latest.payload


# ------------------------------------------------------------------------------------------- real plates


def _beachball(storage) -> str:
    """Beachball's eight EXRs copied as they are (scene-linear, a data window inside the display window) into
    a plate root: ingest keeps plates inside the roots."""
    source = realdata.testdata("openexr-images", "Beachball")
    folder = storage / "plates" / f"beachball-{uuid.uuid4().hex[:8]}"
    folder.mkdir(parents=True)
    for path in sorted(source.glob("singlepart.*.exr")):
        shutil.copy(path, folder / path.name)
    return str(folder / "singlepart.####.exr")


def _sintel(storage) -> str:
    """Sintel's PNGs converted through OCIO, sRGB → ACEScg, as half EXRs from frame 1001."""
    return write_plate(storage / "plates" / f"sintel-{uuid.uuid4().hex[:8]}", frames=6, colourspace="ACEScg")


PLATES = {
    # name: (staging, shot code, a drawn region "x y width height" in display-window pixels)
    "sintel": (_sintel, "sn020", "20 0 320 100"),  # the wall above the crates, left of her hair
    "beachball": (_beachball, "bb010", "60 120 520 360"),  # the bench's static region the ball never crosses
}


@pytest.mark.parametrize("name", sorted(PLATES))
def test_the_review_grid_on_a_real_plate(name, request, open_page, compositor, show, storage, capsys):
    # The review views' fixtures (the demo sky model, the screenshot folder), by name: they are imported above.
    model, folder = request.getfixturevalue("sky_model"), request.getfixturevalue("shots_dir")
    stage, code, rect = PLATES[name]
    call_command("ingest_plate", stage(storage), show=show.code, sequence="real", shot=code)
    shot = Shot.objects.get(sequence__show=show, code=code)
    cora = open_page("cora", "cora-pw")
    cora.goto(f"/shots/{shot.pk}/")
    form = cora.locator("#new-request")
    form.locator("select[name=model]").select_option(str(model.pk))
    form.locator("input[name=count]").fill("4")
    form.locator("input[name=steps]").fill("6")
    form.locator("input[name=rect]").fill(rect)
    form.locator("input[name=prompt]").fill("clear evening sky")
    form.locator("input[name=base_seed]").fill("7")  # the same skies in every run of the screenshot
    with cora.expect_navigation(url="**/requests/*/"):
        form.locator("button[type=submit]").click()
    request_id = int(cora.url.rstrip("/").rsplit("/", 1)[1])
    wait_for_status(cora, "In review", timeout=600_000)
    wait_caught_up(cora, request_id)
    cora.wait_for_function(TILES_READY)
    cora.evaluate("() => window.ptReview.showFrame(window.ptReview.last)")  # the last frame: the most motion
    cora.wait_for_function(TILES_READY)

    variations = {str(v.pk): v for v in Variation.objects.filter(request_id=request_id)}
    assert all(v.status == "done" for v in variations.values()), [v.error for v in variations.values()]
    for tile in cora.evaluate(TILE_FIGURES):
        stored = variations[tile["id"]]
        assert tile["coverage"].startswith("coverage ") and tile["flagged"] == stored.coverage_flagged, tile
        assert tile["flicker"].startswith(f"flicker {stored.flicker_ratio:.2f}"), tile
    grid = cora.locator("#grid").bounding_box()
    cora.screenshot(path=str(folder / f"review-real-{name}.png"),
                    clip={"x": 0, "y": 0, "width": 1280, "height": grid["y"] + grid["height"] + 16})
    with capsys.disabled():
        print(f"\n{name}: coverage {[round(v.coverage, 6) for v in variations.values()]}, "
              f"flicker {[round(v.flicker_ratio, 3) for v in variations.values()]}")
