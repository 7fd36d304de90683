"""Throughput without changing a byte: frames made on a pool, plate frames read once per request, the track's pool."""

import os
from pathlib import Path

import numpy as np
import pytest

from generation.engine import camera, frame_cache, frames, track, variation
from generation.engine.frame_cache import FrameCache
from generation.engine.sequence import frame_path
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


def _counted(monkeypatch, module, name: str, record=lambda *a: 1) -> list:
    """A list that grows by ``record(*args)`` each time ``module.name`` is called (it still runs)."""
    calls: list = []
    real = getattr(module, name)
    monkeypatch.setattr(module, name, lambda *a, **k: calls.append(record(*a)) or real(*a, **k))
    return calls


def _file_names(path, *args) -> str:
    return Path(path).name


def _touch(path: str) -> None:
    """The file's mtime a second later: a changed file to every cache keyed by it."""
    st = Path(path).stat()
    os.utime(path, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))


def _cold() -> None:
    frame_cache.PLATES.clear()
    frame_cache.FLOWS.clear()
    frame_cache.PLATE_SIDES.clear()
    frame_cache.DERIVED.clear()
    frame_cache.PROXIES.clear()
    frame_cache.clear_matte_boxes()


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
    assert frame_cache.PLATE_SIDES.hits >= len(first.frames)  # nor makes the flicker's plate half of a frame again
    # A variation run from cold caches writes what a warm one does, to the byte, and measures the same.
    _cold()
    cold = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c", steps=2, seed=7))
    warm = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "d", steps=2, seed=7))
    assert _written(tmp_path / "a") == _written(tmp_path / "c") == _written(tmp_path / "d")
    assert first.flicker_ratio == cold.flicker_ratio == warm.flicker_ratio
    assert first.coverage == cold.coverage == warm.coverage


def test_a_later_variations_proxies_copy_the_plate_outside_its_tiles_and_are_the_bytes_made_anew(
    small_demo_plate, tiny_model_dir, tmp_path
):
    _cold()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7))
    hits = frame_cache.PROXIES.hits
    warm = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "b", steps=2, seed=8))
    assert frame_cache.PROXIES.hits - hits == len(warm.frames)  # every proxy of the second took the first's plate
    _cold()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c", steps=2, seed=8))
    assert _written(tmp_path / "b") == _written(tmp_path / "c")  # EXRs and proxies, to the byte
    assert _written(tmp_path / "a") != _written(tmp_path / "b")  # the seeds made different variations


@pytest.mark.parametrize("frame_hw, width, aspect", [((540, 960), 480, 1.0), ((500, 1000), 640, 1.0), ((360, 700), 320, 2.0)])
def test_a_proxy_encoded_only_where_the_changed_windows_reach_is_the_whole_proxy_to_the_byte(frame_hw, width, aspect):
    from types import SimpleNamespace

    from generation.engine import colour
    from generation.engine.frame_writer import Delivered, make_frame_proxy

    rng = np.random.default_rng(4)
    h, w = frame_hw
    plate = (rng.random((h, w, 3)) * 3).astype(np.float32)
    plate[5:9, 5:9] = 300.0  # beyond the LUT's domain: the exact processor's pixels
    spec = SimpleNamespace(
        proxy_width=width, pixel_aspect=aspect, working_space="ACEScg", display=None, view=None, config_name=None
    )
    windows = tuple(
        frames.Window(int(x), int(y), int(dx), int(dy))
        for x, y, dx, dy in zip(rng.integers(0, w - 40, 6), rng.integers(0, h - 40, 6), rng.integers(1, 40, 6),
                                rng.integers(1, 40, 6), strict=True)
    )

    def comp(seed: int, spill: int = 0) -> np.ndarray:
        """The plate with new pixels inside ``windows`` (``spill`` px beyond their right edge too)."""
        out = plate.copy()
        fill = np.random.default_rng(seed)
        for win in windows:
            ys, xs = slice(win.y, win.y + win.height), slice(win.x, win.x + win.width + spill)
            out[ys, xs] = fill.random(out[ys, xs].shape).astype(np.float32) * 4.0 - 0.5
        return out

    def proxy(pixels: np.ndarray) -> np.ndarray:
        delivered = Delivered(pixels[..., :1], pixels, frames.Window(0, 0, w, h), changed=windows, plate_key=(h, w, width))
        return make_frame_proxy(delivered, spec)

    frame_cache.PROXIES.clear()
    first = comp(1)
    assert np.array_equal(proxy(first), colour.make_proxy(first, width=width, pixel_aspect=aspect))
    hits = frame_cache.PROXIES.hits
    for seed in (2, 3):
        later = comp(seed)
        assert np.array_equal(proxy(later), colour.make_proxy(later, width=width, pixel_aspect=aspect))
    assert frame_cache.PROXIES.hits == hits + 2
    # A composite that changed pixels beyond the windows it names gets the first proxy's there: wrong bytes.
    spilled = comp(5, spill=12)
    assert not np.array_equal(proxy(spilled), colour.make_proxy(spilled, width=width, pixel_aspect=aspect))
    frame_cache.PROXIES.clear()


