"""The roto task's runner: key-frame mattes in, a single-channel matte EXR per plate frame out.

It keeps the runner contract of :mod:`spec` (the signature and result of
:func:`variation.generate_variation`) and reuses :mod:`frame_writer`:

- ``spec.matte_pattern`` is the key-frame sequence: an EXR matte sequence (A, else Y, else R) in which only
  some frames exist (what Nuke writes from a Roto's alpha); the frames present inside ``first..last`` are the
  key frames. ``spec.plate_pattern`` is the scene-linear plate; ``spec.seed`` seeds the pass.
- Per frame it writes ``exr/element.####.exr``: half float, one channel ``A``, the plate's display and data
  windows and frame numbers, provenance in the header; and ``proxy/incontext.####.jpg``: the matte as a
  coloured overlay over the plate through the spec's display/view. Frames stream out in order, each segment
  between key frames computed when its first frame is due.
- ``params`` (the request's own inputs, optional): ``{"previous_pattern": <an earlier pass's matte EXRs>,
  "locked": [frames]}``: a correction pass keeps the locked frames' mattes from the earlier pass exactly.
- ``flicker_ratio`` is the matte's warping error over the plate's own (:meth:`RotoShot.flicker_ratio`).
"""

from __future__ import annotations

import hashlib
import time

import numpy as np

from generation.engine import frames
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, provenance_attributes
from generation.engine.frames import FrameHeader, Window
from generation.engine.roto import RotoError, RotoOptions, RotoShot
from generation.engine.sequence import frame_path, glob_frames
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationResult, VariationSpec

OVERLAY_RGB = np.array([0.9, 0.05, 0.02], np.float32)  # scene-linear red: unmistakable over any plate
OVERLAY_OPACITY = 0.5
METHOD = (
    "dis-flow both ways (accumulated warps, forward/backward and photometric trust) + trust fusion"
    " + local colour model + speck and untrusted-island removal + GrabCut of the band + guided-filter edges"
)


class _Plates:
    """The plate's frames as a lazy sequence of float32 (H, W, 3) over the display window (one read each)."""

    def __init__(self, spec: VariationSpec, header: FrameHeader) -> None:
        self.spec, self.header = spec, header
        self.frames = list(range(spec.first, spec.last + 1))

    def __len__(self) -> int:
        return len(self.frames)

    def __getitem__(self, index: int) -> np.ndarray:
        path = frame_path(self.spec.plate_pattern, self.frames[index])
        pixels = frames.read_channels(path, ("R", "G", "B"), **self.spec.plate_colour())
        display = self.header.display_window
        if pixels.shape[:2] != (display.height, display.width):
            raise frames.FrameError(path, "display window differs from the first frame")
        return pixels


def read_keyframes(spec: VariationSpec) -> dict[int, np.ndarray]:
    """{frame: matte (H, W) float32} for the key-frame sequence's frames inside ``first..last``."""
    if not spec.matte_pattern:
        raise RotoError("roto needs key frames: a matte sequence with some frames present (matte_pattern)")
    present = [f for f in glob_frames(spec.matte_pattern) if spec.first <= f <= spec.last]
    if not present:
        raise RotoError(f"no key frame of {spec.matte_pattern} lies inside frames {spec.first}-{spec.last}")
    return {f: frames.read_matte(frame_path(spec.matte_pattern, f)) for f in present}


def _keys_digest(keys: dict[int, np.ndarray]) -> str:
    digest = hashlib.sha256()
    for f in sorted(keys):
        digest.update(str(f).encode())
        digest.update(np.ascontiguousarray(keys[f], np.float32).tobytes())
    return digest.hexdigest()


def overlay(plate: np.ndarray, matte: np.ndarray) -> np.ndarray:
    """The matte as a coloured overlay over the plate, (H, W, 3) float32 in the plate's (scene-linear) space."""
    a = (OVERLAY_OPACITY * matte)[..., None]
    return plate * (1 - a) + OVERLAY_RGB * a


