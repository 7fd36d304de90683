"""What every task runner shares when it delivers frames: the outputs it may take away again, the
provenance every EXR carries, and the frame loop that reads ahead and writes behind.

A runner (see :mod:`spec`) uses them as :func:`variation.generate_variation` does::

    with Outputs(spec.out_dir) as outputs:          # a failure removes exactly what this call made
        ...
        writer = FrameWriter(spec, outputs, display, provenance_attributes(spec, model, strength))
        writer.run(frame_list, read, make, progress=..., on_frame=..., should_cancel=...)

``read(frame)`` runs on a pool two frames ahead; ``make(k, frame, read_result)`` runs in order on the
calling thread and returns the frame's :class:`Delivered` pixels; the EXR and its proxy are written
behind on the pool, and ``on_frame`` is called in frame order once both exist.

With ``workers > 1`` (a runner whose frames do not depend on each other, like a carried card) each
frame's read, make and write run as one job on a pool of that many threads (OIIO, OpenCV and numpy
release the GIL), frames handed out in order so the first frame's proxy comes first; whatever must
see the frames in order (a flicker measure) goes in ``in_order(k, frame, delivered)``, called on the
calling thread in frame order before ``on_frame``. Each frame's bytes are what one thread would write.
"""

from __future__ import annotations

import os
from collections import deque
from collections.abc import Callable, Hashable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import numpy as np

from generation.engine import camera, colour, frame_cache, frames
from generation.engine.frames import Window
from generation.engine.inpaint import Cancelled
from generation.engine.registry import ModelCard
from generation.engine.sequence import ELEMENT_NAME, PROXY_NAME, frame_path
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationSpec

READ_AHEAD = 2  # frames read before they are needed
WRITE_BEHIND = 2  # frames whose files may still be being written


def frame_workers() -> int:
    """Frames made at once by a runner whose frames are independent: the cores this process may use."""
    return camera.usable_cores()


class Outputs:
    """Files and directories this call creates, so a failure can take exactly those away.

    As a context manager it removes them when the block raises anything (Cancelled included) and re-raises."""

    def __init__(self, out_dir: str) -> None:
        self.exr_dir = os.path.join(out_dir, "exr")
        self.proxy_dir = os.path.join(out_dir, "proxy")
        self.exr_pattern = os.path.join(self.exr_dir, ELEMENT_NAME)
        self.proxy_pattern = os.path.join(self.proxy_dir, PROXY_NAME)
        self.dirs: list[str] = []
        self.files: list[str] = []
        self._out_dir = out_dir

    def __enter__(self) -> Outputs:
        return self

    def __exit__(self, kind, exc, tb) -> None:
        if kind is not None:
            self.remove()

    def make_dirs(self) -> None:
        for path in (self._out_dir, self.exr_dir, self.proxy_dir):
            if not os.path.isdir(path):
                os.makedirs(path)
                self.dirs.append(path)

    def remove(self) -> None:
        for path in self.files:
            try:
                os.remove(path)
            except FileNotFoundError:
                pass
        for path in reversed(self.dirs):
            try:
                os.rmdir(path)  # only if empty: never take away what someone else put there
            except OSError:
                pass


