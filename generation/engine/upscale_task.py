"""The ``upscale`` task: an element (a variation, a released element, a roto matte) finished at the plate's
resolution by the show upscaler, then regrained with the plate's grain.

Its runner keeps the contract of :mod:`spec` (the signature and result of ``variation.generate_variation``) and
reuses :mod:`frame_writer`. What it reads:

- ``spec.plate_pattern``: the plate; its display window is the size the element is brought to, its grain
  profile (``spec.grain_profile``, else measured on its frames) is the grain put back;
- ``params["element"]``: the element's EXR sequence (``####``): premultiplied RGBA, or a matte (``A`` only: a matte
  carries no grain, so it is resized with Lanczos-3 and not regrained);
- ``spec.model_path``: the show upscaler's directory (an approved ``upscaler``, checked by the portal);
- ``spec.seed``: the grain's seed, with the frame number (the same release is byte-identical);
- ``params["multi_frame"]`` (optional): ``true`` or a radius in frames: each frame's RGB is upscaled with the
  element's frames around it (:mod:`upscale_video`: sub-pixel detail from the motion, about fifty times the cost).

Per frame: the element's alpha box (plus a margin) is upscaled (the upscaler's largest factor that fits, then
Lanczos-3 the rest of the way), alpha by Lanczos-3, then regrained in scene-linear on the element only; pixels
whose alpha is 0 hold nothing, and the proxy shows the plate there bit for bit.
"""

from __future__ import annotations

import os
import time

import numpy as np

from generation.engine import frames, grain, task_kinds, upscale, upscale_video
from generation.engine.frame_writer import Delivered, FrameWriter, Outputs, provenance_attributes
from generation.engine.frames import Window
from generation.engine.sequence import frame_path
from generation.engine.spec import CancelFn, FrameFn, ProgressFn, VariationResult, VariationSpec
from generation.engine.upscale_params import multi_frame_radius

MARGIN = 8  # element pixels around the alpha box, so the upscaler sees the edge's surroundings


def _check(spec: VariationSpec, params: dict) -> tuple[upscale.UpscalerCard, Window, frames.FrameHeader]:
    element = params.get("element")
    if not isinstance(element, str) or not element:
        raise ValueError("an upscale needs params['element']: the element's EXR sequence (####)")
    if spec.first > spec.last:
        raise ValueError(f"first frame {spec.first} is after last frame {spec.last}")
    for pattern in (spec.plate_pattern, element):
        missing = [f for f in range(spec.first, spec.last + 1) if not os.path.isfile(frame_path(pattern, f))]
        if missing:
            raise ValueError(f"{pattern}: {len(missing)} frame(s) missing, first {missing[0]}")
    card = upscale.read_upscaler_card(spec.model_path)
    task_kinds.check_model_kind(spec.task, card.kind, card.name)
    display = frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False).display_window
    source = frames.read_header(frame_path(element, spec.first), verify_pixels=False)
    if not ({"R", "G", "B", "A"} <= set(source.channels) or "A" in source.channels):
        raise ValueError(f"{source.path}: an element is RGBA or a matte (A); it has {', '.join(source.channels)}")
    sw, sh = source.display_window.width, source.display_window.height
    if abs(sw / sh - display.width / display.height) > 0.01 * display.width / display.height:
        raise ValueError(f"the element is {sw}x{sh}, the plate {display.width}x{display.height}: not the same aspect")
    return card, display, source


def _profile(spec: VariationSpec, progress: ProgressFn) -> grain.GrainProfile:
    """The plate's grain: the spec's (the portal keeps it with the plate), else measured on its frames."""
    if spec.grain_profile is not None:
        return grain.GrainProfile.from_dict(spec.grain_profile)
    progress("grain", 0, 1)
    profile = grain.measure_plate(spec.plate_pattern, spec.first, spec.last, **spec.plate_colour())
    progress("grain", 1, 1)
    return profile


def _box(alpha: np.ndarray) -> tuple[slice, slice] | None:
    """The alpha box grown by MARGIN (element pixels), or None for an empty alpha."""
    box = frames.alpha_bbox(alpha, Window(0, 0, alpha.shape[1], alpha.shape[0]))
    if box is None:
        return None
    y0, x0 = max(box.y - MARGIN, 0), max(box.x - MARGIN, 0)
    y1, x1 = min(box.ymax + 1 + MARGIN, alpha.shape[0]), min(box.xmax + 1 + MARGIN, alpha.shape[1])
    return slice(y0, y1), slice(x0, x1)


def finish_element(
    rgba: np.ndarray,
    width: int,
    height: int,
    upscaler_dir: str | None,
    profile: grain.GrainProfile,
    *,
    seed: int,
    frame: int,
    device: str = "cpu",
    neighbours: list[np.ndarray] | None = None,
) -> np.ndarray:
    """An element float32 (h, w, 4) premultiplied scene-linear → (height, width, 4): RGB by the show upscaler (and
    Lanczos-3 the rest of the way), alpha by Lanczos-3 clamped to [0, 1], then regrained with ``profile`` (seed and
    frame). RGB is 0 wherever the new alpha is 0. The same inputs give the same bytes. ``neighbours``: the
    element's frames around this one (same size, RGBA): RGB is then the multi-frame upscale
    (:mod:`upscale_video`), the neighbours cropped to this frame's alpha box."""
    out = np.zeros((height, width, 4), np.float32)
    region = _box(rgba[..., 3])
    if region is None:
        return out
    h, w = rgba.shape[:2]
    sy, sx = height / h, width / w
    ys, xs = region
    y0, y1 = round(ys.start * sy), round(ys.stop * sy)
    x0, x1 = round(xs.start * sx), round(xs.stop * sx)
    crop = rgba[region]
    if neighbours:
        crops = [crop[..., :3]] + [n[region][..., :3] for n in neighbours]
        rgb = upscale_video.upscale_to(crops, 0, x1 - x0, y1 - y0, upscaler_dir, device=device)
    else:
        rgb = upscale.upscale_to(crop[..., :3], x1 - x0, y1 - y0, upscaler_dir, device=device)
    alpha = np.clip(upscale.lanczos(crop[..., 3:], x1 - x0, y1 - y0)[..., 0], 0.0, 1.0)
    alpha[alpha < 1e-4] = 0.0  # Lanczos ringing outside the edge is not coverage
    patch = np.concatenate([rgb * (alpha > 0)[..., None], alpha[..., None]], axis=2)
    out[y0:y1, x0:x1] = patch
    return grain.apply_grain(out, profile, seed=seed, frame=frame)


