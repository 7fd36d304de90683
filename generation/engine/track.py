"""The plate's camera track: cumulative shift per frame, from motion vectors when the plate has them,
else from its luminance (:mod:`motion`); cached per plate, frame range and file mtimes."""

from __future__ import annotations

import os
import threading
from collections import OrderedDict

import numpy as np

from generation.engine import frames, motion
from generation.engine.inpaint import Cancelled
from generation.engine.sequence import frame_path
from generation.engine.spec import CancelFn, ProgressFn, VariationSpec

AP1_LUMA = np.array([0.2722287, 0.6740818, 0.0536895], np.float32)  # ACEScg luminance weights
# Motion-vector channel pairs holding motion since the previous frame, x right, y down.
MOTION_CHANNELS = (("motion.x", "motion.y"), ("MV.x", "MV.y"), ("mv.x", "mv.y"))
_TRACK_CACHE_SIZE = 16
_track_cache: OrderedDict[tuple, list[tuple[float, float]]] = OrderedDict()
_track_lock = threading.Lock()


def luma(rgb: np.ndarray) -> np.ndarray:
    """Scene-linear ACEScg luminance of (..., 3) RGB."""
    return rgb @ AP1_LUMA


def camera_track(
    spec: VariationSpec, channels: tuple[str, ...], on_progress: ProgressFn, should_cancel: CancelFn | None
) -> list[tuple[float, float]]:
    """The cumulative camera shift (x, y pixels) of each frame ``spec.first..last`` of ``spec.plate_pattern``,
    whose first frame has ``channels``; progress stage "track"."""
    paths = [frame_path(spec.plate_pattern, f) for f in range(spec.first, spec.last + 1)]
    key = (os.path.abspath(spec.plate_pattern), spec.first, spec.last, tuple(os.stat(p).st_mtime_ns for p in paths))
    n = len(paths)
    with _track_lock:
        if key in _track_cache:
            _track_cache.move_to_end(key)
            on_progress("track", n, n)
            return list(_track_cache[key])
    mv_names = next((pair for pair in MOTION_CHANNELS if set(pair) <= set(channels)), None)

    def each_frame(reader):
        for k, path in enumerate(paths):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled while tracking frame {k + 1} of {n}")
            yield reader(path)
            on_progress("track", k + 1, n)

    if mv_names is not None:
        track = motion.track_from_motion_vectors(each_frame(lambda p: frames.read_channels(p, mv_names)))
    else:
        track = motion.camera_track(
            each_frame(lambda p: luma(frames.read_channels(p, ("R", "G", "B"), **spec.plate_colour())))
        )
    with _track_lock:
        _track_cache[key] = track
        while len(_track_cache) > _TRACK_CACHE_SIZE:
            _track_cache.popitem(last=False)
    return list(track)
