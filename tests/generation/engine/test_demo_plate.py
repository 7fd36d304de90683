import json
from pathlib import Path

import numpy as np
import pytest

from generation.engine.demo_plate import APPROVAL_NOTE, render_demo_plate, render_lookdev_skies
from generation.engine.frames import read_header, read_matte, read_rgba, scan_sequence


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return render_demo_plate(tmp_path_factory.mktemp("demo"), first=1001, last=1003, width=480, height=270)


def _frame(pattern: str, frame: int) -> str:
    return pattern.replace("####", str(frame))


def test_it_writes_half_zips_acescg_rgba_frames(demo: dict) -> None:
    assert demo["plate"].endswith("plate/demo_plate.####.exr") and (demo["first"], demo["last"]) == (1001, 1003)
    scan = scan_sequence(demo["plate"])
    assert scan.missing == [] and len(scan.frames) == 3
    header = scan.frames[0]
    assert header.channels == ("R", "G", "B", "A") and set(header.channel_formats) == {"half"}
    assert header.compression == "zips" and header.display_window.width == 480
    rgba, _ = read_rgba(_frame(demo["plate"], 1001))
    assert (rgba[..., 3] == 1).all()
    assert 0.3 < rgba[:20, ..., :3].mean() < 1.0 and rgba[..., :3].max() > 2.5  # sky; lit windows


def test_matte_is_sky_and_aligned_with_the_plate(demo: dict) -> None:
    matte = read_matte(_frame(demo["matte"], 1002))
    rgba, _ = read_rgba(_frame(demo["plate"], 1002))
    assert read_header(_frame(demo["matte"], 1002)).channels == ("R", "G", "B", "A")
    assert matte[0].min() == 1 and matte[-1].max() == 0
    assert 0 < np.mean((matte > 0) & (matte < 1)) < 0.05  # anti-aliased edge only
    luminance = rgba[..., :3].mean(axis=2)
    sky_rows = slice(0, 200)
    sky, buildings = luminance[sky_rows][matte[sky_rows] == 1], luminance[sky_rows][matte[sky_rows] == 0]
    assert np.median(sky) > 1.5 * np.median(buildings)


def test_content_pans_by_pan_px_between_frames(demo: dict) -> None:
    a, b = read_matte(_frame(demo["matte"], 1001)), read_matte(_frame(demo["matte"], 1002))
    shifts = range(-6, 7)
    costs = [np.abs(a[:, 10:-10] - np.roll(b, -s, axis=1)[:, 10:-10]).mean() for s in shifts]
    assert list(shifts)[int(np.argmin(costs))] == 3 and min(costs) < 1e-3


def test_lookdev_skies_are_varied_and_approved(tmp_path: Path) -> None:
    paths = render_lookdev_skies(tmp_path, count=10, size=(16, 32))
    approvals = json.loads((tmp_path / "approvals.json").read_text())
    assert sorted(approvals) == sorted(Path(p).name for p in paths)
    assert set(approvals.values()) == {APPROVAL_NOTE}
    means = [read_rgba(p)[0][..., :3].mean() for p in paths]
    assert read_rgba(paths[0])[0].shape == (16, 32, 4) and max(means) > 3 * min(means)
