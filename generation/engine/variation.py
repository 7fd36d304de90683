"""One variation of a generation request: a generated element carried through a plate's frames.

The pipeline reads straight down in :func:`generate_variation`: plan (check the spec, read the first
frame's header once) → camera track → a "card" wider than the first frame's matte by the whole pan →
denoise at the model's size (show model: masked denoising; SD inpainting / img2img directory: its
diffusers pipeline) → each frame samples the card at its camera offset through the task's look →
element EXR + in-context proxy per frame.

The parts, in the order they run:

- :mod:`plan`: the checked spec (:class:`plan.VariationPlan`) and how a frame's plate, matte and depth are read.
- :mod:`track`: the plate's camera track, cached.
- :mod:`card`: where the card sits, cropping the plate to it, sampling it bicubically at a frame's offset.
- :mod:`backends` and :mod:`encoding`: the denoiser for the model's kind and the model's space
  (known pixels and mask in, decoded pixels out).
- :mod:`looks`: what a frame makes of the card, chosen by ``TaskInfo.look`` (element, haze, grade).
- :mod:`frame_writer`: outputs cleaned up on failure, provenance attributes, the read-ahead/write-behind
  frame loop writing EXR + proxy.

Adding a task: a row in :data:`task_kinds.TASKS`. If one of the looks fits, the row's ``runner`` stays
this module's :func:`generate_variation`; a task that makes something else (roto's matte, an upscale)
gets its own engine module whose runner keeps the contract in :mod:`spec` and reuses :mod:`frame_writer`.

Depth is used only as the haze weight: neither backend has a depth input channel.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import numpy as np

from generation.engine import frames, motion
from generation.engine.backends import load_denoiser
from generation.engine.card import Card, Track, card_geometry
from generation.engine.device import pick_device
from generation.engine.encoding import known_and_mask
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, provenance_attributes
from generation.engine.frames import Window
from generation.engine.looks import Look, depth_reference, make_look
from generation.engine.plan import VariationPlan, depth_channel, plan_variation
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationResult, VariationSpec
from generation.engine.track import MOTION_CHANNELS, camera_track, luma

if TYPE_CHECKING:
    import torch

__all__ = ["MOTION_CHANNELS", "VariationResult", "VariationSpec", "depth_channel", "generate_variation"]


def generate_variation(
    spec: VariationSpec,
    *,
    on_progress: ProgressFn | None = None,
    on_frame: FrameFn | None = None,
    should_cancel: CancelFn | None = None,
) -> VariationResult:
    """Generate one variation of ``spec.task`` over the plate's frames ``first..last``.

    Plates are scene-linear ``spec.working_space`` EXRs; the matte (or ``rect``) marks what to
    change. One card is generated at the model's size (a show model is unconditional and ignores the
    prompt, which is still recorded in the EXR header; an SD pipeline is prompted with it) and
    carried through the shot with the plate's camera motion, so a distant element does not boil;
    what the card means per task is in :mod:`looks`. Per frame it writes
    ``<out_dir>/exr/element.####.exr`` (premultiplied half RGBA, the plate's display window, data
    window = the matte's box, provenance attributes) and ``<out_dir>/proxy/incontext.####.jpg``
    (element over plate through the display/view). Pixels where the matte is 0 stay the plate's
    exactly. Progress: ``on_progress(stage, k, n)`` with stage "track", "denoise", "frames";
    ``on_frame(frame, exr_path, proxy_path)`` once a frame's files exist. ``should_cancel()`` is
    asked between frames and before every denoising step; on :class:`inpaint.Cancelled` or any error
    every file and directory this call created is removed and the exception re-raised.
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    progress: ProgressFn = on_progress or (lambda stage, k, n: None)
    plan = plan_variation(spec)
    device = pick_device(spec.device)
    with Outputs(spec.out_dir) as outputs:
        with _timed(timings, "track"):
            track = camera_track(spec, plan.header.channels, progress, should_cancel)
        with _timed(timings, "prepare"):
            plan, denoise = load_denoiser(plan, device)
            card, known, mask, depth_ref = _prepare(plan, track)
        with _timed(timings, "denoise"):
            sample = denoise(known, mask, lambda i, n: progress("denoise", i, n), should_cancel)
            look = make_look(plan, card, sample, known, depth_ref)
        with _timed(timings, "frames"):
            carry = _Carry(plan, card, look, track)
            flicker, window = carry.run(outputs, progress, on_frame, should_cancel)
    return VariationResult(
        frames=plan.frames,
        exr_pattern=outputs.exr_pattern,
        proxy_pattern=outputs.proxy_pattern,
        compute_seconds=time.perf_counter() - start,
        flicker_ratio=flicker,
        element_window=window.as_dict() if window else {},
        timings=timings,
    )


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    timings[stage] = time.perf_counter() - t


