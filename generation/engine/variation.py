"""One variation of a generation request: a generated element carried through a plate's frames.

The pipeline reads straight down in :func:`generate_variation`: plan (check the spec, read the first
frame's header once) → camera track (:mod:`camera`: a 3×3 per frame, estimated away from the matte and
anything moving) → a "card" holding the union of every frame's matte seen from frame 0 (refused when the
motion needs more than the model can make) → denoise at the model's size, everything any frame will
sample generated (show model: masked denoising; SD inpainting / img2img directory: its diffusers
pipeline) → finishing (:mod:`upscale_finish`: the card upscaled by the show upscaler) → each frame
samples the card through the inverse of its matrix via the task's look (regrained with the plate's
grain) → element EXR + in-context proxy per frame, with coverage and flow flicker (:mod:`qc`) measured on the way.

The parts, in the order they run:

- :mod:`plan`: the checked spec (:class:`plan.VariationPlan`) and how a frame's plate, matte and depth are read.
- :mod:`track`: the plate's camera track (:mod:`camera`), cached.
- :mod:`card`: where the card sits, cropping the plate to it, sampling it bicubically through a frame's matrix.
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

import math
import os
import time
from collections import deque
from collections.abc import Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import contextmanager
from typing import TYPE_CHECKING

import cv2
import numpy as np

from generation.engine import camera, frame_cache, qc
from generation.engine.backends import load_denoiser
from generation.engine.card import Card, Track, card_coverage, card_geometry, surely_covered
from generation.engine.device import pick_device
from generation.engine.encoding import known_and_mask
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, frame_workers, provenance_attributes
from generation.engine.frames import Window
from generation.engine.looks import Look, depth_reference, make_look
from generation.engine.plan import VariationPlan, depth_channel, plan_variation
from generation.engine.sequence import frame_path
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationResult, VariationSpec
from generation.engine.track import (
    QuickTrack,
    camera_track,
    has_camera_track,
    has_quick_track,
    luma,
    motion_slack,
    quick_track,
)
from generation.engine.upscale_finish import Finishing

if TYPE_CHECKING:
    import torch

_MEASURE_AHEAD = 2  # frame pairs beyond one per worker whose flicker may still be being measured
_IDENTITY = np.eye(3)  # the first frame's matrix in every track (camera's convention)

__all__ = ["VariationResult", "VariationSpec", "depth_channel", "generate_variation"]


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

    def full_track() -> Track:
        return camera_track(spec, plan.header, plan.read_matte, progress, should_cancel)

    with Outputs(spec.out_dir) as outputs:
        quick = has_quick_track(spec, plan.header)
        with _timed(timings, "track"):
            if quick:
                made = _quick_card(plan, quick_track(spec, plan.header, plan.read_matte, progress, should_cancel))
            else:
                track = full_track()
        with _timed(timings, "prepare"):
            card, region = made if quick else _card(plan, track)  # refuses an impossible card before the model loads
            plan, denoise = load_denoiser(plan, device)
        carry = _make_card(plan, card, region, denoise, device, timings, progress, should_cancel)
        if quick:
            if not has_camera_track(spec):  # else the full track is known (an earlier variation's): frame 0 pooled too
                with _timed(timings, "hero"):
                    carry.hero(outputs, progress, on_frame, should_cancel)
            with _timed(timings, "track_full"):
                track = full_track()
            if not _card_holds(plan, card, carry.generated, track):
                # The quick track's card misses what some frame needs: the card of the full track, made again.
                timings["card_remade"] = 1.0
                card, region = _card(plan, track)
                carry = _make_card(plan, card, region, denoise, device, timings, progress, should_cancel)
        with _timed(timings, "frames"):
            flicker, coverage, window = carry.run(track, outputs, progress, on_frame, should_cancel)
    return VariationResult(
        frames=plan.frames,
        exr_pattern=outputs.exr_pattern,
        proxy_pattern=outputs.proxy_pattern,
        compute_seconds=time.perf_counter() - start,
        flicker_ratio=flicker,
        element_window=window.as_dict() if window else {},
        timings=timings,
        coverage=coverage,
        camera_model=track.model,
        track_notes=list(track.notes),
    )


def _make_card(plan, card, region, denoise, device, timings, progress, should_cancel) -> _Carry:
    """The card's pixels: denoised from the first frame's plate around what is generated, then finished."""
    with _timed(timings, "prepare"):
        known, mask, depth_ref = _prepare(plan, card, region)
    with _timed(timings, "denoise"):
        sample = denoise(known, mask, lambda i, n: progress("denoise", i, n), should_cancel)
        look = make_look(plan, card, sample, known, depth_ref)
    with _timed(timings, "finish"):
        finishing = Finishing(plan.spec.upscaler_path, plan.spec.grain_profile, plan.spec.seed, str(device))
        look = finishing.card(look)
    return _Carry(plan, card, look, mask[0, 0].numpy(), finishing)


@contextmanager
def _timed(timings: dict[str, float], stage: str) -> Iterator[None]:
    t = time.perf_counter()
    yield
    timings[stage] = timings.get(stage, 0.0) + time.perf_counter() - t


def _card(plan: VariationPlan, track: Track) -> tuple[Card, np.ndarray]:
    """The card holding every frame's matte box seen from frame 0, and where on it (model size) any frame's
    matte lands: what must be generated."""
    boxes = [plan.matte_box(f) for f in plan.frames]
    if boxes[0] is None:
        raise ValueError(f"the matte of frame {plan.spec.first} is empty: nothing to generate")
    card = card_geometry(boxes, track, plan.model.sample_size, plan.info.anchor, plan.info.context, plan.pixel_aspect)
    return card, _generated_region(plan, plan.frames, track, card)


def _quick_card(plan: VariationPlan, quick: QuickTrack) -> tuple[Card, np.ndarray]:
    """:func:`_card` from the quick track's frames alone, grown by :func:`track.motion_slack` (and what is
    generated with it) so it also holds the frames between them; :func:`_card_holds` checks that later."""
    mattes = [plan.read_matte(plan.frames[k]) for k in quick.keys]
    boxes = [plan.matte_box(plan.frames[k], m) for k, m in zip(quick.keys, mattes, strict=True)]
    if boxes[0] is None:
        raise ValueError(f"the matte of frame {plan.spec.first} is empty: nothing to generate")
    slack = motion_slack(quick, [None if b is None else (b.x, b.y, b.width, b.height) for b in boxes])
    card = card_geometry(
        boxes,
        quick.track,
        plan.model.sample_size,
        plan.info.anchor,
        plan.info.context,
        plan.pixel_aspect,
        slack=slack,
    )
    region = _generated_region(plan, [plan.frames[k] for k in quick.keys], quick.track, card, mattes)
    grow = int(math.ceil(slack / min(card.scale)))
    if grow > 0:
        region = cv2.dilate(region, np.ones((2 * grow + 1, 2 * grow + 1), np.uint8))
    return card, region


def _card_holds(plan: VariationPlan, card: Card, generated: np.ndarray, track: Track) -> bool:
    """Whether ``card`` (its model-size ``generated`` mask) holds every frame's matte through the full ``track``:
    each matte box inside the card and every card pixel a matte sees generated. Refuses (CardTooBig) a shot
    the full track says needs too big a card, as :func:`_card` does."""
    boxes = [plan.matte_box(f) for f in plan.frames]
    union = camera.union_in_reference([None if b is None else (b.x, b.y, b.width, b.height) for b in boxes], track)
    first = next(i for i, b in enumerate(boxes) if b is not None)
    b = boxes[first]
    camera.check_card_growth(
        union, camera.box_in_reference(track.matrices[first], b.x, b.y, b.x + b.width, b.y + b.height)
    )
    x0, y0, x1, y1 = union
    if x0 < card.x or y0 < card.y or x1 > card.x + card.width or y1 > card.y + card.height:
        return False
    need = _generated_region(plan, plan.frames, track, card)
    return bool((generated[need > 1e-4] > 0).all())


def _generated_region(
    plan: VariationPlan, frame_list: list[int], track: Track, card: Card, mattes: list[np.ndarray] | None = None
) -> np.ndarray:
    """:func:`camera.generated_region` of ``frame_list``'s mattes (``mattes`` when the caller has them) placed by
    ``track`` on ``card``, made once per request (:data:`frame_cache.DERIVED`): every variation of it has the same
    mattes, track and card geometry (the seed changes only the pixels). Handed out as kept: not to be written to."""
    spec = plan.spec
    if spec.matte_pattern:
        matte_keys: tuple = tuple(_file_key(frame_path(spec.matte_pattern, f)) for f in frame_list)
    else:
        matte_keys = (spec.rect, (plan.display.width, plan.display.height), len(frame_list))
    key = (
        "generated-region",
        matte_keys,
        np.ascontiguousarray(track.matrices, np.float64).tobytes(),
        (card.x, card.y),
        tuple(card.scale),
        (card.model_h, card.model_w),
    )

    def make() -> tuple[np.ndarray]:
        seen = mattes if mattes is not None else (plan.read_matte(f) for f in frame_list)
        region = camera.generated_region(seen, track, (card.x, card.y), card.scale, (card.model_h, card.model_w))
        region.setflags(write=False)
        return (region,)

    return frame_cache.DERIVED.get_or_make(key, make, spec.plate_pattern)[0]


def _prepare(plan: VariationPlan, card: Card, region: np.ndarray) -> tuple[torch.Tensor, torch.Tensor, float | None]:
    """The model-space inputs to denoise the card from: the first frame's plate around what is generated. Made
    once per request (:data:`frame_cache.DERIVED`): its variations differ only in the seed the denoise draws."""
    import torch

    spec = plan.spec
    first = spec.first
    key = (
        "prepare",
        _plate_key(spec, first),
        _matte_key(spec, first),
        plan.depth_name,
        card,
        np.ascontiguousarray(region, np.float32).tobytes(),
        plan.info.mode,
        plan.model.colour_encoding,
        spec.working_space,
        spec.config_name,
    )

    def make() -> tuple:
        plate0, matte0, depth0 = plan.read_frame(first)
        known, mask = known_and_mask(plate0, matte0, card, plan, region)
        return known.numpy(), mask.numpy(), depth_reference(depth0, matte0)

    known, mask, depth_ref = frame_cache.DERIVED.get_or_make(key, make, spec.plate_pattern)
    return torch.from_numpy(known.copy()), torch.from_numpy(mask.copy()), depth_ref


class _Carry:
    """Each frame: the look over the frame's matte box, premultiplied by the matte, over the plate;
    coverage (how much of the matte sampled generated card pixels) counted per frame, and flow flicker
    measured where the element can be (the card's footprint). Frames are made on the frame writer's pool
    (:func:`frame_writer.frame_workers` at once; each frame depends only on the card and its own plate);
    :meth:`in_order` adds their figures in frame order, the flicker of each consecutive pair computed on a
    pool of its own, so every figure is the one a single thread would get, to the bit.

    :meth:`hero` makes the first frame before the track is known (its matrix is the identity in every
    track): its files are written at once, its flicker inputs taken once :meth:`run` has the track."""

    def __init__(
        self, plan: VariationPlan, card: Card, look: Look, generated: np.ndarray, finishing: Finishing
    ) -> None:
        self.plan, self.card, self.look = plan, card, look
        self.generated, self.finishing = generated, finishing
        display = plan.display
        self.origin = Window(0, 0, display.width, display.height)
        self.track: Track | None = None
        self.rs: tuple[slice, slice] | None = None
        self.meter = qc.FlowFlickerMeter(group=plan.spec.plate_pattern)  # the plate's side shared per request
        self.coverage = qc.CoverageMeter()
        self.window: Window | None = None  # the union of the frames' data windows
        self.measured: deque[Future] = deque()
        self.previous = None  # the last frame's flicker inputs
        self.workers = frame_workers()
        self.made_first: tuple[Delivered, np.ndarray, np.ndarray] | None = None  # hero: (delivered, plate, matte)

    def _writer(self, outputs: Outputs) -> FrameWriter:
        plan = self.plan
        extra = {"parallel_track:depth_channel": plan.depth_name} if plan.depth_name else {}
        extra |= self.finishing.attributes()
        attributes = provenance_attributes(plan.spec, plan.model, plan.strength, extra)
        return FrameWriter(plan.spec, outputs, plan.display, attributes)

    def hero(self, outputs: Outputs, progress, on_frame, should_cancel) -> None:
        """The first frame's EXR and proxy, written now (frame 1 of n in progress and ``on_frame``)."""
        plan, n = self.plan, len(self.plan.frames)

        def make(k: int, frame: int, pixels) -> Delivered:
            plate, matte, _ = pixels
            plate = plate.copy()  # the plate before it is composited over, for the flicker figure
            delivered = self._pixels(_IDENTITY, frame, pixels)
            self._name_plate(delivered, _plate_key(self.plan.spec, frame))
            self.made_first = (delivered, plate, matte)
            return delivered

        self._writer(outputs).run(
            plan.frames[:1],
            plan.read_frame,
            make,
            progress=lambda stage, done, _: progress(stage, done, n),
            on_frame=on_frame,
            should_cancel=should_cancel,
        )

    def run(
        self, track: Track, outputs: Outputs, progress, on_frame, should_cancel
    ) -> tuple[float, float, Window | None]:
        """Every frame not made yet, on the pool, placed by ``track``; the figures of all of them."""
        plan = self.plan
        self.track = track
        region = self.card.footprint(track).intersect(self.origin) or self.origin
        self.rs = rs = (slice(region.y, region.y + region.height), slice(region.x, region.x + region.width))
        done = 0
        if self.made_first is not None and not np.array_equal(track.matrices[0], _IDENTITY):
            self.made_first = None  # cannot happen for a feature track; made again below if it did
        pool = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="variation-flicker")
        with pool as self.meter_pool, _kernel_threads(self.workers):
            if self.made_first is not None:
                delivered, plate, matte = self.made_first
                self.made_first = None
                coverage, _ = delivered.measures
                flicker = self.meter.prepare_with(luma(delivered.proxy_rgb[rs]), self._plate_side(plan.frames[0], plate, matte))
                delivered.measures = (coverage, flicker)
                self.in_order(0, plan.frames[0], delivered)
                done = 1
            n = len(plan.frames)
            self._writer(outputs).run(
                plan.frames[done:],
                plan.read_frame,
                lambda k, frame, pixels: self.frame(k + done, frame, pixels),
                progress=lambda stage, k, _: progress(stage, k + done, n),
                on_frame=on_frame,
                should_cancel=should_cancel,
                workers=self.workers,
                in_order=self.in_order,
            )
            while self.measured:
                self.meter.add_terms(self.measured.popleft().result())
        return self.meter.ratio(), self.coverage.figure(), self.window

    def frame(self, k: int, frame: int, pixels) -> Delivered:
        """One frame's element and composite (any thread: touches nothing shared)."""
        plate, matte, _ = pixels
        plate_key = _plate_key(self.plan.spec, frame)
        plate_side = self._plate_side(frame, plate, matte, plate_key)  # before the plate is composited over
        delivered = self._pixels(self.track.matrices[k], frame, pixels)
        self._name_plate(delivered, plate_key)
        coverage, _ = delivered.measures
        delivered.measures = (coverage, self.meter.prepare_with(luma(delivered.proxy_rgb[self.rs]), plate_side))
        return delivered

    def _name_plate(self, delivered: Delivered, plate_key: tuple) -> None:
        """Name the plate frame under ``delivered``'s composite (:func:`_plate_key`), so its proxy may take what lies
        outside the matte's tiles from an earlier variation's (:func:`frame_writer.make_frame_proxy`)."""
        delivered.plate_key = plate_key
        delivered.plate_group = self.plan.spec.plate_pattern

    def _plate_side(self, frame: int, plate: np.ndarray, matte: np.ndarray, plate_key: tuple | None = None) -> tuple:
        """The flicker meter's plate half of ``frame`` (:meth:`qc.FlowFlickerMeter.plate_side`), made once per
        request: every variation of it has the same plate, matte and footprint (``plate`` not yet composited).
        ``plate_key``: the frame's :func:`_plate_key` when the caller has it."""
        spec, rs = self.plan.spec, self.rs
        key = (
            "flicker-plate",
            plate_key or _plate_key(spec, frame),
            _matte_key(spec, frame),
            (rs[0].start, rs[0].stop, rs[1].start, rs[1].stop),
            self.meter.work_size,
        )
        return frame_cache.PLATE_SIDES.get_or_make(
            key, lambda: self.meter.plate_side(luma(plate[rs]), matte[rs]), spec.plate_pattern
        )

    def _pixels(self, motion: np.ndarray, frame: int, pixels) -> Delivered:
        """The frame's element and composite (the plate, composited over in place) and its coverage terms.

        Premultiplied: where the matte is 0 the element is 0 (+0 in every channel), so the look is sampled and
        composited only over :func:`matte_spans` (the tiles of the box the matte is in), not the whole
        box; where the matte is > 0 each pixel is what the whole box's computation gives, to the bit."""
        plate, matte, depth = pixels
        display = self.plan.display
        box = self.plan.matte_box(frame, matte)
        # The element over its data window only (the box): what the EXR stores, no display-size frame to crop.
        element = np.zeros((1, 1, 4) if box is None else (box.height, box.width, 4), np.float16)
        comp = plate
        coverage = None
        changed: list[Window] = []
        if box is not None:
            bs = _slices(box)
            coverage = coverage_terms(self.generated, self.card, matte[bs], motion, box)
            grained = self.finishing.regrains(self.look)
            # Grain is drawn over the whole box (its shape and place seed it): then the box is one span.
            for sub in [box] if grained else matte_spans(matte[bs], box):
                changed.append(sub)
                ss = _slices(sub)
                es = _slices(Window(sub.x - box.x, sub.y - box.y, sub.width, sub.height))  # within the element
                alpha = matte[ss][..., None]
                keep = alpha > 0
                generated = self.look.region(plate, depth, motion, sub)
                if grained:
                    generated = self.finishing.regrain(self.look, generated, frame, (box.x, box.y))
                np.multiply(generated, alpha, out=generated)
                # Matte 0 is RGB +0: generated × 0 is ±0 by the sample's sign (+ 0 makes it +0), NaN where
                # the sample is not finite.
                generated += np.float32(0.0)
                if np.isnan(generated).any():
                    np.copyto(generated, np.float32(0.0), where=~keep)
                rgb16, alpha16 = generated.astype(np.float16), (alpha + np.float32(0.0)).astype(np.float16)
                element[es + (slice(0, 3),)] = rgb16
                element[es + (slice(3, 4),)] = alpha16
                # Composite what the EXR holds, so the proxy shows exactly the delivered element (its half
                # values widened again, each channel once: no float32 copy of the whole RGBA box).
                over = rgb16.astype(np.float32)
                under = alpha16.astype(np.float32)
                np.subtract(np.float32(1.0), under, out=under)
                under = np.multiply(comp[ss], under)
                over += under
                np.copyto(comp[ss], over, where=keep)  # matte 0: the plate, bit for bit
            data_window = Window(display.x + box.x, display.y + box.y, box.width, box.height)
        else:
            data_window = Window(display.x, display.y, 1, 1)
        return Delivered(
            element, comp, data_window, measures=(coverage, None), changed=tuple(changed), element_over_data=True
        )

    def in_order(self, k: int, frame: int, delivered: Delivered) -> None:
        """A made frame's figures, in frame order (the calling thread)."""
        coverage, flicker = delivered.measures
        delivered.measures = None
        if coverage is not None:
            self.coverage.add_terms(coverage)
            data_window = delivered.data_window
            self.window = data_window if self.window is None else self.window.union(data_window)
        if self.previous is not None:
            self.measured.append(self.meter_pool.submit(self.meter.pair_terms, self.previous, flicker))
        self.previous = flicker
        # Flow flicker may run slower than frames are made: never hold more than a few frames for it.
        while len(self.measured) > self.workers + _MEASURE_AHEAD:
            self.meter.add_terms(self.measured.popleft().result())


