"""Roto engine: corrections that stick, locked frames, determinism and refused key frames, on real footage."""

import subprocess
import sys

import cv2
import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine.roto import (
    RotoError,
    RotoOptions,
    RotoShot,
    drop_specks,
    drop_untrusted_islands,
    frames_affected,
    part_reach,
    smallest_part,
)
from generation.engine.roto_colour import colour_mend, colour_model
from generation.engine.roto_cut import cut_band
from generation.engine.roto_edge import refine_edges
from generation.engine.roto_flow import STEP_TRUST, ShotFlow, carry, propagate
from tests.realdata import testdata as real_footage

FIRST = 1001  # plate frame numbers, not indices
COUNT = 12
CROP = (slice(150, 310), slice(300, 540))  # blackswan's swan and the water around it, 240x160


def _read(path) -> np.ndarray:
    return oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)


@pytest.fixture(scope="module")
def swan():
    folder = real_footage("davis16", "blackswan")
    plates = [_read(folder / "frames" / f"{i:05d}.jpg")[CROP] for i in range(COUNT)]
    mattes = [(_read(folder / "masks" / f"{i:05d}.png")[CROP][..., 0] > 127).astype(np.float32) for i in range(COUNT)]
    return plates, {FIRST + i: m for i, m in enumerate(mattes)}


def _shot(plates, **options) -> RotoShot:
    return RotoShot(plates, first_frame=FIRST, options=RotoOptions(train_steps=15, **options))


@pytest.fixture(scope="module")
def shot(swan):
    return _shot(swan[0])


def _keys(truth, *frames):
    return {f: truth[f] for f in frames}


def test_a_pass_gives_a_matte_for_every_frame_close_to_the_truth(shot, swan):
    _, truth = swan
    mattes = shot.pass_(_keys(truth, FIRST, FIRST + COUNT - 1))
    assert sorted(mattes) == list(range(FIRST, FIRST + COUNT))
    for f, m in mattes.items():
        assert m.shape == truth[f].shape and m.dtype == np.float32 and 0 <= m.min() and m.max() <= 1
        iou = np.logical_and(m >= 0.5, truth[f] > 0.5).sum() / np.logical_or(m >= 0.5, truth[f] > 0.5).sum()
        assert iou > 0.8, f"frame {f}: IoU {iou:.2f}"


def test_frames_affected_are_those_between_the_neighbouring_key_frames():
    frames = range(FIRST, FIRST + COUNT)
    assert frames_affected([1001, 1005, 1012], 1008, frames) == range(1006, 1012)
    assert frames_affected([1005, 1012], 1002, frames) == range(1001, 1005)
    assert frames_affected([1001, 1005], 1008, frames) == range(1006, 1013)


def test_a_key_frame_added_at_k_changes_only_frames_between_its_neighbours(shot, swan, monkeypatch):
    _, truth = swan
    before = {f: m.copy() for f, m in shot.pass_(_keys(truth, 1001, 1005, 1012)).items()}
    computed = []
    original = shot._compute_segment
    monkeypatch.setattr(
        shot, "_compute_segment", lambda a, b, k, span: computed.append(span) or original(a, b, k, span)
    )
    after = shot.pass_(_keys(truth, 1001, 1005, 1008, 1012))
    affected = frames_affected([1001, 1005, 1012], 1008, shot.frames)
    assert sorted(f for span in computed for f in span) == [f for f in affected if f != 1008]
    for f in shot.frames:
        if f not in affected:
            assert np.array_equal(after[f], before[f]), f"frame {f} changed though 1008 is not its neighbour"
    assert np.array_equal(after[1008], truth[1008])
    assert any(not np.array_equal(after[f], before[f]) for f in affected if f != 1008)


