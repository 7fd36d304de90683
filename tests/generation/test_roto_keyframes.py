"""Key frames drawn in the browser for a roto: shapes rasterised into half `A` EXRs with the plate's windows
(real OIIO), who drew them recorded; passes through the embedded worker, a correction recomputing only the
frames between its neighbouring key frames, locked frames surviving later passes, unlocking, and who drew
each key frame in the released EXR header (read back with oiiotool)."""

import math
import re
import subprocess
from pathlib import Path

import numpy as np
import pytest

from generation import roto_keyframes as keyframes
from generation.engine import frames
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RotoPass
from portal import worker
from portal.errors import Conflict, Forbidden, PortalError
from review import services as review
from review.models import Release
from tests.conftest import OIIOTOOL, PLATE_FIRST, PLATE_LAST, PLATE_SIZE

W, H = PLATE_SIZE


def _no_plate():
    raise AssertionError("a polygon, brush or erase needs no plate image")


def _square(x0, y0, x1, y1, feather=0):
    return {"tool": "polygon", "points": [[x0, y0], [x1, y0], [x1, y1], [x0, y1]], "feather": feather}


# ------------------------------------------------------------------------------------------------ rasterising


def test_a_polygon_fills_its_inside_and_its_feather_softens_only_the_edge():
    hard = keyframes.rasterise([_square(100, 50, 200, 120)], size=(H, W), plate_image=_no_plate)
    assert hard[85, 150] == 1.0 and hard[10, 10] == 0.0 and hard[85, 250] == 0.0
    assert abs(hard.sum() - 100 * 70) < 100 * 70 * 0.03  # the area drawn, to anti-aliasing
    soft = keyframes.rasterise([_square(100, 50, 200, 120, feather=20)], size=(H, W), plate_image=_no_plate)
    assert soft[85, 150] > 0.99 and 0.4 < soft[85, 100] < 0.6  # the edge itself is half way
    assert 0.0 < soft[85, 92] < 0.4 and soft[85, 80] < 0.05  # a falloff about `feather` pixels wide
    assert abs(soft.sum() - hard.sum()) < 0.03 * hard.sum()  # centred on the edge: the area stays


def test_brush_adds_a_round_stroke_and_erase_takes_it_away_in_order():
    brush = {"tool": "brush", "points": [[50, 90], [150, 90]], "radius": 10}
    painted = keyframes.rasterise([brush], size=(H, W), plate_image=_no_plate)
    assert painted[90, 100] == 1.0 and painted[90, 42] == 1.0 and painted[90, 38] == 0.0  # a round cap, 10 px
    assert painted[75, 100] == 0.0 and painted[85, 100] == 1.0
    assert abs(painted.sum() - (100 * 20 + math.pi * 10**2)) < 0.02 * painted.sum()  # a 10 px sausage, to 2%
    erase = {"tool": "erase", "points": [[100, 60], [100, 120]], "radius": 5}
    both = keyframes.rasterise([brush, erase], size=(H, W), plate_image=_no_plate)
    assert both[90, 100] == 0.0 and both[90, 80] == 1.0
    # erase first, brush after: the brush wins (shapes apply in the order drawn)
    assert keyframes.rasterise([erase, brush], size=(H, W), plate_image=_no_plate)[90, 100] == 1.0


def _disc_image():
    """A dark plate with a warm disc on it (display-referred uint8), and the disc's matte."""
    yy, xx = np.mgrid[0:H, 0:W]
    disc = (xx - 180) ** 2 + (yy - 95) ** 2 <= 40**2
    rng = np.random.default_rng(1)
    image = np.where(disc[..., None], [200, 120, 60], [40, 60, 70]) + rng.normal(0, 6, (H, W, 3))
    return np.clip(image, 0, 255).astype(np.uint8), disc


def _iou(matte, truth):
    found = matte >= 0.5
    return (found & truth).sum() / (found | truth).sum()


def test_a_box_or_a_few_clicks_on_an_object_become_its_matte_from_the_plate_colours():
    image, disc = _disc_image()
    boxed = keyframes.rasterise([{"tool": "box", "box": [130, 45, 100, 100]}], size=(H, W), plate_image=lambda: image)
    assert _iou(boxed, disc) > 0.9
    clicks = {"tool": "clicks", "points": [[180, 95], [165, 80], [195, 110]]}
    clicked = keyframes.rasterise([clicks], size=(H, W), plate_image=lambda: image)
    assert _iou(clicked, disc) > 0.85
    again = keyframes.rasterise([clicks], size=(H, W), plate_image=lambda: image)
    assert np.array_equal(clicked, again)  # deterministic: OpenCV's RNG is seeded


