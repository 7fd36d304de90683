import json
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames
from generation.engine.inpaint import Cancelled
from generation.engine.registry import CARD_NAME, ModelError
from generation.engine.sequence import frame_path
from generation.engine.variation import VariationSpec, generate_variation

from .conftest import SMALL_FIRST, SMALL_LAST

FRAMES = list(range(SMALL_FIRST, SMALL_LAST + 1))
STAMP = {"DateTime": "2026:01:01 00:00:00"}


def _spec(plate, model, out_dir, **changes) -> VariationSpec:
    spec = VariationSpec(
        plate_pattern=plate["plate"],
        matte_pattern=plate["matte"],
        rect=None,
        first=SMALL_FIRST,
        last=SMALL_LAST,
        model_path=model,
        seed=42,
        steps=3,
        out_dir=str(out_dir),
        prompt="stormy dusk",
        attributes=dict(STAMP),
        proxy_width=128,
    )
    return replace(spec, **changes)


def _run(spec):
    events, written = [], []
    result = generate_variation(spec, on_progress=lambda *e: events.append(e), on_frame=lambda *f: written.append(f))
    return result, events, written


@pytest.fixture(scope="module")
def first_run(small_demo_plate, tiny_model_dir, tmp_path_factory):
    return _run(_spec(small_demo_plate, tiny_model_dir, tmp_path_factory.mktemp("v") / "one"))


def test_the_engine_imports_without_django():
    code = "import sys, generation.engine.variation; assert 'django' not in sys.modules, 'django imported'"
    subprocess.run([sys.executable, "-c", code], check=True, cwd=Path(__file__).parents[3])


def test_it_writes_an_element_and_a_proxy_per_frame(first_run):
    result, events, written = first_run
    assert result.frames == FRAMES
    assert [f for f, _, _ in written] == FRAMES
    for frame, exr, proxy in written:
        assert exr == frame_path(result.exr_pattern, frame) and os.path.isfile(exr)
        assert proxy == frame_path(result.proxy_pattern, frame) and os.path.isfile(proxy)
    assert ("denoise", 3, 3) in events and ("frames", 4, 4) in events
    assert result.compute_seconds > 0 and np.isfinite(result.flicker_ratio)
    assert result.element_window["width"] > 0


def test_it_records_provenance_in_the_element_header(first_run, tiny_model_dir):
    result, _, _ = first_run
    spec = oiio.ImageInput.open(frame_path(result.exr_pattern, SMALL_FIRST)).spec()
    assert spec.getattribute("parallel_track:seed") == "42"
    assert spec.getattribute("parallel_track:steps") == 3
    assert spec.getattribute("parallel_track:prompt") == "stormy dusk"
    assert spec.getattribute("parallel_track:model") == "tiny-test"
    assert len(spec.getattribute("parallel_track:model_manifest_sha256")) == 64
    assert spec.getattribute("DateTime") == STAMP["DateTime"]
    assert spec.format == oiio.HALF and tuple(spec.channelnames) == ("R", "G", "B", "A")


def test_pixels_outside_the_matte_are_exactly_the_plate(first_run, small_demo_plate):
    result, _, _ = first_run
    for frame in FRAMES:
        plate = frames.read_channels(frame_path(small_demo_plate["plate"], frame), ("R", "G", "B"))
        matte = frames.read_matte(frame_path(small_demo_plate["matte"], frame))
        element, header = frames.read_rgba(frame_path(result.exr_pattern, frame))
        outside = matte == 0
        assert outside.any() and (~outside).any()
        assert np.all(element[outside] == 0)
        over = element[..., :3] + plate * (1 - element[..., 3:])
        assert np.array_equal(over[outside], plate[outside])
        assert np.array_equal(element[..., 3], matte)
        assert header.data_window == frames.alpha_bbox(matte, header.display_window)


