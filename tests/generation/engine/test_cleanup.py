"""The cleanup engine: the plate outside the matte untouched, what another frame reveals taken from it, the
never-revealed part generated once and carried, determinism, bad input refused; on a real plate too."""

import numpy as np
import pytest

from generation.engine.cleanup import (
    OFFSETS,
    CleanupError,
    CleanupOptions,
    CleanupShot,
    fill_smooth,
    flicker_ratio,
    poisson_blend,
    telea,
)
from tests.bench.cleanup import hole_plate, score, shared_sequences

H, W, N = 96, 160, 8
PAN = 3  # px per frame


def _texture(h, w, seed=1):
    rng = np.random.default_rng(seed)
    small = rng.random((h // 4 + 2, w // 4 + 2, 3)).astype(np.float32)
    import cv2

    return cv2.resize(small, (w // 4 * 4 + 8, h // 4 * 4 + 8), interpolation=cv2.INTER_CUBIC)[:h, :w] * 0.8 + 0.1


def _pan_with_box(box_w=24, box_speed=6):
    """A textured background panned PAN px per frame (integer, so the truth is exact), a box moving across it
    faster than the pan (so what it hides is seen in other frames), and the box's matte."""
    world = _texture(H, W + PAN * N + 8)
    originals, plates, mattes = [], [], []
    for k in range(N):
        bg = world[:, PAN * k : PAN * k + W].copy()
        matte = np.zeros((H, W), np.float32)
        x = 20 + box_speed * k
        matte[30:70, x : x + box_w] = 1.0
        plate = bg.copy()
        plate[matte > 0] = np.array([1.0, 0.0, 1.0], np.float32)  # the object to remove: a magenta box
        originals.append(bg)
        plates.append(plate)
        mattes.append(matte)
    return originals, plates, mattes


def test_outside_the_matte_is_the_plate_bit_for_bit():
    _, plates, mattes = _pan_with_box()
    result = CleanupShot(plates, mattes).fill()
    for f, p, m in zip(result.frames, plates, mattes, strict=True):
        assert np.array_equal(f[m == 0], p[m == 0])


def _hole_errors(frames, originals, mattes):
    return np.concatenate([np.abs(f[m > 0] - o[m > 0]).ravel() for f, o, m in zip(frames, originals, mattes,
                                                                                    strict=True)])


@pytest.mark.parametrize("poisson", [False, True])
def test_a_revealed_background_is_taken_from_the_frame_that_shows_it(poisson):
    """Every frame's hidden pixels, taken from the frames that show them, are the truth within half precision:
    no error beyond half's step just below 1 (2^-11, the texture's top), and on average no more than rounding
    the truth to half costs. The camera's motion (a homography refitted to the flow it explains) carries them
    exactly; DIS alone, dragged round the box by its pyramid, is off by a tenth of a pixel there."""
    originals, plates, mattes = _pan_with_box()
    result = CleanupShot(plates, mattes, CleanupOptions(poisson=poisson)).fill()
    assert result.revealed > 0.95
    truth = np.concatenate([o[m > 0].ravel() for o, m in zip(originals, mattes, strict=True)])
    rounding = np.abs(truth - truth.astype(np.float16)).mean()  # what storing the truth in half costs
    err = _hole_errors(result.frames, originals, mattes)
    assert err.max() < np.spacing(np.float16(0.99)) and err.mean() < rounding


def test_the_pan_misses_half_precision_with_the_flow_trusted_round_the_box():
    """The same pan with the forward-backward check off (DIS's flow trusted outside the grown hole) and the
    second, looser flow off (it is chosen only where its sources agree better, which hides what the check does):
    the bound above breaks, so the test above measures what the check does."""
    originals, plates, mattes = _pan_with_box()
    result = CleanupShot(plates, mattes, CleanupOptions(consistency=0.0, second_flow=False)).fill()
    assert _hole_errors(result.frames, originals, mattes).max() > 4 * np.spacing(np.float16(0.99))


def _pan_with_a_car_under_the_box(car_speed=-2, box_speed=6):
    """The pan with a textured "car" moving across it against the camera (its own motion, not the camera's)
    and the box moving over the car: what the box hides is mostly car, seen in other frames."""
    world = _texture(H, W + PAN * N + 8)
    car = _texture(40, 90, seed=7) * 0.5 + 0.4
    originals, plates, mattes = [], [], []
    for k in range(N):
        bg = world[:, PAN * k : PAN * k + W].copy()
        bg[36:76, 40 + car_speed * k : 130 + car_speed * k] = car
        matte = np.zeros((H, W), np.float32)
        matte[40:70, 30 + box_speed * k : 50 + box_speed * k] = 1.0
        plate = bg.copy()
        plate[matte > 0] = np.array([1.0, 0.0, 1.0], np.float32)
        originals.append(bg)
        plates.append(plate)
        mattes.append(matte)
    return originals, plates, mattes


def test_a_moving_thing_behind_the_hole_is_carried_by_its_own_motion():
    """Completed from the camera's motion round it, the flow in the box carries the car's pixels as if they
    were the background (smeared); the second flow (the neighbouring pairs' flow where the box has moved on),
    taken where its sources agree better, carries them with the car: far less error."""
    originals, plates, mattes = _pan_with_a_car_under_the_box()
    errors = {}
    for second in (False, True):
        result = CleanupShot(plates, mattes, CleanupOptions(second_flow=second)).fill()
        errors[second] = _hole_errors(result.frames, originals, mattes).mean()
        for f, p, m in zip(result.frames, plates, mattes, strict=True):
            assert np.array_equal(f[m == 0], p[m == 0])
    assert errors[True] < 0.4 * errors[False]


def test_the_second_flow_is_taken_only_where_its_sources_agree_by_the_ratio():
    """The choice between the two flows' traces, region by region, with ``second_ratio`` 0.25 (off by default:
    on the full bench it gained car-shadow 0.77 dB in the hole and lost camel, horsejump-high and Sintel about
    0.3 each): where only the second reveals a pixel it is taken; where its sources' colour variance is below a
    quarter of the first's it is taken; where it agrees better but not by that much the first flow's trace is
    kept. With the default (1.0) every region where the second agrees better is taken."""
    _, plates, mattes = _pan_with_box()
    assert CleanupOptions().second_ratio == 1.0
    shot = CleanupShot(plates, mattes, CleanupOptions(second_ratio=0.25))
    ys, xs = np.nonzero(mattes[3] > 0)
    n = len(ys)
    left, right, top = xs < np.median(xs), xs >= np.median(xs), ys < np.median(ys)
    weight = np.ones(n, np.float32)
    weight[left & top] = 0.0  # only the second flow reveals these
    weight2 = np.ones(n, np.float32)
    spread = np.ones(n, np.float32)
    spread2 = np.where(left, 0.5, 0.1).astype(np.float32)  # left: 2× better, right: 10× better
    spread[weight == 0] = np.inf
    take = shot._choose(3, ys, xs, weight, spread, weight2, spread2)
    inner = np.abs(xs - np.median(xs)) > 3  # away from where the 5 px windows mix the halves
    assert take[left & top].all()
    assert take[right & inner].all()
    assert not take[left & ~top & inner & (ys > np.median(ys) + 4)].any()
    loose = CleanupShot(plates, mattes)
    assert loose._choose(3, ys, xs, weight, spread, weight2, spread2)[left & inner].all()


@pytest.mark.parametrize("blend", ["choose", "mean"])
def test_the_two_traces_are_averaged_where_neither_agrees_far_better(blend, monkeypatch):
    """``second_blend="mean"`` (the default): where both flows' traces reveal a hole pixel and their sources'
    disagreements are within ``blend_band`` (4×) of each other the fill is their mean; where the second's
    sources agree far better (a moving thing the first smears) the second is taken; where one alone reveals
    it, that one. "choose" takes one of the two, never a mix."""
    _, plates, mattes = _pan_with_box()
    assert CleanupOptions().second_blend == "mean" and CleanupOptions().blend_band == 4.0
    shot = CleanupShot(plates, mattes, CleanupOptions(poisson=False, second_blend=blend))
    shot.flows()
    calls = []

    def fake(t, pts, visible, offsets):  # first trace: 1.0, the second: 3.0; each misses a band of the hole
        second = len(calls) % 2 == 1
        calls.append(t)
        n = len(pts)
        values = np.full((n, len(offsets), 3), 3.0 if second else 1.0, np.float32)
        weight = np.ones(n, np.float32)
        weight[(pts[:, 1] < 40) if second else (pts[:, 1] >= 65)] = 0.0
        spread = np.ones(n, np.float32)
        if second:  # its sources agree 10× better on the left
            spread[pts[:, 0] < np.median(pts[:, 0]) - 3] = 0.1
        return values, weight, spread

    monkeypatch.setattr(shot, "_propagate", fake)
    result = shot.fill()
    ys, xs = np.nonzero(mattes[2] > 0)
    got = result.fills[2][ys, xs, 0]
    only_first, only_second = ys < 40, ys >= 65
    assert np.all(got[only_first] == 1.0) and np.all(got[only_second] == 3.0)
    middle = ~only_first & ~only_second
    left = xs < np.median(xs) - 6  # clear of where the 5 px windows mix the two halves
    right = xs > np.median(xs) + 3
    assert np.all(got[middle & left] == 3.0)
    assert np.all(got[middle & right] == 2.0) if blend == "mean" else np.all(got[middle & right] == 1.0)


def test_poisson_blend_keeps_the_guidance_and_takes_its_level_from_the_seam():
    """Guidance with the truth's differences but 0.1 too bright: the solve returns the truth (the seam's
    plate sets the level); with every pixel guided by a flat patch it is the smooth membrane between seams."""
    originals, _, mattes = _pan_with_box()
    img, hole = originals[3], mattes[3] > 0
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    patches = np.stack([img[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)]
                        for dx, dy in OFFSETS.astype(int)], axis=1) + 0.1
    assert np.abs(poisson_blend(img, hole, patches, 1000) - img[ys, xs]).max() < 1e-4
    assert np.abs(patches[:, 0] - img[ys, xs]).min() > 0.09  # the guidance alone is off everywhere
    flat = np.repeat(patches[:, :1], 5, axis=1)
    smooth = poisson_blend(img, hole, flat, 1000)
    assert smooth.min() >= img[~hole].min() - 1e-4 and smooth.max() <= img[~hole].max() + 1e-4  # max principle


def test_a_few_mismatched_seam_pixels_do_not_wash_over_the_hole():
    """Exact guidance, but the plate disagrees with the source's view at a few seam pixels by far more than the
    rest of the seam (a copy misplaced across an edge): the robust blend leaves them out and returns the truth;
    solving to every seam pixel spreads their mismatch into the hole."""
    originals, _, mattes = _pan_with_box()
    img, hole = originals[3].copy(), mattes[3] > 0
    ys, xs = np.nonzero(hole)
    h, w = hole.shape
    patches = np.stack([img[np.clip(ys + dy, 0, h - 1), np.clip(xs + dx, 0, w - 1)]
                        for dx, dy in OFFSETS.astype(int)], axis=1)
    plate = img.copy()
    top, x0 = ys.min(), xs.min()
    plate[top - 1, x0 + 4 : x0 + 10] += 0.5  # six seam pixels above the hole
    robust = poisson_blend(plate, hole, patches, 1000, robust=True)
    plain = poisson_blend(plate, hole, patches, 1000)
    assert np.abs(robust - img[ys, xs]).max() < 1e-4
    assert np.abs(plain - img[ys, xs]).max() > 0.05


def test_an_exposure_drift_leaves_no_seam():
    """Each frame 3 % brighter than the last: pixels taken from other frames carry their exposure, the
    gradient-domain blend gives them this frame's level (mean error a third of the colour blend's)."""
    originals, plates, mattes = _pan_with_box()
    gain = [1.0 + 0.03 * k for k in range(N)]
    originals = [o * g for o, g in zip(originals, gain, strict=True)]
    plates = [np.where(m[..., None] > 0, p, p * g) for p, m, g in zip(plates, mattes, gain, strict=True)]
    errors = {}
    for poisson in (False, True):
        frames = CleanupShot(plates, mattes, CleanupOptions(poisson=poisson)).fill().frames
        errors[poisson] = max(np.abs(f[m > 0] - o[m > 0]).mean()
                              for f, o, m in zip(frames[1:-1], originals[1:-1], mattes[1:-1], strict=True))
    assert errors[True] < 1e-2 < errors[False]
    assert errors[True] < errors[False] / 3


def test_a_never_revealed_region_is_generated_once_and_stays_put():
    originals, _, mattes = _pan_with_box()
    plates = []
    for k, (m, o) in enumerate(zip(mattes, originals, strict=True)):  # a box stuck to the background:
        m[:] = 0  # nothing behind it is ever seen
        m[40:60, 60 - PAN * k : 90 - PAN * k] = 1.0
        plates.append(np.where(m[..., None] > 0, np.float32(1.0), o))
    calls = []

    def generate(frame, unseen):
        calls.append(unseen.sum())
        out = frame.copy()
        out[unseen] = np.array([0.2, 0.6, 0.3], np.float32) + 0.05 * _texture(H, W, seed=7)[unseen]
        return out

    result = CleanupShot(plates, mattes).fill(generate)
    assert len(calls) == 1 and result.generated > 0.9
    # carried with the background: frame k's fill is the reference's, shifted by the pan
    ref = result.reference
    for k in range(N):
        if k == ref:
            continue
        shift = PAN * (k - ref)
        ys, xs = np.nonzero(mattes[k] > 0)
        inner = (xs + shift >= 61) & (xs + shift < 89) & (ys > 40) & (ys < 59)
        a = result.frames[k][ys[inner], xs[inner]]
        b = result.frames[ref][ys[inner], xs[inner] + shift]
        assert np.abs(a - b).max() < 5e-3


def test_deterministic():
    _, plates, mattes = _pan_with_box()
    a = CleanupShot(plates, mattes).fill().frames
    b = CleanupShot(plates, mattes).fill().frames
    assert all(np.array_equal(x, y) for x, y in zip(a, b, strict=True))


@pytest.mark.parametrize(
    "change, message",
    [
        (lambda p, m: (p, m[:-1]), "mattes"),
        (lambda p, m: (p, [x[:, :-1] for x in m]), "must both be"),
        (lambda p, m: (p, [x * 0 for x in m]), "nothing to remove"),
        (lambda p, m: (p, [x * 2 for x in m]), "0..1"),
        (lambda p, m: ([], []), "at least one frame"),
    ],
)
def test_bad_input_refused(change, message):
    _, plates, mattes = _pan_with_box()
    plates, mattes = change(plates, mattes)
    with pytest.raises(CleanupError, match=message):
        CleanupShot(plates, mattes)


def test_fill_smooth_keeps_known_pixels_and_fills_between():
    values = np.zeros((32, 32), np.float32)
    values[:, :8], values[:, 24:] = 1.0, 3.0
    known = np.zeros((32, 32), bool)
    known[:, :8] = known[:, 24:] = True
    out = fill_smooth(values, known)
    assert np.array_equal(out[known], values[known])
    assert 1.0 < out[16, 16] < 3.0


def test_telea_is_stable_on_scene_linear_values():
    frame = np.full((64, 64, 3), 4.0, np.float32)  # a bright scene-linear plate
    mask = np.zeros((64, 64), bool)
    mask[20:44, 20:44] = True
    out = telea(frame, mask)
    assert np.allclose(out[mask], 4.0, rtol=1e-3)


def test_real_plate_beats_a_spatial_inpaint_and_stays_steady():
    """DAVIS blackswan with camel's moving object pasted in (the bench's protocol), 10 frames."""
    seqs = shared_sequences()
    originals, plates, mattes = hole_plate(seqs["blackswan"], seqs["camel"], 10)
    ours = score(CleanupShot(plates, mattes, CleanupOptions()).fill().frames, originals, mattes)
    spatial = [np.where(m[..., None] > 0, telea(p, m > 0), p) for p, m in zip(plates, mattes, strict=True)]
    ref = score(spatial, originals, mattes)
    assert ours["psnr_hole"] > ref["psnr_hole"]
    assert ours["flicker_ratio_flow"] < 1.2 < ref["flicker_ratio_flow"] or ours["flicker_ratio_flow"] < ref[
        "flicker_ratio_flow"
    ]


def test_flicker_figure_catches_a_fill_that_boils():
    """The runner's flicker figure: a steady fill reads about as steady as the plate round it; the same fill
    with new noise every frame (a fill made anew per frame) reads far above the limit."""
    _, plates, mattes = _pan_with_box()
    shot = CleanupShot(plates, mattes)
    steady = shot.fill().frames
    rng = np.random.default_rng(0)
    boiling = [f + (m[..., None] > 0) * rng.normal(0, 0.05, f.shape).astype(np.float32)
               for f, m in zip(steady, mattes, strict=True)]
    assert flicker_ratio(shot, steady) < 1.2 < flicker_ratio(shot, boiling)
