"""The variation's parts and the runner contract a new task (roto, upscale) plugs into."""

import shutil
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames, task_kinds
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, provenance_attributes
from generation.engine.frames import Window
from generation.engine.looks import MAKERS
from generation.engine.plan import LOOKS
from generation.engine.sequence import frame_path
from generation.engine.spec import VariationResult
from generation.engine.task_kinds import TASKS, TaskError, TaskInfo
from generation.engine.variation import generate_variation

from .conftest import SMALL_FIRST, SMALL_LAST
from .test_variation import _spec as variation_spec
from .test_variation_tasks import REGIONS

CASES = [
    ("sky_replacement", "show"),
    ("set_extension", "show"),
    ("background_fill", "sd"),
    ("atmosphere", "show"),
    ("atmosphere", "sd"),
    ("time_of_day", "sd"),
]


def _task_spec(plate, model, out_dir, task, **changes):
    base = {"first": 1, "last": 3, "task": task, "steps": 3, "matte_pattern": None, "rect": REGIONS["rect"]}
    return variation_spec(plate, model, out_dir, **{**base, **changes})


def _written(out_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out_dir)): p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("task, backend", CASES)
def test_every_task_writes_the_same_bytes_twice(depth_plate, tiny_model_dir, tiny_sd_dir, tmp_path, task, backend):
    model = tiny_model_dir if backend == "show" else tiny_sd_dir
    a = generate_variation(_task_spec(depth_plate, model, tmp_path / "a", task))
    b = generate_variation(_task_spec(depth_plate, model, tmp_path / "b", task))
    first, again = _written(tmp_path / "a"), _written(tmp_path / "b")
    assert len(first) == 2 * len(a.frames) and first.keys() == again.keys()
    assert [name for name in first if first[name] != again[name]] == []
    assert (a.flicker_ratio, a.element_window) == (b.flicker_ratio, b.element_window)


def test_the_first_frames_header_is_read_once(depth_plate, tiny_model_dir, tmp_path, monkeypatch):
    # A fresh copy of the plate: the camera track is not cached for it, so every stage runs.
    plate_dir = Path(depth_plate["plate"]).parents[1]
    shutil.copytree(plate_dir, tmp_path / "plate")
    plate = {"plate": str(tmp_path / "plate" / Path(depth_plate["plate"]).relative_to(plate_dir)), "matte": None}
    real, reads = frames.read_header, []

    def read_header(path, **kw):  # the variation's own reads, not the pixel readers' inside frames
        if sys._getframe(1).f_globals["__name__"] != frames.__name__:
            reads.append(path)
        return real(path, **kw)

    monkeypatch.setattr(frames, "read_header", read_header)
    events = []
    result = generate_variation(
        _task_spec(plate, tiny_model_dir, tmp_path / "v", "atmosphere"), on_progress=lambda *e: events.append(e)
    )
    assert ("track", 1, 3) in events  # tracked, not taken from the cache
    header = oiio.ImageInput.open(frame_path(result.exr_pattern, 1)).spec()
    assert header.getattribute("parallel_track:depth_channel") == "Z"
    assert reads == [frame_path(plate["plate"], 1)]


def test_every_task_names_a_runner_that_loads_and_a_look_it_can_make():
    assert set(MAKERS) == set(LOOKS)
    for task, info in TASKS.items():
        runner = task_kinds.load_runner(task)
        assert callable(runner)
        if runner is generate_variation:
            assert info.look in LOOKS and info.element == "rgba"