@pytest.mark.parametrize(("shapes", "says"), [
    ([], "draw 1 to"),
    ([{"tool": "lasso", "points": [[1, 1]]}], "the tool is one of"),
    ([{"tool": "polygon", "points": [[1, 1], [2, 2]]}], "needs 3 to"),
    ([{"tool": "polygon", "points": [[1, 1], [2, math.nan], [3, 1]]}], "must be a number"),
    ([{"tool": "brush", "points": [[1, 1]], "radius": -3}], "radius must be from"),
    ([{"tool": "polygon", "points": [[1, 1], [50, 1], [1, 50]], "feather": 1e9}], "feather must be from"),
    ([{"tool": "box", "box": [1, 2, 3]}], "a box is"),
    (["polygon"], "the tool is one of"),
])
def test_bad_shapes_are_refused_with_the_shape_and_the_reason(shapes, says):
    with pytest.raises(PortalError, match=says):
        keyframes.rasterise(shapes, size=(H, W), plate_image=_no_plate)


# ---------------------------------------------------------------------------------------------- the services


@pytest.fixture
def roto(compositor, shot):
    return keyframes.roto_set_create(user=compositor, shot=shot)


def test_a_drawn_key_frame_is_a_half_a_exr_with_the_plate_windows_and_who_drew_it(compositor, shot, roto):
    row = keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1002, shapes=[_square(20, 20, 120, 100)])
    header = frames.read_header(row.path)
    plate = shot.plates.get()
    assert header.channels == ("A",) and header.display_window == Window(**plate.display_window)
    assert header.data_window == Window(**plate.data_window)
    info = subprocess.run([OIIOTOOL, "--info", "-v", row.path], capture_output=True, text=True, check=True).stdout
    assert re.search(rf"{W} x\s+{H}, 1 channel, half openexr", info)
    assert 'parallel_track:roto_drawn_by: "cora"' in info
    assert row.drawn_by == compositor and row.drawn_at is not None and len(row.sha256) == 64
    assert Path(row.path).resolve().is_relative_to(Path(shot.show.code).resolve().parent) or "work" in row.path
    assert list(keyframes.current_keys(roto)) == [1002]


def test_bad_key_frames_are_refused_and_nothing_is_recorded(compositor, producer, roto):
    with pytest.raises(PortalError, match="outside the plate's frames"):
        keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=PLATE_LAST + 1, shapes=[_square(1, 1, 50, 50)])
    with pytest.raises(PortalError, match="is empty"):  # drawn entirely off the plate
        keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1001, shapes=[_square(-90, -90, -10, -10)])
    with pytest.raises(PortalError, match="is empty"):  # drawn, then erased
        keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1001, shapes=[
            _square(10, 10, 60, 60), {"tool": "erase", "points": [[35, 35]], "radius": 80}])
    with pytest.raises(Forbidden):
        keyframes.keyframe_draw(user=producer, roto_set=roto, frame=1001, shapes=[_square(1, 1, 50, 50)])
    with pytest.raises(PortalError, match="draw a key frame first"):
        keyframes.pass_request(user=compositor, roto_set=roto)
    assert not roto.keyframes.exists() and not GenerationRequest.objects.exists()


def test_the_frames_a_correction_recomputes_lie_between_its_neighbouring_key_frames():
    frames_of = keyframes.pass_frames
    assert frames_of(keys={1001, 1004, 1010}, previous_keys={1001: 1, 1010: 2}, current={1001: 1, 1004: 3, 1010: 2},
                     unlocked=set(), first=1001, last=1012) == set(range(1002, 1010))
    # a key frame redrawn at the end: from the key before it to the shot's end
    assert frames_of(keys={1001, 1010}, previous_keys={1001: 1, 1010: 2}, current={1001: 1, 1010: 5},
                     unlocked=set(), first=1001, last=1012) == set(range(1002, 1013))
    # a key frame removed: its neighbours' span, and an unlocked frame
    assert frames_of(keys={1001, 1010}, previous_keys={1001: 1, 1004: 3, 1010: 2}, current={1001: 1, 1010: 2},
                     unlocked={1012}, first=1001, last=1012) == set(range(1002, 1010)) | {1012}


def _run_pass(user, roto) -> GenerationRequest:
    request = keyframes.pass_request(user=user, roto_set=roto)
    worker.drain_embedded()
    request.refresh_from_db()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    return request


def _mattes(request) -> dict[int, np.ndarray]:
    pattern = request.variations.get().exr_pattern
    return {f: frames.read_matte(frame_path(pattern, f)) for f in range(request.first_frame, request.last_frame + 1)}