def test_a_locked_frame_survives_later_passes(shot, swan):
    _, truth = swan
    first = {f: m.copy() for f, m in shot.pass_(_keys(truth, 1001, 1012)).items()}
    second = shot.pass_(_keys(truth, 1001, 1006, 1012), locked={1003})
    third = shot.pass_(_keys(truth, 1001, 1004, 1012), locked={1003})
    assert np.array_equal(second[1003], first[1003]) and np.array_equal(third[1003], first[1003])
    assert not np.array_equal(second[1002], first[1002]), "the unlocked neighbour should have been recomputed"


def test_a_lock_without_an_earlier_matte_is_refused(swan):
    plates, truth = swan
    with pytest.raises(RotoError, match="locked but have no matte"):
        _shot(plates[:4]).pass_(_keys(truth, 1001), locked={1003})


def test_the_same_inputs_give_the_same_mattes(swan):
    plates, truth = swan
    keys = _keys(truth, 1001, 1007, 1012)
    one = _shot(plates, model=True).pass_(keys)  # the model is where randomness could creep in
    two = _shot(plates, model=True).pass_(dict(reversed(keys.items())))
    assert all(np.array_equal(one[f], two[f]) for f in one)


@pytest.mark.parametrize(
    ("frame", "matte", "message"),
    [
        (1001, np.ones((10, 10), np.float32), "is 10x10, the plate is 240x160"),
        (1001, np.zeros((160, 240), np.float32), "is empty"),
        (1000, np.ones((160, 240), np.float32), "outside the shot's frames 1001-1012"),
        (1013, np.ones((160, 240), np.float32), "outside the shot's frames 1001-1012"),
        (1001, np.ones((160, 240, 3), np.float32), "not a matte: shape"),
        (1001, np.full((160, 240), 2.0, np.float32), "within 0..1"),
        (1001, np.full((160, 240), np.nan, np.float32), "finite"),
        (1001, np.full((160, 240), 255, np.uint8), "uint8; give a float matte"),
    ],
)
def test_bad_key_frames_are_refused_with_a_clear_message(shot, swan, frame, matte, message):
    _, truth = swan
    keys = _keys(truth, 1012) | {frame: matte}
    before = dict(shot.mattes)
    with pytest.raises(RotoError, match=message):
        shot.pass_(keys)
    assert shot.mattes.keys() == before.keys() and all(shot.mattes[f] is before[f] for f in before)


def test_plates_of_another_size_are_refused(swan):
    plates, _ = swan
    with pytest.raises(RotoError, match="plate frame 1002"):
        RotoShot([plates[0], plates[1][:50]], first_frame=FIRST)


def test_the_edge_pass_softens_only_a_narrow_band(swan):
    plates, truth = swan
    hard = truth[1001]
    soft = refine_edges(plates[0].astype(np.float32) / 255, hard, radius=2)
    changed = soft != hard
    assert ((soft > 0.05) & (soft < 0.95)).sum() > 0.3 * (hard[:, 1:] != hard[:, :-1]).sum(), "edges stay hard"
    inside = np.argwhere(hard > 0.5)
    centre = inside[len(inside) // 2]
    assert not changed[tuple(centre)], "the middle of the matte must stay as the coarse matte said"


def test_the_roto_engine_imports_without_django():
    code = "import sys, generation.engine.roto; assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], check=True)


def test_the_colour_model_speaks_only_where_flow_is_not_trusted_near_the_edge(swan):
    plates, truth = swan
    table = colour_model([plates[0]], [truth[1001]])
    drifted = np.roll(truth[1002], 6, axis=1)  # a carried matte that slid off the swan
    trusted = colour_mend(table, plates[1], drifted, np.ones_like(drifted))
    assert np.array_equal(trusted, drifted), "trusted flow must be left alone"
    mended = colour_mend(table, plates[1], drifted, np.zeros_like(drifted))
    iou = lambda m: np.logical_and(m >= 0.5, truth[1002] > 0.5).sum() / np.logical_or(m >= 0.5, truth[1002] > 0.5).sum()  # noqa: E731
    assert iou(mended) > iou(drifted) + 0.02
    inside = drifted >= 0.5
    to_edge = np.maximum(  # each pixel is 0 in one of the two
        cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5),
        cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5),
    )
    far = to_edge > 0.1 * max(drifted.shape)  # well beyond the band, however the band is set
    assert far.sum() > 1000 and np.array_equal(mended[far], drifted[far])


