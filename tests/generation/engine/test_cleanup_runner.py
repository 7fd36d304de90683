"""The cleanup runner on a real plate (Sintel's camera move): RGBA element EXRs over the plate, the plate
untouched outside the matte bit for bit, the show model only where nothing is revealed, determinism."""

import numpy as np
import OpenImageIO as oiio
import pytest

from generation.engine import frames
from generation.engine.cleanup_runner import cleanup_variation
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.engine.spec import VariationSpec
from tests.realdata import testdata as real_footage

FIRST, LAST = 1001, 1006
CROP = (slice(20, 180), slice(620, 876))
DISPLAY = Window(0, 0, 256, 160)


@pytest.fixture(scope="module")
def shot(tmp_path_factory):
    """Sintel frames 16-21 (a crop) as a scene-linear EXR plate with a grey box moving right across them and one that stays put,
    and its matte: the box to remove."""
    root = tmp_path_factory.mktemp("cleanup-shot")
    plate, matte = str(root / "plate" / "plate.####.exr"), str(root / "matte" / "remove.####.exr")
    rig = str(root / "rig" / "rig.####.exr")
    for sub in ("plate", "matte", "rig"):
        (root / sub).mkdir()
    originals = {}
    for i, f in enumerate(range(FIRST, LAST + 1)):
        buf = oiio.ImageBuf(str(real_footage("sintel-demo", f"frame_{16 + i:04d}.png")))
        rgb = (buf.get_pixels(oiio.FLOAT)[CROP][..., :3]) ** 2.2
        m = np.zeros(rgb.shape[:2], np.float32)
        m[50:110, 40 + 12 * i : 80 + 12 * i] = 1.0
        r = np.zeros_like(m)
        r[20:60, 170:230] = 1.0  # a rig that stays put on screen: what it hides is never revealed
        originals[f] = rgb.copy()
        rgb[(m > 0) | (r > 0)] = 0.18
        frames.write_exr(frame_path(plate, f), rgb, display_window=DISPLAY, channel_names="RGB")
        frames.write_exr(frame_path(matte, f), m[..., None], display_window=DISPLAY, channel_names=("A",))
        frames.write_exr(frame_path(rig, f), np.maximum(m, r)[..., None], display_window=DISPLAY, channel_names=("A",))
    return {"plate": plate, "matte": matte, "rig": rig, "originals": originals}


def _spec(shot, out, model, **changes) -> VariationSpec:
    fields = dict(
        plate_pattern=shot["plate"], matte_pattern=shot["matte"], rect=None, first=FIRST, last=LAST,
        model_path=model, seed=3, steps=4, out_dir=str(out), task="cleanup",
        attributes={"DateTime": "2026:01:01 00:00:00"},  # a fixed stamp: the rest of the bytes are ours
    )
    fields.update(changes)
    return VariationSpec(**fields)


def _comp(exr: str, plate: str) -> tuple[np.ndarray, np.ndarray]:
    element = oiio.ImageBuf(exr)
    spec = element.spec()
    rgba = oiio.ImageBufAlgo.crop(element, element.roi_full)  # the element over the display window
    e = rgba.get_pixels(oiio.FLOAT, oiio.ROI(0, spec.full_width, 0, spec.full_height, 0, 1, 0, 4))
    p = frames.read_channels(plate, ("R", "G", "B"))
    return e, p


def test_a_real_plate_cleaned_up_outside_untouched(shot, tiny_model_dir, tmp_path):
    streamed = []
    result = cleanup_variation(_spec(shot, tmp_path / "v", tiny_model_dir), on_frame=lambda f, e, p: streamed.append(f))
    assert streamed == list(range(FIRST, LAST + 1)) and result.coverage == 1.0
    for f in result.frames:
        exr = frame_path(result.exr_pattern, f)
        element = oiio.ImageBuf(exr)
        assert element.spec().format == oiio.HALF and element.spec().channelnames == ("R", "G", "B", "A")
        e, p = _comp(exr, frame_path(shot["plate"], f))
        matte = frames.read_matte(frame_path(shot["matte"], f))
        comp = e[..., :3] + p * (1 - e[..., 3:])
        assert np.array_equal(comp[matte == 0], p[matte == 0])  # the plate, bit for bit
        assert np.array_equal(e[..., 3], matte.astype(np.float16).astype(np.float32))
        # the moving grey box is gone: the fill is much nearer the original than the box was
        hole = matte > 0
        truth = shot["originals"][f]
        assert np.abs(comp[hole] - truth[hole]).mean() < 0.5 * np.abs(p[hole] - truth[hole]).mean()
    assert 0.0 < result.flicker_ratio < 1.2
    info = oiio.ImageBuf(frame_path(result.exr_pattern, FIRST)).spec()
    assert info.getattribute("parallel_track:task") == "cleanup"
    assert float(info.getattribute("parallel_track:cleanup_revealed")) > 0.5


def test_same_seed_same_bytes_other_seed_differs_only_where_generated(shot, tiny_model_dir, tmp_path):
    """With the rig too: what it hides is never revealed, so the (tiny, untrained) model makes it."""
    a = cleanup_variation(_spec(shot, tmp_path / "a", tiny_model_dir, seed=1, matte_pattern=shot["rig"]))
    b = cleanup_variation(_spec(shot, tmp_path / "b", tiny_model_dir, seed=1, matte_pattern=shot["rig"]))
    c = cleanup_variation(_spec(shot, tmp_path / "c", tiny_model_dir, seed=2, matte_pattern=shot["rig"]))
    for f in a.frames:
        with open(frame_path(a.exr_pattern, f), "rb") as x, open(frame_path(b.exr_pattern, f), "rb") as y:
            assert x.read() == y.read()
    generated = float(oiio.ImageBuf(frame_path(a.exr_pattern, FIRST)).spec().getattribute(
        "parallel_track:cleanup_generated"))
    ea = [_comp(frame_path(a.exr_pattern, f), frame_path(shot["plate"], f))[0] for f in a.frames]
    ec = [_comp(frame_path(c.exr_pattern, f), frame_path(shot["plate"], f))[0] for f in c.frames]
    differs = np.mean([np.any(x != y, axis=-1).sum() / max((x[..., 3] > 0).sum(), 1) for x, y in zip(ea, ec, strict=True)])
    assert generated > 0.1 and 0 < differs <= generated + 0.02  # only the never-revealed part changes with the seed


def test_bad_regions_are_refused_and_nothing_written(shot, tiny_model_dir, tmp_path):
    empty = str(tmp_path / "empty" / "none.####.exr")
    (tmp_path / "empty").mkdir()
    for f in range(FIRST, LAST + 1):
        frames.write_exr(frame_path(empty, f), np.zeros((160, 256, 1), np.float32), display_window=DISPLAY,
                         channel_names=("A",))
    for name, changes, message in [
        ("rect", dict(matte_pattern=None, rect=(0, 0, 0, 0)), "does not cover"),
        ("empty", dict(matte_pattern=empty), "nothing to remove"),
        ("range", dict(last=LAST + 5), "1011|exist|missing|not found"),
    ]:
        out = tmp_path / f"out-{name}"
        with pytest.raises(ValueError, match=message):
            cleanup_variation(_spec(shot, out, tiny_model_dir, **changes))
        assert not out.exists()