@pytest.mark.django_db(transaction=True)
def test_passes_from_drawn_key_frames_a_correction_sticks_and_the_release_names_who_drew_them(
        compositor, supervisor, shot):
    roto = keyframes.roto_set_create(user=compositor, shot=shot)
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=PLATE_FIRST, shapes=[_square(40, 30, 160, 120)])
    keyframes.keyframe_draw(user=supervisor, roto_set=roto, frame=PLATE_LAST, shapes=[_square(48, 30, 168, 120)])
    first = _run_pass(compositor, roto)
    assert first.params["roto"]["pass"] == 1 and "locked" not in first.params
    one = _mattes(first)

    # Fix frame 1003: the next pass recomputes 1002..1005 (between the key frames 1001 and 1006) and keeps
    # nothing else to recompute here; the fixed frame is the drawing, and locked from now on.
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1003, shapes=[_square(60, 40, 140, 110)])
    roto.refresh_from_db()
    assert roto.locked == [1003]
    second = _run_pass(compositor, roto)
    second_pass = RotoPass.objects.get(request=second)
    assert second_pass.number == 2 and second_pass.recomputed == [1002, 1004, 1005] and second_pass.locked == []
    assert second.derived_from == first.variations.get()
    two = _mattes(second)
    assert np.array_equal(two[1001], one[1001]) and np.array_equal(two[1006], one[1006])
    drawn = frames.read_matte(roto.keyframes.get(frame=1003).path)
    assert np.abs(two[1003] - drawn).max() < 1e-3 and not np.array_equal(two[1003], one[1003])

    # Lock 1005, then fix 1004: pass 3 recomputes 1005? No: it is locked, bit for bit.
    keyframes.frame_lock(user=compositor, roto_set=roto, frame=1005, locked=True)
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1004, shapes=[_square(70, 40, 150, 115)])
    third = _run_pass(compositor, roto)
    third_pass = RotoPass.objects.get(request=third)
    assert third_pass.recomputed == [] and sorted(third_pass.locked) == [1002, 1005]
    three = _mattes(third)
    assert np.array_equal(three[1005], two[1005]) and np.array_equal(three[1002], two[1002])

    # Unlock 1005: the next pass computes it again from its neighbours (1004 and 1006).
    keyframes.frame_lock(user=compositor, roto_set=roto, frame=1005, locked=False)
    fourth = _run_pass(compositor, roto)
    assert RotoPass.objects.get(request=fourth).recomputed == [1005]
    with pytest.raises(PortalError, match="nothing changed since pass 4"):
        keyframes.pass_request(user=compositor, roto_set=roto)

    # Unlocking a fixed frame takes its key frame out; the next pass computes it from its neighbours.
    keyframes.frame_lock(user=compositor, roto_set=roto, frame=1004, locked=False)
    assert sorted(keyframes.current_keys(roto)) == [1001, 1003, 1006]
    fifth = _run_pass(compositor, roto)
    assert RotoPass.objects.get(request=fifth).recomputed == [1004, 1005]

    review.signoff_approve(user=compositor, request=fifth, variation=fifth.variations.get())
    worker.drain_embedded()
    release = Release.objects.get()
    assert release.status == "done", release.error
    released = frame_path(release.path_pattern, 1004)
    info = subprocess.run([OIIOTOOL, "--info", "-v", released], capture_output=True, text=True, check=True).stdout
    assert "channel list: A\n" in info and 'parallel_track:roto_pass: "5"' in info
    drawn_line = re.search(r'parallel_track:roto_keyframes_drawn: "([^"]*)"', info).group(1)
    assert re.fullmatch(r"1001 by cora at \S+; 1003 by cora at \S+; 1006 by sam at \S+", drawn_line), drawn_line


@pytest.mark.django_db(transaction=True)
def test_a_pass_waits_for_the_one_before_and_a_tampered_key_frame_is_not_credited(compositor, shot):
    roto = keyframes.roto_set_create(user=compositor, shot=shot)
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=PLATE_FIRST, shapes=[_square(40, 30, 160, 120)])
    first = keyframes.pass_request(user=compositor, roto_set=roto)
    keyframes.keyframe_draw(user=compositor, roto_set=roto, frame=1004, shapes=[_square(40, 30, 160, 120)])
    if first.variations.get().status != "done":
        with pytest.raises(Conflict, match="pass 1 has not finished"):
            keyframes.pass_request(user=compositor, roto_set=roto)
    worker.drain_embedded()
    key = frame_path(first.matte_pattern, PLATE_FIRST)
    frames.write_exr(key, np.ones((H, W, 1), np.float16), display_window=Window(0, 0, W, H), channel_names=("A",))
    assert keyframes.release_provenance(first)["parallel_track:roto_keyframes_drawn"] == ""