def test_the_cards_denoise_inputs_are_made_once_per_request_and_again_when_the_first_plate_changes(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    made = _counted(monkeypatch, variation, "known_and_mask")
    _cold()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7))
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "b", steps=2, seed=8))
    assert len(made) == 1  # the second variation denoises its own seed from the same inputs
    _touch(frame_path(small_demo_plate["plate"], 1001))
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c", steps=2, seed=8))
    assert len(made) == 2
    assert _written(tmp_path / "b") == _written(tmp_path / "c")  # the same inputs made again: the same bytes


def test_on_real_footage_a_later_variations_shortcuts_are_taken_and_write_the_bytes_made_anew(
    tiny_model_dir, tmp_path, monkeypatch
):
    """DAVIS kite-surf (a real camera move: not a pure shift, so the general card sample and coverage), its sky
    matte with the kite-surfer held out: the second variation takes the first's proxies outside its tiles and
    skips sampling the coverage image, and writes what a cold run of it writes, to the byte."""
    from tests.bench.realplates import stage_plate

    folder = real("davis16", "kite-surf")
    plate = stage_plate(
        "kite-surf", sorted((folder / "frames").glob("*.jpg")), tmp_path / "plates", None,
        sorted((folder / "masks").glob("*.png")), 6,
    )
    sampled = _counted(monkeypatch, variation, "card_coverage")

    def spec(name: str, seed: int):
        return _spec(plate, tiny_model_dir, tmp_path / name, first=1001, last=1006, steps=2, seed=seed,
                     holdout_pattern=plate["holdout"], proxy_width=427)

    _cold()
    first = generate_variation(spec("a", 7))
    assert first.coverage == 1.0 and first.camera_model in ("similarity", "homography")  # not a pure shift
    hits = frame_cache.PROXIES.hits
    generate_variation(spec("b", 8))
    assert frame_cache.PROXIES.hits - hits == 6 and sampled == []  # every proxy copied, no coverage image
    _cold()
    generate_variation(spec("c", 8))
    assert _written(tmp_path / "b") == _written(tmp_path / "c")


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


# --------------------------------------------------------------------------------------- the hero frame first

LONG_FIRST, LONG_LAST = 1001, 1020  # long enough for a quick track (track.QUICK_MIN_FRAMES)


@pytest.fixture(scope="module")
def long_plate(tmp_path_factory) -> dict:
    from generation.engine.demo_plate import render_demo_plate

    return render_demo_plate(
        str(tmp_path_factory.mktemp("long")),
        first=LONG_FIRST,
        last=LONG_LAST,
        width=256,
        height=144,
        pan_px_per_frame=2.0,
    )


def _long(plate, model, out, **changes):
    return _spec(plate, model, out, first=LONG_FIRST, last=LONG_LAST, steps=2, **changes)


def test_the_first_frames_proxy_is_written_before_the_full_track(long_plate, tiny_model_dir, tmp_path):
    assert track.has_quick_track(
        _long(long_plate, tiny_model_dir, tmp_path / "x"),
        frames.read_header(frame_path(long_plate["plate"], LONG_FIRST), verify_pixels=False),
    )
    _cold_tracks()
    events = []
    result = generate_variation(
        _long(long_plate, tiny_model_dir, tmp_path / "v"),
        on_progress=lambda stage, k, n: events.append((stage, k, n)),
        on_frame=lambda frame, exr, proxy: events.append(("frame", frame, Path(proxy).exists())),
    )
    n = len(result.frames)
    hero = events.index(("frame", LONG_FIRST, True))
    keys = len(track.quick_keys(n))
    # The quick track (its few frames), the denoise, then the first frame's files, then the full track.
    assert ("track", keys, keys) in events[:hero] and ("track", n, n) not in events[:hero]
    assert ("track", n, n) in events[hero:] and ("denoise", 2, 2) in events[:hero]
    assert [e[1] for e in events if e[0] == "frame"] == result.frames  # every frame once, in order
    assert "card_remade" not in result.timings and result.coverage == 1.0 and result.camera_model == "translation"


