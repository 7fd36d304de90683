"""The plate's camera track for a variation (:mod:`camera`), cached per plate, region, range and file mtimes.

What is not the camera is kept out of it: the region's own matte (what will be replaced is often what
moves, a sky's clouds), the spec's ``holdout_pattern`` mattes (moving people, cars) and a partial plate
alpha. A ``track_file`` overrides the estimate; motion-vector channels come next; then feature tracks.

A shot of :data:`QUICK_MIN_FRAMES` or more tracked from its features has a quick track too
(:func:`quick_track`): :data:`QUICK_INTERVALS` + 1 frames spread over the shot, tracked coarsely
(:data:`QUICK_WORK_SIZE`, no dense refinement). The variation makes its card from it, so the first
frame's proxy is written before the full track of every frame exists (:mod:`variation`); the full
track then places the other frames, and the card is checked to hold what they need.
"""

from __future__ import annotations

import math
import os
import threading
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from generation.engine import camera, frame_cache, frames
from generation.engine.camera import CameraTrack
from generation.engine.sequence import frame_path
from generation.engine.spec import CancelFn, ProgressFn, VariationSpec

AP1_LUMA = camera.AP1_LUMA  # ACEScg luminance weights
_TRACK_CACHE_SIZE = 16
_track_cache: OrderedDict[tuple, CameraTrack] = OrderedDict()
_track_lock = threading.Lock()
_making: dict[tuple, threading.Event] = {}  # tracks being made now, by key
QUICK_MIN_FRAMES = 16  # shorter shots are tracked in full before their card (it takes as long)
QUICK_INTERVALS = 8  # the quick track's frames split the shot into this many spans
QUICK_WORK_SIZE = 512  # largest side the quick track's features are tracked at
QUICK_ERROR_WORK_PX = 1.5  # what a coarse fit may be off by, in working pixels (its RANSAC threshold is 1)


def luma(rgb: np.ndarray) -> np.ndarray:
    """Scene-linear ACEScg luminance of (..., 3) RGB."""
    return rgb @ AP1_LUMA


def _mtimes(pattern: str | None, first: int, last: int) -> tuple:
    if not pattern:
        return ()
    return tuple(os.stat(frame_path(pattern, f)).st_mtime_ns for f in range(first, last + 1))


def _key(spec: VariationSpec, paths: list[str]) -> tuple:
    return (
        os.path.abspath(spec.plate_pattern),
        spec.first,
        spec.last,
        spec.matte_pattern,
        spec.rect,
        spec.holdout_pattern,
        spec.track_file,
        spec.plate_colourspace,
        tuple(os.stat(p).st_mtime_ns for p in paths),
        _mtimes(spec.matte_pattern, spec.first, spec.last),
        _mtimes(spec.holdout_pattern, spec.first, spec.last),
        os.stat(spec.track_file).st_mtime_ns if spec.track_file and os.path.exists(spec.track_file) else None,
    )


def _cached(key: tuple, make: Callable[[], object], should_cancel: CancelFn | None = None):
    """``(make()'s value for key, whether it was cached)``. One maker per key at a time: a variation that
    asks while another (two in flight, a Celery worker's threads) is making it waits for that one's."""
    while True:
        with _track_lock:
            if key in _track_cache:
                _track_cache.move_to_end(key)
                return _track_cache[key], True
            making = _making.get(key)
            if making is None:
                making = _making[key] = threading.Event()
                break
        while not making.wait(0.1):  # then take its value (or make it, if that maker failed)
            if should_cancel is not None and should_cancel():
                from generation.engine.inpaint import Cancelled

                raise Cancelled("cancelled while waiting for the shot's camera track")
    try:
        value = make()
        with _track_lock:
            _track_cache[key] = value
            while len(_track_cache) > _TRACK_CACHE_SIZE:
                _track_cache.popitem(last=False)
    finally:
        with _track_lock:
            _making.pop(key).set()
    return value, False


def _excluder(spec: VariationSpec, matte: Callable[[int], np.ndarray]) -> Callable[[int], np.ndarray]:
    """Frame ``first + k``'s exclusion: its region matte, and its holdout matte when the spec has them."""

    def exclude(k: int) -> np.ndarray:
        region = matte(spec.first + k)
        if not spec.holdout_pattern:
            return region
        return np.maximum(region, frames.read_matte(frame_path(spec.holdout_pattern, spec.first + k)))

    return exclude


def _read_rgb(spec: VariationSpec) -> Callable[[str], np.ndarray]:
    # Through the request's frame cache: the variation's frames read the same arrays again.
    return lambda path: frame_cache.read_plate(path, ("R", "G", "B"), spec.plate_colour(), spec.plate_pattern)


