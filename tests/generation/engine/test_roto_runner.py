"""The roto runner: key frames from an EXR matte sequence with gaps, a half A matte per plate frame out."""

import subprocess
import sys
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames
from generation.engine.frames import Window
from generation.engine.inpaint import Cancelled
from generation.engine.roto import RotoError
from generation.engine.roto_runner import roto_variation
from generation.engine.sequence import frame_path
from generation.engine.spec import VariationSpec
from tests.realdata import testdata as real_footage

OIIOTOOL = Path(sys.executable).parent / "oiiotool"
FIRST, LAST = 1001, 1008
CROP = (slice(150, 310), slice(300, 540))
DISPLAY = Window(0, 0, 240, 160)
DATA = Window(0, 2, 240, 156)  # a data window inside the display window, as a real plate may have


def _read(path) -> np.ndarray:
    return oiio.ImageBuf(str(path)).get_pixels(oiio.UINT8)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """A scene-linear plate EXR sequence of blackswan (a crop) and key-frame mattes at its first and last frame."""
    folder = real_footage("davis16", "blackswan")
    root = tmp_path_factory.mktemp("roto-shot")
    plate, keys = str(root / "plate" / "plate.####.exr"), str(root / "keys" / "roto.####.exr")
    (root / "plate").mkdir()
    (root / "keys").mkdir()
    for i, f in enumerate(range(FIRST, LAST + 1)):
        rgb = (_read(folder / "frames" / f"{i:05d}.jpg")[CROP].astype(np.float32) / 255) ** 2.2
        frames.write_exr(frame_path(plate, f), rgb, display_window=DISPLAY, data_window=DATA, channel_names="RGB")
        if f in (FIRST, LAST):
            matte = (_read(folder / "masks" / f"{i:05d}.png")[CROP][..., :1] > 127).astype(np.float32)
            frames.write_exr(frame_path(keys, f), matte, display_window=DISPLAY, channel_names=("A",))
    return {"plate": plate, "keys": keys, "root": root}


def _spec(shot, out: Path, **changes) -> VariationSpec:
    fields = dict(
        plate_pattern=shot["plate"],
        matte_pattern=shot["keys"],
        rect=None,
        first=FIRST,
        last=LAST,
        model_path="",
        seed=3,
        steps=0,
        out_dir=str(out),
        task="roto",
        attributes={"parallel_track:request": "42"},
    )
    return VariationSpec(**(fields | changes))


def test_it_writes_a_half_matte_per_frame_with_the_plates_windows_and_provenance(shot, tmp_path):
    streamed = []
    result = roto_variation(_spec(shot, tmp_path / "pass1"), on_frame=lambda f, exr, jpg: streamed.append(f))
    assert streamed == result.frames == list(range(FIRST, LAST + 1))
    for f in result.frames:
        exr = frame_path(result.exr_pattern, f)
        header = frames.read_header(exr)
        assert header.channels == ("A",) and header.channel_formats == ("half",)
        assert header.display_window == DISPLAY and header.data_window == DATA
        assert Path(frame_path(result.proxy_pattern, f)).is_file()
    info = subprocess.run(
        [OIIOTOOL, "--info", "-v", frame_path(result.exr_pattern, 1004)], capture_output=True, text=True, check=True
    ).stdout
    assert 'parallel_track:roto_keyframes: "1001,1008"' in info and 'parallel_track:request: "42"' in info
    assert "full/display size: 240 x 160" in info and "pixel data origin: x=0, y=2" in info
    matte = frames.read_matte(frame_path(result.exr_pattern, 1004))
    assert 0.05 < (matte > 0.5).mean() < 0.6, "the swan should be matted, not nothing or everything"
    assert result.flicker_ratio > 0


def test_it_refuses_key_frames_that_do_not_fit_and_writes_nothing(shot, tmp_path):
    bad = tmp_path / "bad"
    bad.mkdir()
    pattern = str(bad / "roto.####.exr")
    frames.write_exr(
        frame_path(pattern, 1003),
        np.ones((80, 120, 1), np.float32),
        display_window=Window(0, 0, 120, 80),
        channel_names=("A",),
    )
    with pytest.raises(RotoError, match="key frame 1003 is 120x80, the plate is 240x160"):
        roto_variation(_spec(shot, tmp_path / "out", matte_pattern=pattern))
    assert not (tmp_path / "out").exists()


def test_it_refuses_a_key_sequence_with_no_frame_in_the_range(shot, tmp_path):
    with pytest.raises(RotoError, match="no key frame"):
        roto_variation(_spec(shot, tmp_path / "out", first=1002, last=1007))
    assert not (tmp_path / "out").exists()


def test_a_cancelled_pass_leaves_nothing_behind(shot, tmp_path):
    asked = []
    with pytest.raises(Cancelled):
        roto_variation(_spec(shot, tmp_path / "out"), should_cancel=lambda: asked.append(1) or len(asked) > 3)
    assert not (tmp_path / "out").exists()


def test_a_correction_pass_keeps_locked_frames_and_changes_only_between_neighbours(shot, tmp_path):
    first = roto_variation(_spec(shot, tmp_path / "pass1"))
    keys = tmp_path / "keys2"
    keys.mkdir()
    pattern = str(keys / "roto.####.exr")
    for f in (FIRST, 1005, LAST):  # the artist fixed frame 1005 (here: the truth carried over from pass 1)
        source = shot["keys"] if f in (FIRST, LAST) else first.exr_pattern
        matte = frames.read_matte(frame_path(source, f))[..., None]
        frames.write_exr(frame_path(pattern, f), matte, display_window=DISPLAY, channel_names=("A",))
    params = {"previous_pattern": first.exr_pattern, "locked": [1003]}
    second = roto_variation(_spec(shot, tmp_path / "pass2", matte_pattern=pattern), params=params)
    one = {f: frames.read_matte(frame_path(first.exr_pattern, f)) for f in first.frames}
    two = {f: frames.read_matte(frame_path(second.exr_pattern, f)) for f in second.frames}
    assert np.array_equal(two[1003], one[1003]), "a locked frame must survive the correction pass"
    assert not np.array_equal(two[1004], one[1004]), "frames next to the new key frame are recomputed"
    assert (
        'parallel_track:roto_locked: "1003"'
        in subprocess.run(
            [OIIOTOOL, "--info", "-v", frame_path(second.exr_pattern, 1003)], capture_output=True, text=True, check=True
        ).stdout
    )


def test_locked_frames_without_an_earlier_pass_are_refused(shot, tmp_path):
    with pytest.raises(RotoError, match="previous_pattern"):
        roto_variation(_spec(shot, tmp_path / "out"), params={"locked": [1003]})
    assert not (tmp_path / "out").exists()