def provenance_attributes(
    spec: VariationSpec, model: ModelCard | None, strength: float, extra: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The EXR header attributes: the spec's own (request, shot, DateTime ...), then what made the pixels
    (``model`` None: a task that needs no model, and none is named)."""
    attributes: dict[str, Any] = dict(spec.attributes)
    attributes.update(
        {
            "parallel_track:seed": str(spec.seed),
            "parallel_track:steps": int(spec.steps),
            "parallel_track:task": spec.task,
            "parallel_track:prompt": spec.prompt,
        }
    )
    if model is not None:
        attributes["parallel_track:model"] = model.name
        attributes["parallel_track:model_manifest_sha256"] = model.manifest_hash
    attributes["parallel_track:working_space"] = spec.working_space
    attributes["parallel_track:strength"] = f"{strength:g}"
    attributes.update(extra or {})
    return attributes


@dataclass
class Delivered:
    """One frame's pixels: ``element`` is what the EXR holds ((H, W, C) float16 over the display window,
    e.g. premultiplied RGBA, or over the data window alone with ``element_over_data``), ``proxy_rgb`` what the
    proxy shows ((H, W, 3) float32 working space, e.g. the element over the plate), ``data_window`` the EXR's
    data window (absolute pixel coordinates) and ``channel_names`` the element's channels (a roto matte
    delivers ``("A",)``)."""

    element: np.ndarray
    proxy_rgb: np.ndarray
    data_window: Window
    channel_names: tuple[str, ...] = ("R", "G", "B", "A")
    measures: Any = None  # what the runner's in_order hook wants of the frame (see FrameWriter.run)
    # Where ``proxy_rgb`` may differ from the frame's plate (array coords; None: anywhere), and what names the plate
    # frame as it was read (None: nothing): with both, the proxy outside ``changed`` is taken from the first
    # proxy made over that plate frame with the same ``changed`` (see :func:`make_frame_proxy`).
    changed: tuple[Window, ...] | None = None
    plate_key: Hashable | None = None
    plate_group: Hashable = None
    element_over_data: bool = False


def write_frame(
    exr_path: str, proxy_path: str, delivered: Delivered, display: Window, attributes: dict, spec: VariationSpec
) -> None:
    """The frame's proxy JPEG (through the spec's display and view; first, it is what a reviewer waits for)
    and its EXR."""
    frames.write_jpeg(proxy_path, make_frame_proxy(delivered, spec))
    frames.write_exr(
        exr_path,
        delivered.element,
        display_window=display,
        data_window=delivered.data_window,
        channel_names=delivered.channel_names,
        attributes=attributes,
        over_data_window=delivered.element_over_data,
    )


def make_frame_proxy(delivered: Delivered, spec: VariationSpec) -> np.ndarray:
    """The frame's proxy (:func:`colour.make_proxy` of ``delivered.proxy_rgb`` through the spec's display and view).

    A runner whose composite leaves the plate as it was outside ``delivered.changed`` (a variation: the plate
    outside its matte's tiles) names the plate frame in ``plate_key``; the first proxy made over it is kept
    (:data:`frame_cache.PROXIES`) and the next variation's proxy encodes only the proxy pixels the changed
    windows reach, the rest copied: each proxy pixel is a function of its own footprint in the frame (the area
    resize) and of that pixel alone (the display encode), so the bytes are those of the whole proxy made anew."""
    encode = dict(src=spec.working_space, display=spec.display, view=spec.view, config_name=spec.config_name)
    small = colour.proxy_resize(delivered.proxy_rgb, width=spec.proxy_width, pixel_aspect=spec.pixel_aspect)
    if delivered.plate_key is None or delivered.changed is None:
        return colour.encode_proxy(small, **encode)
    key = ("proxy", delivered.plate_key, delivered.changed, small.shape, tuple(sorted(encode.items())))
    made: list[bool] = []

    def make() -> tuple[np.ndarray]:
        made.append(True)
        return (colour.encode_proxy(small, **encode),)

    (kept,) = frame_cache.PROXIES.get_or_make(key, make, delivered.plate_group)
    if made:
        return kept  # written, never written to
    proxy = kept.copy()
    for ys, xs in changed_reach(delivered.changed, delivered.proxy_rgb.shape[:2], small.shape[:2]):
        proxy[ys, xs] = colour.encode_proxy(small[ys, xs], **encode)  # where two overlap, the same codes twice
    return proxy


def changed_reach(
    changed: tuple[Window, ...], frame_hw: tuple[int, int], proxy_hw: tuple[int, int]
) -> list[tuple[slice, slice]]:
    """The proxy rectangles (row and column slices) whose pixels' footprints in the frame may touch the ``changed``
    windows (array coords), one a window: exact for the halving (or same-size) resize, grown by
    :data:`_REACH_MARGIN` proxy pixels otherwise."""
    (fh, fw), (ph, pw) = frame_hw, proxy_hw
    exact = fh in (ph, 2 * ph) and fw in (pw, 2 * pw)
    margin = 0 if exact else _REACH_MARGIN
    rects = []
    for w in changed:
        y0 = max(0, (w.y * ph) // fh - margin)
        y1 = min(ph, -(-(w.y + w.height) * ph // fh) + margin)
        x0 = max(0, (w.x * pw) // fw - margin)
        x1 = min(pw, -(-(w.x + w.width) * pw // fw) + margin)
        if y1 > y0 and x1 > x0:
            rects.append((slice(y0, y1), slice(x0, x1)))
    return rects


_REACH_MARGIN = 2  # proxy pixels a frame pixel's change may reach beyond its own footprint (OIIO's box filter)


class FrameWriter:
    """The frame loop: reads run ahead and writes run behind on a small pool while the caller's thread
    makes each frame; on any error nothing is left running, so cleanup sees every file."""

    def __init__(self, spec: VariationSpec, outputs: Outputs, display: Window, attributes: dict) -> None:
        self.spec, self.outputs, self.display, self.attributes = spec, outputs, display, attributes

    def run(
        self,
        frame_list: list[int],
        read: Callable[[int], Any],
        make: Callable[[int, int, Any], Delivered],
        *,
        progress: ProgressFn,
        on_frame: FrameFn | None = None,
        should_cancel: CancelFn | None = None,
        workers: int = 1,
        in_order: Callable[[int, int, Delivered], None] | None = None,
    ) -> None:
        """Read, make and write every frame of ``frame_list``; progress stage "frames". ``workers > 1``:
        ``make`` must be safe to call on several frames at once (see the module docstring)."""
        self.outputs.make_dirs()
        if workers > 1:
            self._run_pooled(frame_list, read, make, workers, in_order, progress, on_frame, should_cancel)
            return
        n = len(frame_list)
        pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="variation-io")
        reads: dict[int, Future] = {}
        writes: deque[tuple[int, str, str, Future]] = deque()
        done = 0

        def finish_oldest() -> None:
            nonlocal done
            frame, exr_path, proxy_path, future = writes.popleft()
            future.result()
            done += 1
            if on_frame is not None:
                on_frame(frame, exr_path, proxy_path)
            progress("frames", done, n)

        try:
            for frame in frame_list[:READ_AHEAD]:
                reads[frame] = pool.submit(read, frame)
            for k, frame in enumerate(frame_list):
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"cancelled before frame {frame}")
                pixels = reads.pop(frame).result()
                if k + READ_AHEAD < n:
                    nxt = frame_list[k + READ_AHEAD]
                    reads[nxt] = pool.submit(read, nxt)
                delivered = make(k, frame, pixels)
                if in_order is not None:
                    in_order(k, frame, delivered)
                writes.append((frame, *self._submit_write(pool, frame, delivered)))
                while len(writes) > WRITE_BEHIND or (writes and writes[0][3].done()):
                    finish_oldest()
            while writes:
                finish_oldest()
        finally:
            # No write may land after a failure's cleanup, so wait for whatever is running.
            pool.shutdown(wait=True, cancel_futures=True)

    def _submit_write(self, pool: ThreadPoolExecutor, frame: int, delivered: Delivered) -> tuple[str, str, Future]:
        exr_path = frame_path(self.outputs.exr_pattern, frame)
        proxy_path = frame_path(self.outputs.proxy_pattern, frame)
        self.outputs.files += [exr_path, proxy_path]
        future = pool.submit(write_frame, exr_path, proxy_path, delivered, self.display, self.attributes, self.spec)
        return exr_path, proxy_path, future

    def _run_pooled(self, frame_list, read, make, workers, in_order, progress, on_frame, should_cancel) -> None:
        n = len(frame_list)
        pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="variation-frame")
        running: deque[tuple[int, int, str, str, Future]] = deque()
        done = 0

        def job(k: int, frame: int, exr_path: str, proxy_path: str) -> Delivered:
            delivered = make(k, frame, read(frame))
            write_frame(exr_path, proxy_path, delivered, self.display, self.attributes, self.spec)
            return delivered

        def finish_oldest() -> None:
            nonlocal done
            k, frame, exr_path, proxy_path, future = running.popleft()
            if should_cancel is not None and should_cancel():  # frames already handed out are taken away too
                raise Cancelled(f"cancelled before frame {frame} was reported")
            delivered = future.result()
            if in_order is not None:
                in_order(k, frame, delivered)
            done += 1
            if on_frame is not None:
                on_frame(frame, exr_path, proxy_path)
            progress("frames", done, n)

        try:
            for k, frame in enumerate(frame_list):
                if should_cancel is not None and should_cancel():
                    raise Cancelled(f"cancelled before frame {frame}")
                exr_path = frame_path(self.outputs.exr_pattern, frame)
                proxy_path = frame_path(self.outputs.proxy_pattern, frame)
                self.outputs.files += [exr_path, proxy_path]
                running.append((k, frame, exr_path, proxy_path, pool.submit(job, k, frame, exr_path, proxy_path)))
                # Enough queued to keep every worker busy; finished frames reported as soon as they are in order.
                while len(running) > workers + WRITE_BEHIND or (running and running[0][4].done()):
                    finish_oldest()
            while running:
                finish_oldest()
        finally:
            pool.shutdown(wait=True, cancel_futures=True)