def camera_track(
    spec: VariationSpec,
    header: frames.FrameHeader,
    matte: Callable[[int], np.ndarray],
    on_progress: ProgressFn,
    should_cancel: CancelFn | None,
) -> CameraTrack:
    """The camera track of frames ``spec.first..last`` of ``spec.plate_pattern`` (progress stage "track"),
    whose first frame's header is ``header``; ``matte(frame)`` gives a frame's region matte (H, W), kept
    out of the estimate."""
    paths = [frame_path(spec.plate_pattern, f) for f in range(spec.first, spec.last + 1)]
    n = len(paths)

    def make() -> CameraTrack:
        return camera.plate_track(
            paths,
            exclude=_excluder(spec, matte),
            track_file=spec.track_file,
            first=spec.first,
            progress=lambda k: on_progress("track", k, n),
            should_cancel=should_cancel,
            header=header,
            plate_colour=spec.plate_colour(),
            read_rgb=_read_rgb(spec),
        )

    track, hit = _cached(_key(spec, paths), make, should_cancel)
    if hit:
        on_progress("track", n, n)
    return track


def has_camera_track(spec: VariationSpec) -> bool:
    """Whether :func:`camera_track` of ``spec`` is cached already (another variation of the request made it)."""
    paths = [frame_path(spec.plate_pattern, f) for f in range(spec.first, spec.last + 1)]
    key = _key(spec, paths)
    with _track_lock:
        return key in _track_cache


@dataclass(frozen=True)
class QuickTrack:
    """A coarse track of some of the shot's frames: ``keys`` (indices into the range, the first 0 and the
    last the shot's last), one matrix per key in ``track``, and ``error_px``: how far (full-resolution
    pixels) its fit may be from the full track's."""

    keys: tuple[int, ...]
    track: CameraTrack
    error_px: float


def quick_keys(n: int) -> tuple[int, ...]:
    """The quick track's frames of an ``n``-frame shot: the first, the last and evenly between."""
    return tuple(sorted({round(i * (n - 1) / QUICK_INTERVALS) for i in range(QUICK_INTERVALS + 1)}))


def has_quick_track(spec: VariationSpec, header: frames.FrameHeader) -> bool:
    """Whether the shot is tracked from its features and long enough for a quick track to pay."""
    if spec.last - spec.first + 1 < QUICK_MIN_FRAMES or spec.track_file:
        return False
    first = frame_path(spec.plate_pattern, spec.first)
    return camera.motion_vector_channels(header.channels, camera.hero_view(first)) is None


def quick_track(
    spec: VariationSpec,
    header: frames.FrameHeader,
    matte: Callable[[int], np.ndarray],
    on_progress: ProgressFn,
    should_cancel: CancelFn | None,
) -> QuickTrack:
    """The quick track (see the module docstring) of a shot :func:`has_quick_track` says has one, cached like
    the full track; progress stage "track" over its frames. Frames it reads are the frames' own reads."""
    n = spec.last - spec.first + 1
    keys = quick_keys(n)
    paths = [frame_path(spec.plate_pattern, f) for f in range(spec.first, spec.last + 1)]
    exclude = _excluder(spec, matte)
    display = header.display_window
    scale = min(1.0, QUICK_WORK_SIZE / max(display.width, display.height))

    def make() -> QuickTrack:
        track = camera.plate_track(
            [paths[k] for k in keys],
            exclude=lambda i: exclude(keys[i]),
            first=spec.first,
            use_vectors=False,
            progress=lambda i: on_progress("track", i, len(keys)),
            should_cancel=should_cancel,
            header=header,
            plate_colour=spec.plate_colour(),
            read_rgb=_read_rgb(spec),
            work_size=QUICK_WORK_SIZE,
            refine=False,
        )
        return QuickTrack(keys, track, QUICK_ERROR_WORK_PX / scale)

    quick, hit = _cached(("quick",) + _key(spec, paths), make, should_cancel)
    if hit:
        on_progress("track", len(keys), len(keys))
    return quick


def motion_slack(quick: QuickTrack, boxes: list) -> float:
    """Pixels a card made from ``quick`` and the matte ``boxes`` of its frames (x, y, w, h; None = empty)
    grows by on every side, so it holds the frames between them: the coarse fit's error, and a quarter of
    the most any box moves (in frame-0 pixels) from one quick frame to the next, for motion that is not
    straight between them."""
    refs = [
        camera.box_in_reference(m, b[0], b[1], b[0] + b[2], b[1] + b[3])
        for b, m in zip(boxes, quick.track.matrices, strict=True)
        if b is not None
    ]
    steps = [max(abs(p - q) for p, q in zip(a, b, strict=True)) for a, b in zip(refs, refs[1:], strict=False)]
    return float(math.ceil(quick.error_px + 0.25 * max(steps, default=0.0)))