def _iou(m, truth):
    return np.logical_and(m >= 0.5, truth > 0.5).sum() / np.logical_or(m >= 0.5, truth > 0.5).sum()


def test_the_cut_decides_what_flow_lost_near_the_edge_and_leaves_the_rest(swan):
    plates, truth = swan
    drifted = np.roll(truth[1002], 6, axis=1)  # a carried matte that slid off the swan
    lost = cut_band(plates[1], drifted, np.zeros_like(drifted))
    assert _iou(lost, truth[1002]) > _iou(drifted, truth[1002]) + 0.02
    assert np.array_equal(cut_band(plates[1], drifted, np.zeros_like(drifted)), lost), "the same cut every time"
    inside = drifted >= 0.5
    to_edge = np.maximum(
        cv2.distanceTransform(inside.astype(np.uint8), cv2.DIST_L2, 5),
        cv2.distanceTransform((~inside).astype(np.uint8), cv2.DIST_L2, 5),
    )
    far = to_edge > 0.1 * max(drifted.shape)  # well beyond the band, however the band is set
    assert far.sum() > 1000 and np.array_equal(lost[far], drifted[far])
    # Where flow carried every pixel all the way and the matte is sure, the cut has nothing to decide.
    assert np.array_equal(cut_band(plates[1], drifted, np.ones_like(drifted)), drifted)


def test_the_flicker_ratio_catches_a_boiling_matte(shot, swan):
    _, truth = swan
    steady = shot.pass_(_keys(truth, FIRST, FIRST + COUNT - 1))
    rng = np.random.default_rng(0)
    # Boiling: each frame's edge wanders by a pixel or two on its own, as a frame-by-frame matte without flow does.
    boiling = {f: np.roll(m, tuple(rng.integers(-2, 3, 2)), axis=(0, 1)) for f, m in steady.items()}
    assert shot.flicker_ratio(boiling) > 1.5 * shot.flicker_ratio(steady) > 0


def test_specks_smaller_than_any_drawn_part_are_dropped_and_drawn_parts_kept():
    drawn = np.zeros((60, 80), np.float32)
    drawn[10:40, 10:40] = 1  # the object
    drawn[50:54, 70:74] = 1  # a small part the artist drew on purpose (a kite, a hand)
    carried = drawn.copy()
    carried[5:7, 60:62] = 1  # a 4-pixel speck nobody drew
    cleaned = drop_specks(carried, smallest_part(drawn) / 2)
    assert cleaned[5:7, 60:62].max() == 0
    assert np.array_equal(cleaned[50:54, 70:74], drawn[50:54, 70:74]) and cleaned[10:40, 10:40].min() == 1


def _drifting_flow(n: int, h: int, w: int, dx: float) -> ShotFlow:
    """A shot whose content moves ``dx`` px right per frame everywhere (sub-pixel: every warp resamples)."""
    fwd = np.zeros((h, w, 2), np.float16)
    fwd[..., 0] = dx
    ones = np.ones((h, w), np.float16)
    return ShotFlow([fwd] * (n - 1), [-fwd] * (n - 1), [ones] * (n - 1), [ones] * (n - 1))