def test_it_is_deterministic_to_the_byte(first_run, small_demo_plate, tiny_model_dir, tmp_path):
    result, _, _ = first_run
    again, events, _ = _run(_spec(small_demo_plate, tiny_model_dir, tmp_path / "two"))
    assert [e for e in events if e[0] == "track"] == [("track", 4, 4)]  # the track came from the cache
    for frame in FRAMES:
        a, b = frame_path(result.exr_pattern, frame), frame_path(again.exr_pattern, frame)
        assert Path(a).read_bytes() == Path(b).read_bytes()
    assert again.flicker_ratio == result.flicker_ratio


def test_another_seed_makes_another_element(first_run, small_demo_plate, tiny_model_dir, tmp_path):
    result, _, _ = first_run
    other, _, _ = _run(_spec(small_demo_plate, tiny_model_dir, tmp_path / "seed", seed=43, steps=1))
    a, _ = frames.read_rgba(frame_path(result.exr_pattern, SMALL_FIRST))
    b, _ = frames.read_rgba(frame_path(other.exr_pattern, SMALL_FIRST))
    assert not np.array_equal(a, b)


def test_a_carried_element_holds_as_still_as_the_plate(first_run):
    assert first_run[0].flicker_ratio < 1.5


@pytest.mark.parametrize("k", [0, 2])
def test_cancelling_stops_within_one_step_and_leaves_no_files(small_demo_plate, tiny_model_dir, tmp_path, k):
    out = tmp_path / "cancelled"
    denoised = []

    def on_progress(stage, i, n):
        if stage == "denoise":
            denoised.append(i)

    with pytest.raises(Cancelled):
        generate_variation(
            _spec(small_demo_plate, tiny_model_dir, out, steps=5),
            on_progress=on_progress,
            should_cancel=lambda: len(denoised) >= k,
        )
    assert denoised == list(range(1, k + 1))
    assert not out.exists()


def test_cancelling_between_frames_removes_the_frames_already_written(small_demo_plate, tiny_model_dir, tmp_path):
    written = []
    (tmp_path / "keep.txt").write_text("not ours")
    spec = _spec(small_demo_plate, tiny_model_dir, tmp_path, steps=1)
    with pytest.raises(Cancelled):
        generate_variation(spec, on_frame=lambda *f: written.append(f), should_cancel=lambda: len(written) >= 1)
    assert len(written) >= 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]


def test_a_rect_replaces_a_screen_region(small_demo_plate, tiny_model_dir, tmp_path):
    spec = _spec(
        small_demo_plate, tiny_model_dir, tmp_path / "rect", matte_pattern=None, rect=(16, 8, 100, 40), steps=1
    )
    result = generate_variation(spec)
    element, header = frames.read_rgba(frame_path(result.exr_pattern, SMALL_LAST))
    assert header.data_window == frames.Window(16, 8, 100, 40)
    assert np.all(element[8:48, 16:116, 3] == 1) and element[..., 3].sum() == 100 * 40


@pytest.mark.parametrize(
    "changes, error",
    [
        ({"task": "sky_painting"}, "unknown task"),
        ({"last": SMALL_LAST + 1}, "missing"),
        ({"rect": (0, 0, 10, 10)}, "exactly one"),
        ({"matte_pattern": None}, "exactly one"),
        ({"steps": 0}, "steps"),
        ({"rect": (900, 0, 10, 10), "matte_pattern": None}, "rect"),
        ({"working_space": "not-a-space"}, "not-a-space"),
    ],
)
def test_it_rejects_bad_specs_before_writing_anything(small_demo_plate, tiny_model_dir, tmp_path, changes, error):
    out = tmp_path / "never"
    with pytest.raises(ValueError, match=error):
        generate_variation(_spec(small_demo_plate, tiny_model_dir, out, **changes))
    assert not out.exists()


def test_it_rejects_a_model_of_the_wrong_kind(small_demo_plate, tiny_model_dir, tmp_path):
    model = tmp_path / "upscaler"
    shutil.copytree(tiny_model_dir, model)
    card = json.loads((model / CARD_NAME).read_text())
    (model / CARD_NAME).write_text(json.dumps({**card, "kind": "upscaler"}))
    with pytest.raises(ModelError, match="upscaler"):
        generate_variation(_spec(small_demo_plate, str(model), tmp_path / "never"))
    assert not (tmp_path / "never").exists()