def upscale_element(
    spec: VariationSpec,
    *,
    on_progress: ProgressFn | None = None,
    on_frame: FrameFn | None = None,
    should_cancel: CancelFn | None = None,
    params: dict | None = None,
) -> VariationResult:
    """Bring ``params['element']`` to the plate's display window with the show upscaler and the plate's grain; see
    the module docstring. Writes ``<out_dir>/exr/element.####.exr`` (half, premultiplied RGBA or A, data window the
    alpha's box, provenance: upscaler, its manifest hash, the grain profile's hash) and the proxies (the element over
    the plate). On cancel or error everything it created is removed."""
    started = time.perf_counter()
    params = dict(params or {})
    progress: ProgressFn = on_progress or (lambda stage, k, n: None)
    card, display, source = _check(spec, params)
    matte_only = "R" not in source.channels
    profile = grain.EMPTY if matte_only else _profile(spec, progress)
    timings = {"grain": time.perf_counter() - started}
    extra = {"parallel_track:upscaler": card.name, "parallel_track:upscaler_manifest_sha256": card.manifest_hash,
             "parallel_track:grain_profile_sha256": profile.sha256(),
             "parallel_track:source_element": os.path.basename(params["element"])}
    union: list[Window] = []
    radius = multi_frame_radius(params)
    extra["parallel_track:upscale_method"] = (
        "Lanczos-3 (a matte)" if matte_only
        else f"multi-frame, {radius} frame{'s' if radius > 1 else ''} each side" if radius else "single-frame")

    def read(frame: int):
        plate = frames.read_channels(frame_path(spec.plate_pattern, frame), ("R", "G", "B"), **spec.plate_colour())
        if matte_only:
            alpha = frames.read_matte(frame_path(params["element"], frame))
            return plate, np.concatenate([np.zeros(alpha.shape + (3,), np.float32), alpha[..., None]], axis=2)
        return plate, frames.read_rgba(frame_path(params["element"], frame))[0]

    def make(k: int, frame: int, pixels) -> Delivered:
        plate, element = pixels
        if matte_only:
            up = np.zeros((display.height, display.width, 4), np.float32)
            up[..., 3] = np.clip(upscale.lanczos(element[..., 3:], display.width, display.height)[..., 0], 0, 1)
        else:
            up = finish_element(element, display.width, display.height, spec.model_path, profile,
                                seed=spec.seed, frame=frame, device=spec.device or "cpu", neighbours=_around(frame))
        return _delivered(up, plate, display, matte_only, union)

    def _around(frame: int) -> list[np.ndarray] | None:
        """The element's frames within ``params['multi_frame']`` frames of this one (none when it is 0)."""
        if not radius or matte_only:
            return None
        near = [f for f in range(frame - radius, frame + radius + 1) if f != frame and spec.first <= f <= spec.last]
        return [frames.read_rgba(frame_path(params["element"], f))[0] for f in near]

    with Outputs(spec.out_dir) as outputs:
        t = time.perf_counter()
        writer = FrameWriter(spec, outputs, display, provenance_attributes(spec, card, 1.0, extra))
        writer.run(list(range(spec.first, spec.last + 1)), read, make, progress=progress, on_frame=on_frame,
                   should_cancel=should_cancel)
        timings["frames"] = time.perf_counter() - t
    window = union[0] if union else None
    for w in union[1:]:
        window = window.union(w)
    return VariationResult(
        frames=list(range(spec.first, spec.last + 1)), exr_pattern=outputs.exr_pattern,
        proxy_pattern=outputs.proxy_pattern, compute_seconds=time.perf_counter() - started,
        flicker_ratio=0.0,  # an upscale carries nothing through the shot; the element's own flicker is its source's
        element_window=window.as_dict() if window else {}, timings=timings)


def _delivered(up: np.ndarray, plate: np.ndarray, display: Window, matte_only: bool, union: list) -> Delivered:
    alpha = up[..., 3]
    box = frames.alpha_bbox(alpha, Window(0, 0, display.width, display.height))
    data_window = (Window(display.x + box.x, display.y + box.y, box.width, box.height) if box
                   else Window(display.x, display.y, 1, 1))
    if box:
        union.append(data_window)
    element = up.astype(np.float16)
    comp = plate.copy()
    inside = alpha > 0
    e32 = element.astype(np.float32)
    over = (e32[..., :3] + plate * (1.0 - e32[..., 3:])) if not matte_only else (
        plate * (1.0 - 0.5 * e32[..., 3:]) + 0.5 * e32[..., 3:] * np.float32([1.0, 0.2, 0.2]))
    np.copyto(comp, over, where=inside[..., None])  # alpha 0: the plate, bit for bit
    names = ("A",) if matte_only else ("R", "G", "B", "A")
    return Delivered(element[..., 3:] if matte_only else element, comp, data_window, names)
