"""The plate's camera track for a variation (:mod:`camera`), cached per plate, region, range and file mtimes.

What is not the camera is kept out of it: the region's own matte (what will be replaced is often what
moves, a sky's clouds), the spec's ``holdout_pattern`` mattes (moving people, cars) and a partial plate
alpha. A ``track_file`` overrides the estimate; motion-vector channels come next; then feature tracks.
"""

from __future__ import annotations

import os
import threading
from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from generation.engine import camera, frame_cache, frames
from generation.engine.camera import CameraTrack
from generation.engine.sequence import frame_path
from generation.engine.spec import CancelFn, ProgressFn, VariationSpec

AP1_LUMA = camera.AP1_LUMA  # ACEScg luminance weights
_TRACK_CACHE_SIZE = 16
_track_cache: OrderedDict[tuple, CameraTrack] = OrderedDict()
_track_lock = threading.Lock()


def luma(rgb: np.ndarray) -> np.ndarray:
    """Scene-linear ACEScg luminance of (..., 3) RGB."""
    return rgb @ AP1_LUMA


def _mtimes(pattern: str | None, first: int, last: int) -> tuple:
    if not pattern:
        return ()
    return tuple(os.stat(frame_path(pattern, f)).st_mtime_ns for f in range(first, last + 1))


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
    key = (
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
    n = len(paths)
    with _track_lock:
        if key in _track_cache:
            _track_cache.move_to_end(key)
            on_progress("track", n, n)
            return _track_cache[key]

    def exclude(k: int) -> np.ndarray:
        region = matte(spec.first + k)
        if not spec.holdout_pattern:
            return region
        return np.maximum(region, frames.read_matte(frame_path(spec.holdout_pattern, spec.first + k)))

    track = camera.plate_track(
        paths,
        exclude=exclude,
        track_file=spec.track_file,
        first=spec.first,
        progress=lambda k: on_progress("track", k, n),
        should_cancel=should_cancel,
        header=header,
        plate_colour=spec.plate_colour(),
        # Through the request's frame cache: the variation's frames read the same arrays again.
        read_rgb=lambda path: frame_cache.read_plate(path, ("R", "G", "B"), spec.plate_colour(), spec.plate_pattern),
    )
    with _track_lock:
        _track_cache[key] = track
        while len(_track_cache) > _TRACK_CACHE_SIZE:
            _track_cache.popitem(last=False)
    return track
