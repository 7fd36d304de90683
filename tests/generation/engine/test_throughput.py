"""Throughput without changing a byte: frames made on a pool, plate frames read once per request, the track's pool."""

from pathlib import Path

import numpy as np
import pytest

from generation.engine import camera, frame_cache, frames, variation
from generation.engine.frame_cache import FrameCache
from generation.engine.variation import generate_variation
from tests.bench.realplates import known_move, luma, read_rgb
from tests.realdata import testdata as real

from .test_variation import _spec


def _written(out_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(out_dir)): p.read_bytes() for p in sorted(out_dir.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("region", ["matte", "rect"])
def test_frames_made_on_a_pool_are_the_bytes_one_thread_writes(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch, region
):
    changes = {} if region == "matte" else {"matte_pattern": None, "rect": (20, 10, 120, 60)}
    results, order = {}, {}
    for workers in (1, 3):
        monkeypatch.setattr(variation, "frame_workers", lambda workers=workers: workers)
        _cold()
        seen = []
        results[workers] = generate_variation(
            _spec(small_demo_plate, tiny_model_dir, tmp_path / f"w{workers}", steps=2, **changes),
            on_frame=lambda frame, exr, proxy, seen=seen: seen.append((frame, Path(proxy).exists())),
        )
        order[workers] = seen
    one, pooled = _written(tmp_path / "w1"), _written(tmp_path / "w3")
    assert len(one) == 2 * len(results[1].frames) and one.keys() == pooled.keys()
    assert [name for name in one if one[name] != pooled[name]] == []
    a, b = results[1], results[3]
    assert (a.flicker_ratio, a.coverage, a.element_window) == (b.flicker_ratio, b.coverage, b.element_window)
    # Reported in frame order, each once its proxy is on disk: the first frame's proxy first.
    assert order[3] == [(f, True) for f in results[3].frames] == order[1]


def _cold() -> None:
    frame_cache.PLATES.clear()
    frame_cache.FLOWS.clear()


def test_a_request_reads_each_plate_frame_once_and_every_variation_the_same_bytes(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    reads: list[str] = []
    real_read = frames.read_channels

    def counted(path, *args, **kwargs):
        reads.append(str(path))
        return real_read(path, *args, **kwargs)

    monkeypatch.setattr(frames, "read_channels", counted)
    _cold()
    first = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7))
    plate_reads = [p for p in reads if "demo_plate" in p]
    assert sorted(set(plate_reads)) == sorted(plate_reads)  # track, card and frames shared one read per frame
    reads.clear()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "b", steps=2, seed=8))
    assert [p for p in reads if "demo_plate" in p] == []  # the second variation of the request reads none
    assert frame_cache.FLOWS.hits >= len(first.frames) - 1  # nor measures the plate's own flow again
    # A variation run from cold caches writes what a warm one does, to the byte, and measures the same.
    _cold()
    cold = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c", steps=2, seed=7))
    warm = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "d", steps=2, seed=7))
    assert _written(tmp_path / "a") == _written(tmp_path / "c") == _written(tmp_path / "d")
    assert first.flicker_ratio == cold.flicker_ratio == warm.flicker_ratio
    assert first.coverage == cold.coverage == warm.coverage


def test_a_full_cache_keeps_its_first_frames_hands_out_copies_and_sees_a_changed_file(tmp_path):
    window = frames.Window(0, 0, 4, 4)
    paths = []
    for k in range(4):
        path = tmp_path / f"f.{k}.exr"
        frames.write_exr(path, np.full((4, 4, 3), k, np.float32), display_window=window, channel_names=("R", "G", "B"))
        paths.append(str(path))
    third = np.float32(1 / 3)  # not a half value: kept as float32

    def reader(p):
        return lambda: frames.read_channels(p, ("R", "G", "B")) + third

    frame_bytes = 4 * 4 * 3 * 4
    cache = FrameCache(budget=2 * frame_bytes)
    for p in paths:
        cache.get_or_read(p, "rgb", reader(p), group="shot")
    assert cache.misses == 4 and cache.nbytes == 2 * frame_bytes
    # A shot read front to back again: its first two frames are still there (LRU would have kept none).
    got = cache.get_or_read(paths[0], "rgb", reader(paths[0]), group="shot")
    assert cache.hits == 1 and got[0, 0, 0] == third
    got[...] = 99.0  # a caller compositing in place
    assert cache.get_or_read(paths[0], "rgb", reader(paths[0]), group="shot")[0, 0, 0] == third
    # Another shot takes the room of this one's least recently used frames.
    cache.get_or_read(paths[3], "rgb", reader(paths[3]), group="other")
    assert cache.get_or_read(paths[3], "rgb", reader(paths[3]), group="other")[0, 0, 0] == 3 + third
    assert cache.hits == 3
    # A frame rewritten on disk is read again.
    frames.write_exr(paths[3], np.full((4, 4, 3), 7, np.float32), display_window=window, channel_names=("R", "G", "B"))
    assert cache.get_or_read(paths[3], "rgb", reader(paths[3]), group="other")[0, 0, 0] == 7 + third
    # Half plates are kept as half (twice the frames in the budget) and come back as the same float32.
    halves = FrameCache(budget=2 * frame_bytes)
    fresh = [halves.get_or_read(p, "rgb", lambda p=p: frames.read_channels(p, ("R", "G", "B"))) for p in paths]
    again = [halves.get_or_read(p, "rgb", lambda: pytest.fail("read again")) for p in paths]
    assert all(a.dtype == np.float32 and np.array_equal(a, b) for a, b in zip(fresh, again, strict=True))


def test_the_tracks_pool_does_not_change_the_track(monkeypatch):
    rgb = read_rgb(real("sintel-demo", "frame_0016.png"))[60:300, 200:600]
    moved, _ = known_move(rgb, "mix", n=5)
    tracks = []
    for size in (1, 3):
        monkeypatch.setattr(camera, "usable_cores", lambda size=size: size)
        tracks.append(camera.estimate_track([luma(f) for f in moved]))
    assert np.array_equal(tracks[0].matrices, tracks[1].matrices)