def _cold_tracks() -> None:
    _cold()
    track._track_cache.clear()


def test_the_hero_first_path_writes_the_same_bytes_from_1_and_3_workers_and_cold_or_warm(
    long_plate, tiny_model_dir, tmp_path, monkeypatch
):
    results = {}
    for name, workers, cold in (("w1", 1, True), ("w3", 3, True), ("warm", 3, False)):
        monkeypatch.setattr(variation, "frame_workers", lambda workers=workers: workers)
        if cold:
            _cold_tracks()
        results[name] = generate_variation(_long(long_plate, tiny_model_dir, tmp_path / name))
    one = _written(tmp_path / "w1")
    assert len(one) == 2 * (LONG_LAST - LONG_FIRST + 1)
    assert one == _written(tmp_path / "w3") == _written(tmp_path / "warm")
    figures = {(r.flicker_ratio, r.coverage, str(r.element_window)) for r in results.values()}
    assert len(figures) == 1
    # A variation that finds the full track made writes its first frame on the pool with the others, no hero pass.
    assert "hero" in results["w3"].timings and "hero" not in results["warm"].timings


def test_the_generated_region_is_made_once_per_request_and_again_when_a_matte_changes(
    long_plate, tiny_model_dir, tmp_path, monkeypatch
):
    made = _counted(monkeypatch, camera, "generated_region")
    _cold_tracks()
    generate_variation(_long(long_plate, tiny_model_dir, tmp_path / "a"))
    assert made  # the quick card's region and the full track's check
    made.clear()
    generate_variation(_long(long_plate, tiny_model_dir, tmp_path / "b"))
    assert made == []  # the second variation of the request finds both
    spec = _long(long_plate, tiny_model_dir, tmp_path / "c")
    _touch(frame_path(spec.matte_pattern, LONG_LAST))
    generate_variation(spec)
    assert made  # a changed matte frame: made again
    assert _written(tmp_path / "a") == _written(tmp_path / "b") == _written(tmp_path / "c")


def _wrong_quick_track(real):
    """The quick track made to say the camera is locked off while the plate pans."""

    def wrong(*args, **kwargs):
        quick = real(*args, **kwargs)
        locked = camera.identity_track(len(quick.keys))
        return track.QuickTrack(quick.keys, locked, 0.0)

    return wrong


def test_a_card_the_full_track_says_misses_frames_is_made_again_as_the_full_tracks(
    long_plate, tiny_model_dir, tmp_path, monkeypatch
):
    monkeypatch.setattr(variation, "quick_track", _wrong_quick_track(track.quick_track))
    _cold_tracks()
    remade = generate_variation(_long(long_plate, tiny_model_dir, tmp_path / "remade"))
    assert remade.timings.get("card_remade") == 1.0 and remade.coverage == 1.0
    # What it writes is what the full track's card writes with no quick track at all, to the byte.
    monkeypatch.setattr(variation, "has_quick_track", lambda spec, header: False)
    _cold_tracks()
    full = generate_variation(_long(long_plate, tiny_model_dir, tmp_path / "full"))
    assert "hero" not in full.timings
    assert _written(tmp_path / "remade") == _written(tmp_path / "full")
    assert (remade.flicker_ratio, remade.coverage) == (full.flicker_ratio, full.coverage)


def test_without_the_check_a_wrong_quick_card_leaves_frames_uncovered(
    long_plate, tiny_model_dir, tmp_path, monkeypatch
):
    # Break it on purpose: the wrong quick track's card kept, as if it held every frame.
    monkeypatch.setattr(variation, "quick_track", _wrong_quick_track(track.quick_track))
    monkeypatch.setattr(variation, "_card_holds", lambda *args: True)
    _cold_tracks()
    result = generate_variation(_long(long_plate, tiny_model_dir, tmp_path / "v"))
    assert result.coverage < 0.99