def _prepare(plan: VariationPlan, track: Track) -> tuple[Card, torch.Tensor, torch.Tensor, float | None]:
    """The card over the first frame's matte and the model-space inputs to denoise it from."""
    plate0, matte0, depth0 = plan.read_frame(plan.spec.first)
    bbox0 = frames.alpha_bbox(matte0, Window(0, 0, plan.display.width, plan.display.height))
    if bbox0 is None:
        raise ValueError(f"the matte of frame {plan.spec.first} is empty: nothing to generate")
    card = card_geometry(bbox0, track, plan.model.sample_size, plan.info.anchor, plan.info.context)
    known, mask = known_and_mask(plate0, matte0, card, plan)
    return card, known, mask, depth_reference(depth0, matte0)


class _Carry:
    """Each frame: the look over the frame's matte box, premultiplied by the matte, over the plate;
    flicker measured in order on its own thread where the element can be (the card's footprint)."""

    def __init__(self, plan: VariationPlan, card: Card, look: Look, track: Track) -> None:
        self.plan, self.card, self.look, self.track = plan, card, look, track
        display = plan.display
        self.origin = Window(0, 0, display.width, display.height)
        region = card.footprint(track).intersect(self.origin)
        self.rs = (slice(region.y, region.y + region.height), slice(region.x, region.x + region.width))
        self.meter = motion.FlickerMeter(track)
        self.window: Window | None = None  # the union of the frames' data windows
        self.measured: list[Future] = []

    def run(self, outputs: Outputs, progress, on_frame, should_cancel) -> tuple[float, Window | None]:
        plan = self.plan
        extra = {"parallel_track:depth_channel": plan.depth_name} if plan.depth_name else {}
        attributes = provenance_attributes(plan.spec, plan.model, plan.strength, extra)
        writer = FrameWriter(plan.spec, outputs, plan.display, attributes)
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="variation-flicker") as self.meter_pool:
            writer.run(
                plan.frames,
                plan.read_frame,
                self.frame,
                progress=progress,
                on_frame=on_frame,
                should_cancel=should_cancel,
            )
        for future in self.measured:
            future.result()
        return self.meter.ratio(), self.window

    def frame(self, k: int, frame: int, pixels) -> Delivered:
        plate, matte, depth = pixels
        display, rs = self.plan.display, self.rs
        box = frames.alpha_bbox(matte, self.origin)
        plate_luma = luma(plate[rs])
        element = np.zeros((display.height, display.width, 4), np.float16)
        comp = plate  # composited in place; the plate's luminance is already taken
        if box is not None:
            bs = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
            alpha = matte[bs][..., None]
            generated = self.look.region(plate, depth, self.track[k], box)
            np.multiply(generated, alpha, out=generated)
            element[bs + (slice(0, 3),)] = generated
            element[bs + (slice(3, 4),)] = alpha
            # Composite what the EXR holds, so the proxy shows exactly the delivered element.
            e32 = element[bs].astype(np.float32)
            over = e32[..., :3]
            over += comp[bs] * (1.0 - e32[..., 3:])
            np.copyto(comp[bs], over, where=alpha > 0)  # matte 0: the plate, bit for bit
            data_window = Window(display.x + box.x, display.y + box.y, box.width, box.height)
            self.window = data_window if self.window is None else self.window.union(data_window)
        else:
            data_window = Window(display.x, display.y, 1, 1)
        self.measured.append(self.meter_pool.submit(self.meter.add, k, luma(comp[rs]), plate_luma, matte[rs]))
        return Delivered(element, comp, data_window)