def test_accumulated_warps_keep_a_thin_part_that_a_chain_of_warps_blurs_away():
    """A 2-px line carried 24 frames at 0.5 px a frame: resampled at every step (propagate) it melts below 0.5;
    sampled once where each pixel came from (carry) it arrives as drawn, 12 px to the right, both ways."""
    n, h, w = 25, 32, 96
    key = np.zeros((h, w), np.float32)
    key[:, 30:32] = 1.0
    flow = _drifting_flow(n, h, w, 0.5)
    chained, _ = propagate(flow, key, 0, n)
    carried, trust = carry(flow, key, 0, n)
    assert chained[-1].max() < 0.5  # the chain of bilinear warps lost the line
    assert np.array_equal(carried[-1] >= 0.5, np.roll(key, 12, axis=1) >= 0.5)
    assert trust[-1].min() == pytest.approx(STEP_TRUST**24, rel=1e-3)  # trust fades per step, nothing occluded
    back, _ = carry(flow, carried[-1], n - 1, -1)
    assert np.array_equal(back[-1] >= 0.5, key >= 0.5)


def test_a_carried_pixel_that_does_not_look_like_its_source_in_the_key_frame_is_not_trusted():
    """Flow drags the background along with the object (between legs, behind it): the positions agree both
    ways, but the frame's colour there is not the key frame's colour at the source, so trust drops there only."""
    n, h, w = 4, 32, 96
    key = np.zeros((h, w), np.float32)
    key[:, 30:60] = 1.0
    flow = _drifting_flow(n, h, w, 1.0)
    image = np.zeros((h, w, 3), np.uint8)
    image[:, 30:60] = (200, 120, 60)  # the object's colour, moving right one pixel a frame
    images = [np.roll(image, k, axis=1) for k in range(n)]
    images[3] = images[3].copy()
    images[3][:, 40:50] = (20, 160, 40)  # something else where the object should be on the last frame
    _, plain = carry(flow, key, 0, n)
    _, trust = carry(flow, key, 0, n, images)
    assert trust[-1][:, 43:50].max() < 0.1 < plain[-1][:, 43:50].min()
    assert trust[-1][:, 60:63].min() == pytest.approx(plain[-1][:, 60:63].min(), rel=1e-3)  # it still matches
    assert np.allclose(trust[0], plain[0], atol=1e-4)  # a frame that matches loses nothing


def test_part_reach_is_how_far_the_drawn_parts_lie_from_the_largest():
    one = np.zeros((60, 120), np.float32)
    one[10:50, 10:50] = 1
    assert part_reach(one) == 0
    two = one.copy()
    two[20:30, 80:90] = 1  # a part drawn 30 px to the right of the object
    assert part_reach(two) == pytest.approx(31, abs=1.5)
    speck = one.copy()
    speck[20:22, 80:82] = 1  # under MINOR_PART of the object: a speck, not a drawn part
    assert part_reach(speck) == 0


def test_islands_flow_did_not_vouch_for_far_from_the_object_are_dropped():
    matte = np.zeros((60, 160), np.float32)
    matte[10:50, 10:50] = 1  # the object
    matte[20:30, 60:70] = 1  # an island 10 px away
    matte[20:30, 130:140] = 1  # an island 80 px away
    seen = np.ones_like(matte)
    assert np.array_equal(drop_untrusted_islands(matte, seen, reach=0), matte), "trusted islands stay"
    seen[20:30, 60:70] = seen[20:30, 130:140] = 0
    dropped = drop_untrusted_islands(matte, seen, reach=0)
    assert dropped[20:30, 60:70].max() == 0 and dropped[20:30, 130:140].max() == 0
    assert np.array_equal(dropped[10:50, 10:50], matte[10:50, 10:50])
    within = drop_untrusted_islands(matte, seen, reach=20)  # the key frames had parts up to 20 px away
    assert within[20:30, 60:70].min() == 1 and within[20:30, 130:140].max() == 0
    seen[10:50, 10:50] = 0  # the largest part is never dropped, whatever its trust
    assert drop_untrusted_islands(matte, seen, reach=0)[10:50, 10:50].min() == 1