def test_a_full_cache_keeps_the_shots_first_frames_plate_and_matte_together(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    # Room for two frames' plate and matte: the shot's first frames stay; the matte of one frame never
    # makes room by dropping the plate of another (both are the shot's).
    h, w = 144, 256
    monkeypatch.setattr(frame_cache, "PLATES", FrameCache(budget=2 * (h * w * 3 * 2 + h * w * 2 + 64)))
    reads = _counted(monkeypatch, frames, "_read_display", _file_names)
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7))
    reads.clear()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "b", steps=2, seed=8))
    first = (
        Path(frame_path(small_demo_plate["plate"], 1001)).name,
        Path(frame_path(small_demo_plate["matte"], 1001)).name,
    )
    assert not set(first) & set(reads)
    assert Path(frame_path(small_demo_plate["plate"], 1004)).name in reads  # the rest read again


def test_the_shift_only_coverage_is_the_general_bilinear_one():
    from generation.engine.card import Card, card_coverage

    card = Card(x=-10, y=5, width=200, height=100, model_h=32, model_w=64)
    generated = (np.random.default_rng(0).random((32, 64)) > 0.3).astype(np.float32)
    box = frames.Window(0, 0, 240, 120)  # reaches beyond the card on every side for some shifts
    for shift in [(0.0, 0.0), (3.25, -7.5), (-40.7, 12.1), (25.0, 30.0)]:
        matrix = np.eye(3)
        matrix[:2, 2] = shift
        u, v = card.coordinates(matrix, box)
        general = np.clip(camera.sample_bilinear(generated, u, v), 0.0, 1.0)
        general[general > 1.0 - 1e-4] = 1.0
        fast = card_coverage(generated, card, matrix, box)
        assert 0 < (general == 0).sum() < general.size and np.abs(fast - general).max() < 1e-6


@pytest.mark.parametrize("motion", ["shift", "homography"])
def test_surely_covered_pixels_are_covered_and_the_carrys_coverage_terms_are_the_sampled_ones(motion):
    from generation.engine import qc
    from generation.engine.card import Card, card_coverage, surely_covered

    card = Card(x=-10, y=5, width=200, height=100, model_h=32, model_w=64)
    box = frames.Window(0, 0, 240, 120)  # beyond the card on every side for some motions
    rng = np.random.default_rng(2)
    matrices = []
    for shift in [(0.0, 0.0), (3.25, -7.5), (-40.7, 12.1), (25.0, 30.0)]:
        matrix = np.eye(3)
        matrix[:2, 2] = shift
        if motion == "homography":
            matrix[:2, :2] += [[0.02, -0.01], [0.015, -0.02]]
            matrix[2, :2] = (2e-5, -1e-5)
        matrices.append(matrix)
    full = np.ones((32, 64), np.float32)
    holed = full.copy()
    holed[10:14, 20:30] = 0.4  # a partly generated patch under the matte
    for generated in (full, holed, (rng.random((32, 64)) > 0.2).astype(np.float32)):
        for matrix in matrices:
            covered = card_coverage(generated, card, matrix, box)
            surely = surely_covered(generated, card, matrix, box)
            assert surely.any() and (covered[surely] == 1.0).all()
            assert surely.sum() > 0.9 * (covered == 1.0).sum()  # it leaves out little that is covered
            # The carry's terms: the sampled ones to the bit, whether or not its shortcut applies.
            inside = surely_covered(full, card, matrix, box)
            for matte in (inside * rng.random(inside.shape).astype(np.float32), np.full(inside.shape, 0.7, np.float32)):
                want = qc.CoverageMeter.terms(matte, covered)
                assert variation.coverage_terms(generated, card, matte, matrix, box) == want
    # The shortcut is taken only where it must be: a hole under the matte is seen (coverage below 1).
    matte = np.zeros((120, 240), np.float32)
    matte[40:80, 60:180] = 1.0
    total, got = variation.coverage_terms(holed, card, matte, np.eye(3), box)
    assert got < total


