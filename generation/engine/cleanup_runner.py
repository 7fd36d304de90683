"""The cleanup task's runner: a plate and a matte sequence of what to remove in, an RGBA element per frame out.

It keeps the runner contract of :mod:`spec` and reuses :mod:`plan` (the checked spec: frames, matte, model,
colour), :mod:`backends` (the show model's denoiser) and :mod:`frame_writer`:

- ``spec.matte_pattern`` (or ``rect``) marks what to remove, per frame (a released roto, a matte from Nuke).
- :mod:`cleanup` fills it from the plate's own frames; what no frame reveals is generated ONCE, in the
  reference frame, by the show's model (masked denoising of a crop round it at the model's size, seeded by the
  variation's seed, so N variations differ only there) and carried to the other frames with the background.
- Per frame ``exr/element.####.exr``: premultiplied half RGBA, alpha = the matte, data window = the matte's
  box; the comp over the plate is the plate, bit for bit, where the matte is 0. ``proxy/incontext.####.jpg``:
  the comp through the spec's display/view.
- Figures: coverage (the fraction of matte pixels that got fill: 1.0 unless a frame could not be filled) and
  :func:`cleanup.flicker_ratio` (the fill's warping error over the surrounding plate's).
"""

from __future__ import annotations

import time

import numpy as np
import torch

from generation.engine import frames
from generation.engine.backends import load_denoiser
from generation.engine.cleanup import CleanupOptions, CleanupShot, flicker_ratio
from generation.engine.device import pick_device
from generation.engine.encoding import decode, to_model
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, provenance_attributes
from generation.engine.frames import Window
from generation.engine.plan import VariationPlan, plan_variation
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationResult, VariationSpec

METHOD = (
    "dis flow, round-trip checked, completed by homography + smooth residual; plate pixels traced both ways "
    "through it and through the neighbouring pairs' flow, averaged unless one agrees 4x better; "
    "unseen generated once; poisson blend, seam outliers left out"
)
CONTEXT = 0.5  # plate margin round the never-revealed part's box in the model's crop, as a fraction of its size


def _model_generator(plan: VariationPlan, denoise, progress: ProgressFn, should_cancel: CancelFn | None):
    """``generate(frame, unseen)`` for :meth:`CleanupShot.fill`: the show model's masked denoising of a crop
    round the unseen pixels, at the model's size, pasted back where they are."""
    mh, mw = plan.model.sample_size

    def generate(frame: np.ndarray, unseen: np.ndarray) -> np.ndarray:
        ys, xs = np.nonzero(unseen)
        h, w = unseen.shape
        bw, bh = xs.max() - xs.min() + 1, ys.max() - ys.min() + 1
        side_x, side_y = int(bw * (1 + 2 * CONTEXT)), int(bh * (1 + 2 * CONTEXT))
        aspect = mw / mh  # the crop has the model's shape, so nothing is squeezed
        if side_x / side_y < aspect:
            side_x = int(round(side_y * aspect))
        else:
            side_y = int(round(side_x / aspect))
        cx, cy = (xs.min() + xs.max()) // 2, (ys.min() + ys.max()) // 2
        x0 = int(np.clip(cx - side_x // 2, 0, max(0, w - side_x)))
        y0 = int(np.clip(cy - side_y // 2, 0, max(0, h - side_y)))
        x1, y1 = min(w, x0 + side_x), min(h, y0 + side_y)
        crop, hole = frame[y0:y1, x0:x1], unseen[y0:y1, x0:x1].astype(np.float32)
        small = frames.resize(crop, mw, mh)
        small_hole = frames.resize(hole, mw, mh) > 1e-3
        known = np.clip(to_model(small, plan) * 2.0 - 1.0, -1.0, 1.0)
        known = np.where(small_hole[..., None], 0.0, known)
        known_t = torch.from_numpy(np.ascontiguousarray(known.transpose(2, 0, 1)[None], np.float32))
        mask_t = torch.from_numpy(small_hole[None, None].astype(np.float32))
        sample = denoise(known_t, mask_t, lambda i, n: progress("denoise", i, n), should_cancel)
        made = frames.resize(decode(sample, plan), x1 - x0, y1 - y0)
        out = frame.copy()
        region = out[y0:y1, x0:x1]
        region[hole > 0] = made[hole > 0]
        return out

    return generate


def cleanup_variation(
    spec: VariationSpec,
    *,
    on_progress: ProgressFn | None = None,
    on_frame: FrameFn | None = None,
    should_cancel: CancelFn | None = None,
) -> VariationResult:
    """One cleanup variation of the plate's frames ``first..last`` (see the module docstring). A bad spec
    (frames, matte, model, colour) is refused before anything is written; progress stages "flow",
    "propagate", "denoise", "frames"; on cancel or any error every file this call made is removed."""
    start = time.perf_counter()
    progress: ProgressFn = on_progress or (lambda stage, k, n: None)
    plan = plan_variation(spec)
    device = pick_device(spec.device)
    display = plan.display
    origin = Window(0, 0, display.width, display.height)
    timings: dict[str, float] = {}
    with Outputs(spec.out_dir) as outputs:
        t = time.perf_counter()
        read = [plan.read_frame(f) for f in plan.frames]
        plates, mattes = [r[0] for r in read], [r[1] for r in read]
        shot = CleanupShot(plates, mattes, CleanupOptions(), progress=progress)
        plan, denoise = load_denoiser(plan, device)
        result = shot.fill(_model_generator(plan, denoise, progress, should_cancel))
        timings["fill"] = time.perf_counter() - t
        extra = {
            "parallel_track:cleanup_method": METHOD,
            "parallel_track:cleanup_revealed": f"{result.revealed:.4f}",
            "parallel_track:cleanup_generated": f"{result.generated:.4f}",
            "parallel_track:cleanup_reference_frame": str(plan.frames[result.reference])
            if result.reference is not None
            else "",
        }
        writer = FrameWriter(spec, outputs, display, provenance_attributes(spec, plan.model, 1.0, extra))
        window: Window | None = None

        def make(k: int, frame: int, pixels) -> Delivered:
            nonlocal window
            plate, matte = plates[k], mattes[k]
            element = np.zeros((display.height, display.width, 4), np.float16)
            box = frames.alpha_bbox(matte, origin)
            if box is None:
                return Delivered(element, plate, Window(display.x, display.y, 1, 1))
            bs = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
            alpha = matte[bs][..., None]
            element[bs + (slice(0, 3),)] = result.fills[k][bs] * alpha
            element[bs + (slice(3, 4),)] = alpha
            e32 = element[bs].astype(np.float32)
            shown = plate.copy()
            over = e32[..., :3] + plate[bs] * (1.0 - e32[..., 3:])
            np.copyto(shown[bs], over, where=alpha > 0)  # matte 0: the plate, bit for bit
            data = Window(display.x + box.x, display.y + box.y, box.width, box.height)
            window = data if window is None else window.union(data)
            return Delivered(element, shown, data)

        t = time.perf_counter()
        writer.run(plan.frames, lambda f: None, make, progress=progress, on_frame=on_frame,
                   should_cancel=should_cancel)
        timings["frames"] = time.perf_counter() - t
        flicker = flicker_ratio(shot, result.frames)
    return VariationResult(
        frames=plan.frames,
        exr_pattern=outputs.exr_pattern,
        proxy_pattern=outputs.proxy_pattern,
        compute_seconds=time.perf_counter() - start,
        flicker_ratio=flicker,
        element_window=window.as_dict() if window else {},
        timings=timings,
        coverage=1.0,
        camera_model="",
        track_notes=list(result.notes),
    )