def test_a_look_the_variation_cannot_make_is_refused_before_writing(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setitem(TASKS, "sky_replacement", replace(TASKS["sky_replacement"], look="matte"))
    with pytest.raises(ValueError, match="'matte' look"):
        generate_variation(variation_spec(small_demo_plate, tiny_model_dir, tmp_path / "never"))
    assert not (tmp_path / "never").exists()


def test_a_runner_that_cannot_be_loaded_is_a_clear_error(monkeypatch):
    runner = "generation.engine.nowhere:run"
    monkeypatch.setitem(TASKS, "sky_replacement", replace(TASKS["sky_replacement"], runner=runner))
    with pytest.raises(TaskError, match="sky replacement: runner 'generation.engine.nowhere:run'"):
        task_kinds.load_runner("sky_replacement")


def matte_runner(spec, *, on_progress=None, on_frame=None, should_cancel=None):
    """A roto-like runner built on the shared frame writer: it delivers the matte sequence as an A-only
    element and a proxy of the plate darkened under it."""
    start = time.perf_counter()
    frame_list = list(range(spec.first, spec.last + 1))
    display = frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False).display_window

    def read(frame):
        plate = frames.read_channels(frame_path(spec.plate_pattern, frame), ("R", "G", "B"))
        return plate, frames.read_matte(frame_path(spec.matte_pattern, frame))

    def make(k, frame, pixels):
        plate, matte = pixels
        whole = Window(display.x, display.y, display.width, display.height)
        return Delivered(matte[..., None].astype(np.float16), plate * (1 - 0.5 * matte[..., None]), whole, ("A",))

    with Outputs(spec.out_dir) as outputs:
        writer = FrameWriter(spec, outputs, display, provenance_attributes(spec, None, 1.0))
        writer.run(
            frame_list,
            read,
            make,
            progress=on_progress or (lambda *e: None),
            on_frame=on_frame,
            should_cancel=should_cancel,
        )
    return VariationResult(
        frame_list, outputs.exr_pattern, outputs.proxy_pattern, time.perf_counter() - start, 0.0, display.as_dict()
    )


def test_a_new_task_plugs_in_with_its_row_and_a_runner_on_the_frame_writer(small_demo_plate, tmp_path, monkeypatch):
    row = TaskInfo(
        "Toy roto",
        (),
        "roto",
        1.0,
        (1.0, 1.0),
        "centre",
        0.0,
        False,
        element="matte",
        needs_pick=False,
        runner=f"{__name__}:matte_runner",
    )
    monkeypatch.setitem(TASKS, "toy_roto", row)
    assert not row.needs_model
    written = []
    spec = variation_spec(small_demo_plate, "", tmp_path / "roto", task="toy_roto")
    result = task_kinds.load_runner("toy_roto")(spec, on_frame=lambda *f: written.append(f))
    assert [f for f, _, _ in written] == list(range(SMALL_FIRST, SMALL_LAST + 1)) == result.frames
    for frame, exr, proxy in written:
        assert Path(proxy).is_file()
        header = oiio.ImageInput.open(exr).spec()
        assert tuple(header.channelnames) == ("A",)
        assert header.getattribute("parallel_track:task") == "toy_roto"
        assert header.getattribute("parallel_track:model") is None
        element = oiio.ImageBuf(exr).get_pixels(oiio.FLOAT)[..., 0]
        assert np.array_equal(element, frames.read_matte(frame_path(small_demo_plate["matte"], frame)))


def test_the_frame_writer_takes_away_what_it_wrote_when_a_frame_fails(small_demo_plate, tmp_path):
    (tmp_path / "keep.txt").write_text("not ours")
    spec = variation_spec(small_demo_plate, "", tmp_path)
    display = frames.read_header(frame_path(spec.plate_pattern, SMALL_FIRST), verify_pixels=False).display_window
    written = []

    def make(k, frame, plate):
        if k == 3:  # by now frame 1 is on disk: at most two writes run behind
            raise RuntimeError("the last frame cannot be made")
        element = np.zeros((display.height, display.width, 4), np.float16)
        return Delivered(element, plate, Window(display.x, display.y, 1, 1))

    def read(frame):
        return frames.read_channels(frame_path(spec.plate_pattern, frame), ("R", "G", "B"))

    with pytest.raises(RuntimeError, match="last frame"), Outputs(spec.out_dir) as outputs:
        FrameWriter(spec, outputs, display, {}).run(
            list(range(SMALL_FIRST, SMALL_LAST + 1)),
            read,
            make,
            progress=lambda *e: None,
            on_frame=lambda *f: written.append(f),
        )
    assert written and len(outputs.files) == 6
    assert sorted(p.name for p in tmp_path.iterdir()) == ["keep.txt"]