def read_locked(params: dict | None, spec: VariationSpec) -> dict[int, np.ndarray]:
    """{frame: matte} of the frames a correction pass must keep, read from the earlier pass's EXRs."""
    params = params or {}
    locked = params.get("locked") or []
    if not locked:
        return {}
    previous = params.get("previous_pattern")
    if not previous:
        raise RotoError("locked frames need previous_pattern: the earlier pass whose mattes they keep")
    if not isinstance(locked, list) or not all(isinstance(f, int) and not isinstance(f, bool) for f in locked):
        raise RotoError(f"locked must be a list of frame numbers, got {locked!r}")
    outside = [f for f in locked if not spec.first <= f <= spec.last]
    if outside:
        raise RotoError(f"locked frames {outside} are outside frames {spec.first}-{spec.last}")
    return {f: frames.read_matte(frame_path(previous, f)) for f in locked}


def _check(spec: VariationSpec) -> FrameHeader:
    if spec.last < spec.first:
        raise RotoError(f"frame range {spec.first}-{spec.last} is empty")
    if spec.rect is not None:
        raise RotoError("roto takes key-frame mattes, not a rectangle")
    return frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False)


def roto_variation(
    spec: VariationSpec,
    *,
    on_progress: ProgressFn | None = None,
    on_frame: FrameFn | None = None,
    should_cancel: CancelFn | None = None,
    params: dict | None = None,
) -> VariationResult:
    """One roto pass over the plate's frames ``first..last`` from the key frames in ``spec.matte_pattern``.

    Bad key frames (wrong size, empty, not a matte) and a bad spec are refused with :class:`RotoError`
    before anything is written. Progress stages: "flow", "matte", "frames". On :class:`Cancelled` or any
    error every file and directory this call created is removed and the exception re-raised.
    """
    start = time.perf_counter()
    progress: ProgressFn = on_progress or (lambda stage, k, n: None)
    header = _check(spec)
    keys = read_keyframes(spec)
    locked = read_locked(params, spec)
    plates = _Plates(spec, header)
    display, data = header.display_window, header.data_window
    with Outputs(spec.out_dir) as outputs:
        t = time.perf_counter()
        shot = RotoShot(
            plates,
            first_frame=spec.first,
            options=RotoOptions(seed=spec.seed, device=spec.device or "cpu"),
            progress=lambda done, total, stage: progress(stage, done, total),
        )
        for f, m in keys.items():
            shot.check_keyframe(f, m)
        for f, m in locked.items():  # the earlier pass's mattes, kept as they are (empty ones too)
            if m.shape != shot.size:
                raise RotoError(f"locked frame {f} of the earlier pass is {m.shape[1]}x{m.shape[0]}, not the plate's")
            shot.mattes[f] = m
        timings = {"flow": time.perf_counter() - t}
        mattes = shot.iter_pass(keys, locked)
        extra = {
            "parallel_track:roto_keyframes": ",".join(str(f) for f in sorted(keys)),
            "parallel_track:roto_keyframes_sha256": _keys_digest(keys),
            "parallel_track:roto_method": METHOD,
            "parallel_track:roto_locked": ",".join(str(f) for f in sorted(locked)),
        }
        writer = FrameWriter(spec, outputs, display, provenance_attributes(spec, None, 1.0, extra))
        made: dict[int, np.ndarray] = {}

        def make(k: int, frame: int, plate: np.ndarray) -> Delivered:
            done, matte = next(mattes)
            if done != frame:  # the pass and the writer walk the same frames in the same order
                raise RotoError(f"pass delivered frame {done} where {frame} was due")
            made[frame] = matte
            return Delivered(matte[..., None].astype(np.float16), overlay(plate, matte), data, ("A",))

        t = time.perf_counter()
        writer.run(
            plates.frames,
            lambda f: plates[f - spec.first],
            make,
            progress=progress,
            on_frame=on_frame,
            should_cancel=should_cancel,
        )
        timings["frames"] = time.perf_counter() - t
        flicker = shot.flicker_ratio(made)
    return VariationResult(
        frames=plates.frames,
        exr_pattern=outputs.exr_pattern,
        proxy_pattern=outputs.proxy_pattern,
        compute_seconds=time.perf_counter() - start,
        flicker_ratio=flicker,
        element_window=Window.as_dict(data),
        timings=timings,
    )