def test_the_cut_may_take_back_the_inside_of_a_matte_flow_lost(swan):
    """A carried matte with a lump of water deep inside it that flow did not vouch for: with ``interior`` the
    cut decides it from the frame's colours; without, the inside beyond the band is taken as the object."""
    plates, truth = swan
    matte = truth[1002].copy()
    grown = cv2.dilate(matte, np.ones((81, 81), np.uint8))  # 40 px of water all round: deeper than the band
    seen = np.where(grown > matte, 0.0, 1.0).astype(np.float32)
    water = (grown > 0.5) & (matte < 0.5)
    kept = cut_band(plates[1], grown, seen)
    taken = cut_band(plates[1], grown, seen, interior=True)
    assert _iou(taken, truth[1002]) > _iou(kept, truth[1002]) + 0.05
    assert (taken[water] < 0.5).mean() > (kept[water] < 0.5).mean() + 0.2


def test_a_segment_falls_back_to_plain_flow_when_its_key_frames_say_the_stages_hurt(swan, monkeypatch):
    """The self-check carries each key frame to the other: on the swan the stages win and stay; with a cut that
    ruins every matte (as a stage tuned on other footage might), plain flow wins at both keys and is used."""
    plates, truth = swan
    keys = _keys(truth, FIRST, FIRST + COUNT - 1)
    honest = _shot(plates, self_check=True)
    kept = honest.pass_(keys)
    assert honest.checks[(FIRST, FIRST + COUNT - 1)]["fallback"] is False
    import generation.engine.roto as roto

    monkeypatch.setattr(roto, "cut_band", lambda image, matte, seen, interior=False: np.roll(matte, 15, axis=1))
    unchecked = _shot(plates, self_check=False).pass_(keys)
    guarded = _shot(plates, self_check=True)
    fell_back = guarded.pass_(keys)
    check = guarded.checks[(FIRST, FIRST + COUNT - 1)]
    assert check["fallback"] is True and all(f > s for f, s in zip(check["flow"], check["full"], strict=True))
    plain = _shot(plates, self_check=False, photometric=False, colour=False, untrusted_islands=False, cut=False)
    assert all(np.array_equal(fell_back[f], m) for f, m in plain.pass_(keys).items())
    inner = range(FIRST + 1, FIRST + COUNT - 1)
    mean = lambda mattes: np.mean([_iou(mattes[f], truth[f]) for f in inner])  # noqa: E731
    assert mean(fell_back) > mean(unchecked) + 0.1 and mean(fell_back) > 0.8
    assert mean(kept) >= mean(fell_back) - 0.02  # on footage the stages suit, they are kept


def test_a_relit_comparison_trusts_a_pixel_whose_light_changed_and_still_not_another_colour():
    """A shadow falls over the whole object on the last frame: its colour is 40 % darker than the key's, so the
    raw comparison distrusts it; relit (``relight``) it matches again, and a different colour still does not."""
    n, h, w = 4, 48, 128
    key = np.zeros((h, w), np.float32)
    key[:, 40:80] = 1.0
    flow = _drifting_flow(n, h, w, 1.0)
    image = np.full((h, w, 3), (40, 90, 160), np.uint8)  # the surroundings
    image[:, 40:80] = (200, 120, 60)  # the object, moving right one pixel a frame
    images = [np.roll(image, k, axis=1) for k in range(n)]
    last = images[3].astype(np.float32) * 0.6  # the shadow: everything in view 40 % darker
    last[:, 53:63] = (20, 160, 40)  # and something else where the object should be
    images[3] = np.clip(last + 0.5, 0, 255).astype(np.uint8)
    _, raw = carry(flow, key, 0, n, images)
    _, relit = carry(flow, key, 0, n, images, relight=True)
    lit = np.s_[:, 46:49]  # the object, in the shadow, away from the other colour and the edges
    assert raw[-1][lit].max() < 0.1 and relit[-1][lit].min() > 0.9
    assert relit[-1][:, 56:60].max() < 0.1, "a different colour is not the light changing"
    assert np.allclose(relit[0], raw[0], atol=1e-4)  # unchanged light: the same trust