@pytest.mark.parametrize("magnified", [False, True])
def test_the_shift_only_card_sample_is_the_plain_four_tap_sum_to_the_bit(magnified):
    from generation.engine.card import Card, cubic_taps, sample_card

    card = Card(x=-10, y=5, width=200, height=100, model_h=32, model_w=64)
    box = frames.Window(3, 2, 240, 120)
    if magnified:  # 50 frame rows a model row, 2200 wide: runs of rows longer than a piece of the sample
        card, box = Card(x=-10, y=5, width=2200, height=400, model_h=8, model_w=64), frames.Window(3, 2, 2200, 300)
    rgb = (np.random.default_rng(1).standard_normal((card.model_h, card.model_w, 3)) * 4).astype(np.float32)
    for shift in [(0.0, 0.0), (3.25, -7.5), (-40.7, 12.1)]:
        matrix = np.eye(3)
        matrix[:2, 2] = shift
        sx, sy = card.scale
        u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
        v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
        (xi, xw), (yi, yw) = cubic_taps(u, card.model_w), cubic_taps(v, card.model_h)
        cols = (rgb[:, xi] * xw[None, :, :, None]).sum(axis=2)
        want = cols[yi[:, 0]] * yw[:, 0, None, None]
        for tap in range(1, 4):
            want = want + cols[yi[:, tap]] * yw[:, tap, None, None]
        got = sample_card(rgb, card, matrix, box)
        assert got.dtype == np.float32 and np.array_equal(got.view(np.uint32), want.view(np.uint32))


