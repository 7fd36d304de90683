"""Coverage and flow flicker, broken on purpose on real footage (DAVIS blackswan's camera move, a real sky)."""

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import camera, qc
from tests.bench.realplates import luma, read_mask, read_rgb
from tests.realdata import testdata as real

N = 6


def _plate(name):
    paths = [real("davis16", name, "frames", f"{k:05d}.jpg") for k in range(N)]
    masks = [real("davis16", name, "masks", f"{k:05d}.png") for k in range(N)]
    return [read_rgb(p)[:260, 100:560] for p in paths], [read_mask(m)[:260, 100:560] for m in masks]


@pytest.fixture(scope="module", params=["blackswan", "car-shadow"])
def shot(request):
    """A real plate, its camera track, a region (top band, minus the moving object) and a real sky
    (Potsdamer Platz HDRI at its own resolution, clouds and all) as the element, at the plate's level."""
    plates, objects = _plate(request.param)
    track = camera.estimate_track([luma(p) for p in plates], objects)
    h, w = plates[0].shape[:2]
    matte = np.zeros((h, w), np.float32)
    matte[20:140, 60:360] = 1.0
    mattes = [matte * (o < 0.5) for o in objects]
    sky = np.asarray(oiio.ImageBuf(str(real("lookdev-skies", "potsdamer_platz_1k.hdr"))).get_pixels(oiio.FLOAT))
    texture = np.ascontiguousarray(sky[40 : 40 + h + 200, 100 : 100 + w + 200, :3], np.float32)
    texture *= luma(plates[0]).mean() / luma(texture).mean()
    return plates, track, mattes, texture


def _element(texture, matrix, shape):
    """The texture as frame-0 content seen through ``matrix`` (a 100 px margin round the frame)."""
    offset = np.array([[1, 0, -100], [0, 1, -100], [0, 0, 1.0]])
    return cv2.warpPerspective(texture, matrix @ offset, (shape[1], shape[0]), flags=cv2.INTER_LINEAR)


def _flicker(shot, element_for, damage=None):
    plates, track, mattes, texture = shot
    meter = qc.FlowFlickerMeter()
    for k, (plate, matte) in enumerate(zip(plates, mattes, strict=True)):
        element = element_for(k, texture, track, plate.shape)
        comp = np.where(matte[..., None] > 0, element, plate)
        if damage is not None:
            comp = damage(k, comp)
        meter.add(luma(comp), luma(plate), matte)
    return meter.ratio()


def _carried(k, texture, track, shape):
    return _element(texture, track.matrices[k], shape)


def test_an_element_carried_with_the_camera_is_as_steady_as_the_plate(shot):
    assert _flicker(shot, _carried) <= qc.FLICKER_LIMIT


def test_a_texture_stuck_to_screen_while_the_plate_moves_raises_flicker(shot):
    assert _flicker(shot, lambda k, texture, track, shape: _element(texture, np.eye(3), shape)) > qc.FLICKER_LIMIT


def test_a_black_hole_growing_into_the_region_raises_flicker(shot):
    def hole(k, comp):
        comp = comp.copy()
        comp[20:140, 60 : 60 + 50 * k] = 0.0  # what sampling outside the card wrote on Beachball
        return comp

    assert _flicker(shot, _carried, hole) > qc.FLICKER_LIMIT


def test_an_element_regenerated_every_frame_raises_flicker(shot):
    rng = np.random.default_rng(7)

    def noisy(k, texture, track, shape):
        grain = 1.0 + 0.1 * rng.standard_normal(shape[:2]).astype(np.float32)
        return _carried(k, texture, track, shape) * grain[..., None]

    assert _flicker(shot, noisy) > qc.FLICKER_LIMIT


def test_coverage_counts_matte_pixels_that_got_generated_content():
    matte = np.zeros((10, 10), np.float32)
    matte[:4] = 1.0
    full = np.ones((10, 10), np.float32)
    holed = full.copy()
    holed[:2, :5] = 0.0  # 10 of the 40 matte pixels
    assert qc.coverage([matte, matte], [full, full]) == 1.0
    assert qc.coverage([matte, matte], [full, holed]) == pytest.approx(70 / 80)
    assert qc.coverage([np.zeros((4, 4))], [np.zeros((4, 4))]) == 1.0  # no matte, nothing missed


def test_coverage_terms_of_a_fully_covered_frame_are_the_mattes_sum_and_a_hole_counts() -> None:
    rng = np.random.default_rng(4)
    matte = rng.random((90, 120), dtype=np.float32)
    covered = np.ones_like(matte)
    want = float(np.asarray(matte, np.float64).sum())
    assert qc.CoverageMeter.terms(matte, covered) == (want, want)
    matte[:10], covered[:10] = 0.0, 0.0  # uncovered where the matte is empty: still the matte's sum
    want = float(np.asarray(matte, np.float64).sum())
    assert qc.CoverageMeter.terms(matte, covered) == (want, want)
    covered[0, 0] = np.nan  # a broken coverage there is not hidden
    assert np.isnan(qc.CoverageMeter.terms(matte, covered)[1])
    covered[0, 0] = 0.0
    covered[40, 50] = 0.25  # one pixel a quarter covered: the covered sum drops by exactly its share
    total, got = qc.CoverageMeter.terms(matte, covered)
    assert total == want and got == pytest.approx(want - 0.75 * float(matte[40, 50]), abs=1e-9) and got < want


def test_a_pairs_warping_error_is_the_plain_formulas_to_the_bit():
    """pair_terms keeps the plate's flow as remap maps and sums in one buffer: the figure the plain expression
    weight × (comp − previous comp moved by the flow)² gives, to the last bit."""
    import cv2

    rng = np.random.default_rng(6)
    yy, xx = np.mgrid[0:90, 0:120].astype(np.float32)
    plates = [np.sin((xx + 2.5 * k) / 7.0) * np.cos(yy / 5.0) * 0.4 + 0.5 for k in range(2)]
    matte = (yy < 60).astype(np.float32)
    meter = qc.FlowFlickerMeter()
    comps = [p + rng.normal(0, 0.05, p.shape).astype(np.float32) for p in plates]
    prev, cur = (meter.prepare(c, p, matte) for c, p in zip(comps, plates, strict=True))
    comp_error, plate_error, total = meter.pair_terms(prev, cur)
    back_maps, weight, total2, plate_error2 = qc._plate_pair(prev[1], prev[2], cur[1], cur[2])
    h, w = weight.shape
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    back = np.stack([back_maps[0] - gx, back_maps[1] - gy], axis=-1)
    moved = cv2.remap(prev[0], gx + back[..., 0], gy + back[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    assert total == total2 > 0 and plate_error == plate_error2
    assert comp_error == float((weight * (cur[0] - moved) ** 2).sum()) > 0