_SPAN_TILE = 32  # the side of :func:`matte_spans`'s tiles (fewer, larger spans against a tighter cover)


def coverage_terms(
    generated: np.ndarray, card: Card, matte: np.ndarray, motion: np.ndarray, box: Window
) -> tuple[float, float]:
    """A frame's coverage terms (:meth:`qc.CoverageMeter.terms` of ``matte`` over ``box`` and the card's
    :func:`card_coverage`); the usual frame, whose every matte pixel samples only generated card pixels
    (:func:`surely_covered`), without sampling the coverage image (a fifth of the CPU it took)."""
    if not np.any(~(matte <= 0) & ~surely_covered(generated, card, motion, box)):
        return qc.CoverageMeter.covered_terms(matte)
    return qc.CoverageMeter.terms(matte, card_coverage(generated, card, motion, box))


def matte_spans(alpha: np.ndarray, box: Window, tile: int = _SPAN_TILE) -> list[Window]:
    """Where ``alpha`` (the (h, w) matte over ``box``, array coords) is > 0, as disjoint sub-windows of ``box``:
    the ``tile`` × ``tile`` tiles holding any matte > 0, each band of tiles' runs of them joined, and a run
    joined to the one above it when it has the same columns. Every pixel with alpha > 0 is in exactly one."""
    h, w = alpha.shape
    bands, across = -(-h // tile), -(-w // tile)
    seen = np.zeros((bands * tile, across * tile), bool)
    np.greater(alpha, 0, out=seen[:h, :w])
    kept = np.zeros((bands, across + 2), np.int8)
    kept[:, 1:-1] = seen.reshape(bands, tile, across, tile).any(axis=(1, 3))
    edges = np.diff(kept, axis=1)  # +1 where a run of tiles starts, -1 one past where it ends
    spans: list[Window] = []
    above: dict[tuple[int, int], int] = {}  # the previous band's runs (x0, x1) -> their index in spans
    for b in range(bands):
        starts, stops = np.flatnonzero(edges[b] == 1), np.flatnonzero(edges[b] == -1)
        y0, y1 = b * tile, min(b * tile + tile, h)
        here: dict[tuple[int, int], int] = {}
        for t0, t1 in zip(starts.tolist(), stops.tolist(), strict=True):
            x0, x1 = t0 * tile, min(t1 * tile, w)
            k = above.get((x0, x1))
            if k is not None:
                prev = spans[k]
                spans[k] = Window(prev.x, prev.y, prev.width, prev.height + y1 - y0)
            else:
                k = len(spans)
                spans.append(Window(box.x + x0, box.y + y0, x1 - x0, y1 - y0))
            here[(x0, x1)] = k
        above = here
    return spans


def _slices(box: Window) -> tuple[slice, slice]:
    return slice(box.y, box.y + box.height), slice(box.x, box.x + box.width)


def _plate_key(spec: VariationSpec, frame: int) -> tuple:
    """What names plate frame ``frame`` as the variation reads it: the file (path, size, mtime) and the colour."""
    return _file_key(frame_path(spec.plate_pattern, frame)), tuple(sorted(spec.plate_colour().items()))


def _matte_key(spec: VariationSpec, frame: int) -> tuple | None:
    """What names the region of ``frame``: its matte file, or the spec's rectangle."""
    return _file_key(frame_path(spec.matte_pattern, frame)) if spec.matte_pattern else spec.rect


def _file_key(path: str) -> tuple:
    st = os.stat(path)
    return os.path.abspath(path), st.st_size, st.st_mtime_ns


@contextmanager
def _kernel_threads(workers: int) -> Iterator[None]:
    """While ``workers`` frames are made at once, OpenCV and torch run one thread each inside them, so the
    pool and the kernels together use the cores without oversubscribing them (the denoise, before, keeps
    torch's own thread count)."""
    if workers <= 1:
        yield
        return
    import cv2
    import torch

    cv_threads, torch_threads = cv2.getNumThreads(), torch.get_num_threads()
    cv2.setNumThreads(1)
    torch.set_num_threads(1)
    try:
        yield
    finally:
        cv2.setNumThreads(cv_threads)
        torch.set_num_threads(torch_threads)