def test_two_variations_in_flight_make_the_shots_track_once(long_plate, tiny_model_dir, tmp_path, monkeypatch):
    import threading
    import time

    made = []
    real = camera.plate_track

    def slow(paths, **kwargs):
        made.append(len(paths))
        time.sleep(0.3)  # the other variation asks while this one is making it
        return real(paths, **kwargs)

    monkeypatch.setattr(camera, "plate_track", slow)
    _cold_tracks()
    results = {}

    def run(name, seed):
        results[name] = generate_variation(_long(long_plate, tiny_model_dir, tmp_path / name, seed=seed))

    threads = [threading.Thread(target=run, args=(name, seed)) for name, seed in (("a", 1), ("b", 2))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    n = LONG_LAST - LONG_FIRST + 1
    assert sorted(made) == [len(track.quick_keys(n)), n]  # one quick track and one full track for both
    assert results["a"].coverage == results["b"].coverage == 1.0


def _old_pixels(carry, motion, frame, pixels):
    """The composite before the matte spans (session 4's ``_Carry._pixels``): the whole box sampled."""
    from generation.engine.card import card_coverage

    plate, matte, depth = pixels
    box = frames.alpha_bbox(matte, carry.origin)
    element = np.zeros(plate.shape[:2] + (4,), np.float16)
    bs = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
    alpha = matte[bs][..., None]
    generated = carry.look.region(plate, depth, motion, box)
    card_coverage(carry.generated, carry.card, motion, box)
    generated = carry.finishing.regrain(carry.look, generated, frame, (box.x, box.y))
    np.multiply(generated, alpha, out=generated)
    rgb16, alpha16 = generated.astype(np.float16), alpha.astype(np.float16)
    element[bs + (slice(0, 3),)] = rgb16
    element[bs + (slice(3, 4),)] = alpha16
    over = rgb16.astype(np.float32)
    under = 1.0 - alpha16.astype(np.float32)
    over += plate[bs] * under
    np.copyto(plate[bs], over, where=alpha > 0)
    return element, plate


def _matte(h, w, seed):
    """A sky-like matte with holes, soft edges, tiny values and a stray island (some −0 inside too)."""
    rng = np.random.default_rng(seed)
    yy, xx = np.mgrid[0:h, 0:w]
    skyline = h * 0.55 + 12 * np.sin(xx / 9.0) + rng.integers(-3, 4, w)[None, :]
    matte = np.clip((skyline - yy) / 4.0, 0, 1).astype(np.float32)
    matte[10:20, 30:45] = 0.0  # a hole (a tower)
    matte[h - 8 : h - 5, 5:9] = 0.3  # an island far from the rest
    matte[2, 3] = 1e-9  # rounds to 0 in half, still > 0
    matte[matte == 0] = np.where(rng.random((matte == 0).sum()) < 0.5, -0.0, 0.0)
    return matte


@pytest.mark.parametrize("look_name", ["element", "haze", "element-grain", "element-warped"])
def test_the_matte_spans_composite_equals_the_whole_box_where_alpha_is_above_0_and_is_plus_0_elsewhere(look_name):
    from types import SimpleNamespace

    from generation.engine.card import Card
    from generation.engine.looks import Element, Haze
    from generation.engine.upscale_finish import Finishing

    h, w = 96, 150
    rng = np.random.default_rng(3)
    card = Card(x=-6, y=-4, width=170, height=110, model_h=32, model_w=48)
    rgb = (rng.standard_normal((32, 48, 3)) * 3).astype(np.float32)  # negatives: generated × 0 gives −0
    rgb[5, 7] = np.inf  # inf × 0 is NaN: alpha 0 is still +0
    look = Haze(card, rgb, 0.4) if look_name == "haze" else Element(card, rgb)
    grain = _grain_profile().to_dict() if look_name == "element-grain" else None
    finishing = Finishing("", grain, seed=4)
    assert finishing.regrains(look) == (grain is not None)
    carry = SimpleNamespace(
        plan=SimpleNamespace(
            display=frames.Window(0, 0, w, h), matte_box=lambda frame, m: frames.alpha_bbox(m, frames.Window(0, 0, w, h))
        ),
        origin=frames.Window(0, 0, w, h),
        look=look,
        generated=np.ones((32, 48), np.float32),
        card=card,
        finishing=finishing,
    )
    motion = np.eye(3)
    motion[:2, 2] = (2.75, -1.5)
    if look_name == "element-warped":
        motion[0, 1] = 0.01  # not a pure shift: the general bicubic path
    matte = _matte(h, w, 5)
    plate = (rng.random((h, w, 3)) * 2).astype(np.float32)
    old_element, old_comp = _old_pixels(carry, motion, 1001, (plate.copy(), matte, None))
    delivered = variation._Carry._pixels(carry, motion, 1001, (plate.copy(), matte, None))
    assert delivered.element_over_data  # the element is its data window's pixels alone: place it in the frame
    dw, new_comp = delivered.data_window, delivered.proxy_rgb
    assert delivered.element.shape == (dw.height, dw.width, 4)
    new_element = np.zeros_like(old_element)
    new_element[dw.y : dw.y + dw.height, dw.x : dw.x + dw.width] = delivered.element
    keep = matte > 0
    assert len(variation.matte_spans(matte[: h, :], frames.Window(0, 0, w, h))) > 1
    assert np.array_equal(new_element[keep].view(np.uint16), old_element[keep].view(np.uint16))
    assert np.array_equal(new_comp.view(np.uint32), old_comp.view(np.uint32))  # all of it: alpha 0 is the plate
    assert not new_element[~keep].view(np.uint16).any()  # +0 in every channel, no −0, no NaN
    assert (np.signbit(old_element[~keep]) & (old_element[~keep] == 0)).any()  # the old path had −0 there


def _grain_profile():
    from .test_grain import _profile

    return _profile(0.02)


def test_the_matte_spans_hold_every_matte_pixel_exactly_once_and_less_than_the_box():
    for seed, tile in [(0, 1), (1, 5), (2, 8), (3, 32)]:
        matte = _matte(97, 151, seed)
        box = frames.alpha_bbox(matte, frames.Window(0, 0, 151, 97))
        sub = matte[box.y : box.y + box.height, box.x : box.x + box.width]
        count = np.zeros(matte.shape, int)
        for s in variation.matte_spans(sub, box, tile):
            assert box.x <= s.x and s.x + s.width <= box.x + box.width and box.y <= s.y
            assert s.y + s.height <= box.y + box.height
            count[s.y : s.y + s.height, s.x : s.x + s.width] += 1
        assert count.max() == 1 and (count[matte > 0] == 1).all()
        if tile <= 8:
            assert count.sum() < 0.8 * box.width * box.height
    assert variation.matte_spans(np.zeros((5, 5), np.float32), frames.Window(0, 0, 5, 5)) == []


def test_each_matte_frames_box_is_found_once_per_request_and_again_when_the_file_changes(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    boxes = _counted(monkeypatch, frames, "alpha_bbox")
    _cold()
    first = generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7))
    assert 0 < len(boxes) <= len(first.frames)  # card, its check and the frames: one box a matte frame
    boxes.clear()
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "b", steps=2, seed=8))
    assert boxes == []
    _touch(frame_path(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c").matte_pattern, first.frames[0]))
    generate_variation(_spec(small_demo_plate, tiny_model_dir, tmp_path / "c", steps=2, seed=8))
    assert len(boxes) == 1  # the changed file's box, found again
    assert _written(tmp_path / "b") == _written(tmp_path / "c")


def test_a_plate_frame_is_decoded_once_with_its_alpha_and_a_partial_alpha_still_excludes(
    small_demo_plate, tiny_model_dir, tmp_path, monkeypatch
):
    decodes = _counted(monkeypatch, frames, "_read_display", _file_names)
    _cold()
    frame_cache.OPAQUE.clear()
    spec = _spec(small_demo_plate, tiny_model_dir, tmp_path / "a", steps=2, seed=7)
    assert "A" in frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False).channels
    generate_variation(spec)
    plate_names = {Path(frame_path(spec.plate_pattern, f)).name for f in range(spec.first, spec.last + 1)}
    plate_decodes = [name for name in decodes if name in plate_names]
    assert sorted(plate_decodes) == sorted(plate_names)  # RGB and the alpha the track checks: one decode a frame
    # A partial alpha found in that decode is what a decode of the alpha alone gives, and excludes as before.
    partial = tmp_path / "partial.exr"
    alpha = np.zeros((8, 8), np.float32)
    alpha[2:5, 3:6] = 1.0
    rgba = np.dstack([np.ones((8, 8, 3), np.float32), alpha])
    frames.write_exr(partial, rgba, display_window=frames.Window(0, 0, 8, 8))
    frame_cache.read_plate(str(partial), ("R", "G", "B"), {})
    decodes.clear()
    found = camera._alpha_excludes(str(partial), ("R", "G", "B", "A"))
    assert decodes == [] and np.array_equal(found, frames.read_channels(partial, ["A"])[..., 0])


def test_half_frames_are_kept_as_stored_and_handed_out_as_the_float_read_to_the_bit(tmp_path):
    values = np.array([0.0, -0.0, 1.0, 0.5, 2.0, -3.25, 65504.0, np.inf, -np.inf, np.nan, 6e-8, 1.0009766], np.float32)
    rgba = np.resize(values, (6, 8, 4)).astype(np.float16).astype(np.float32)
    path = tmp_path / "plate.exr"
    frames.write_exr(path, rgba, display_window=frames.Window(0, 0, 8, 6))
    for how in [("R", "G", "B"), ("R", "G", "B", "A"), ("A",)]:
        half = frames.read_channels(path, how, half=True)
        assert half.dtype == np.float16
        assert np.array_equal(half.astype(np.float32), frames.read_channels(path, how), equal_nan=True)
    # Converted colour is float32 whatever is asked (the conversion is not exact in half).
    converted = frames.read_channels(path, ("R", "G", "B"), half=True, colourspace="ACES2065-1", working_space="ACEScg")
    assert converted.dtype == np.float32
    # A matte outside 0..1 (or with -0, NaN) is clipped as before; one inside it is kept as stored.
    for name, matte in (("wild", rgba), ("tame", np.clip(np.nan_to_num(rgba), 0, 1))):
        file = tmp_path / f"{name}.exr"
        frames.write_exr(file, matte, display_window=frames.Window(0, 0, 8, 6))
        stored = frames.read_matte(file, half=True)
        assert stored.dtype == (np.float16 if name == "tame" else np.float32)
        assert np.array_equal(stored.astype(np.float32), frames.read_matte(file), equal_nan=True)
    cache = FrameCache()
    for _ in range(2):  # the decode, then the kept half: the float32 a plain read gives, bit for bit
        got = cache.get_or_read(str(path), "x", lambda: frames.read_channels(path, ("R", "G", "B"), half=True))
        assert got.dtype == np.float32
        assert np.array_equal(got.view(np.uint32), frames.read_channels(path, ("R", "G", "B")).view(np.uint32))
    assert cache.nbytes == 6 * 8 * 3 * 2


def test_the_tracks_frames_prepared_on_its_read_pool_give_the_streamed_track(long_plate, monkeypatch):
    paths = [frame_path(long_plate["plate"], f) for f in range(LONG_FIRST, LONG_LAST + 1)]
    mattes = [frames.read_matte(frame_path(long_plate["matte"], f)) for f in range(LONG_FIRST, LONG_LAST + 1)]
    streamed = camera.estimate_track([luma(frames.read_channels(p, ("R", "G", "B"))) for p in paths], mattes)
    for cores in (1, 3):
        monkeypatch.setattr(camera, "usable_cores", lambda cores=cores: cores)
        pooled = camera.plate_track(paths, exclude=lambda k: mattes[k])
        assert np.array_equal(pooled.matrices, streamed.matrices) and pooled.model == streamed.model != "locked"

    def broken(path):
        raise frames.FrameError(path, "unreadable")

    with pytest.raises(frames.FrameError):  # frame 0 failing fails the frames waiting for it, no hang
        camera.plate_track(paths, exclude=lambda k: mattes[k], read_rgb=broken)
