"""One variation of a generation request: a generated element carried through a plate's frames.

The pipeline reads straight down in :func:`generate_variation`: check inputs → camera track →
a "card" wider than the first frame's matte by the whole pan → denoise at the model's size (show
model: masked denoising; SD inpainting / img2img directory: its diffusers pipeline) → every frame
samples the card at its camera offset → element EXR + in-context proxy per frame.

What the card is depends on the task (:mod:`task_kinds`):

- inpaint tasks (sky replacement, set extension, background fill): the card is the new element.
- ``atmosphere``: the card is the airlight, the model's image-to-image rendition of the region at
  ``strength``; each frame is ``plate * T + airlight * (1 - T)``. T = ``(1 - strength) ** (z / z_ref)``
  when the plate has a depth channel (Z, depth.Z or depth; z_ref = the median depth under the first
  frame's matte, so haze thickens with distance and is ``strength`` at z_ref; non-finite depth is far),
  else ``1 - strength`` everywhere.
- ``time_of_day``: the card is a look change, generated minus plate in the model's encoding at
  ``strength``; each frame adds it to its own plate there, so the plate's full-resolution structure
  (and anything moving in it) is kept and the palette and light change.

Depth is used only as the haze weight: neither backend has a depth input channel.
"""

from __future__ import annotations

import os
import threading
import time
from collections import OrderedDict, deque
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np
import torch

from generation.engine import colour, frames, motion, task_kinds
from generation.engine.device import pick_device, pick_dtype
from generation.engine.frames import Window
from generation.engine.inpaint import Cancelled, masked_denoise
from generation.engine.registry import ModelCard, ModelError, load_show_model, read_model_card
from generation.engine.sequence import ELEMENT_NAME, PROXY_NAME, frame_path

AP1_LUMA = np.array([0.2722287, 0.6740818, 0.0536895], np.float32)  # ACEScg luminance weights
# Motion-vector channel pairs holding motion since the previous frame, x right, y down.
MOTION_CHANNELS = (("motion.x", "motion.y"), ("MV.x", "MV.y"), ("mv.x", "mv.y"))
_TRACK_CACHE_SIZE = 16
_track_cache: OrderedDict[tuple, list[tuple[float, float]]] = OrderedDict()
_track_lock = threading.Lock()

ProgressFn = Callable[[str, int, int], None]
FrameFn = Callable[[int, str, str], None]


@dataclass
class VariationSpec:
    plate_pattern: str
    matte_pattern: str | None
    rect: tuple[int, int, int, int] | None  # x, y, width, height relative to the display window
    first: int
    last: int
    model_path: str
    seed: int
    steps: int
    out_dir: str
    task: str = "sky_replacement"
    prompt: str = ""
    working_space: str = "ACEScg"
    config_name: str | None = None
    plate_colourspace: str | None = None  # the plate's, converted to working_space at read; None: already it
    pixel_aspect: float = 1.0  # the plate's PixelAspectRatio: proxies are desqueezed by it
    display: str | None = None
    view: str | None = None
    proxy_width: int = 960
    device: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    strength: float | None = None  # img2img tasks; None = the task's default (task_kinds.TASKS)
    guidance_scale: float = 7.5  # SD backends only (classifier-free guidance; 1 switches it off)


@dataclass
class VariationResult:
    frames: list[int]
    exr_pattern: str
    proxy_pattern: str
    compute_seconds: float
    flicker_ratio: float
    element_window: dict
    timings: dict[str, float] = field(default_factory=dict)


@dataclass(frozen=True)
class _Card:
    """Where the generated card sits in frame-0 display-array coordinates (pixels, y down)."""

    x: int
    y: int
    width: int
    height: int
    model_h: int
    model_w: int


def _check_inputs(spec: VariationSpec) -> tuple[ModelCard, Window, float]:
    strength = task_kinds.resolve_strength(spec.task, spec.strength)
    if isinstance(spec.steps, int) and spec.steps >= 1 and int(spec.steps * strength) < 1:
        raise ValueError(
            f"strength {strength:g} of {spec.steps} steps runs no denoising step: "
            f"use at least {int(np.ceil(1 / strength))} steps"
        )
    if not 0 <= spec.guidance_scale <= 50:
        raise ValueError(f"guidance_scale must be 0..50, got {spec.guidance_scale}")
    if spec.first > spec.last:
        raise ValueError(f"first frame {spec.first} is after last frame {spec.last}")
    if isinstance(spec.seed, bool) or not isinstance(spec.seed, int) or not 0 <= spec.seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {spec.seed!r}")
    if isinstance(spec.steps, bool) or not isinstance(spec.steps, int) or not 1 <= spec.steps <= 1000:
        raise ValueError(f"steps must be an int in 1..1000, got {spec.steps!r}")
    if spec.proxy_width < 1:
        raise ValueError(f"proxy_width must be positive, got {spec.proxy_width}")
    if (spec.matte_pattern is None) == (spec.rect is None):
        raise ValueError("give exactly one of a matte sequence or a rect")
    if not spec.out_dir:
        raise ValueError("out_dir is empty")
    patterns = [spec.plate_pattern] + ([spec.matte_pattern] if spec.matte_pattern else [])
    for pattern in patterns:
        missing = [f for f in range(spec.first, spec.last + 1) if not os.path.isfile(frame_path(pattern, f))]
        if missing:
            raise ValueError(f"{pattern}: {len(missing)} frame(s) missing, first {missing[0]}")
    header = frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False)
    if not {"R", "G", "B"} <= set(header.channels):
        raise ValueError(f"{header.path}: the plate needs R, G and B channels")
    display = header.display_window
    if spec.rect is not None:
        x, y, w, h = spec.rect
        if w < 1 or h < 1 or Window(x, y, w, h).intersect(Window(0, 0, display.width, display.height)) is None:
            raise ValueError(f"rect {spec.rect} does not cover any of the {display.width}x{display.height} frame")
    card = read_model_card(spec.model_path)
    try:
        task_kinds.check_model_kind(spec.task, card.kind, card.name)
    except task_kinds.TaskError as exc:
        raise ModelError(str(exc)) from None
    # Fail on a bad colour space, display or view now, not after the first frame is written.
    colour.convert(
        np.zeros((1, 1, 3), np.float32), spec.working_space, card.colour_encoding, config_name=spec.config_name
    )
    colour.make_proxy(
        np.zeros((2, 2, 3), np.float32),
        width=2,
        src=spec.working_space,
        display=spec.display,
        view=spec.view,
        config_name=spec.config_name,
    )
    return card, display, strength


def _luma(rgb: np.ndarray) -> np.ndarray:
    return rgb @ AP1_LUMA


def _camera_track(
    spec: VariationSpec, on_progress: ProgressFn, should_cancel: Callable[[], bool] | None
) -> list[tuple[float, float]]:
    """The plate's cumulative camera shift per frame, cached per plate, range and file mtimes."""
    paths = [frame_path(spec.plate_pattern, f) for f in range(spec.first, spec.last + 1)]
    key = (os.path.abspath(spec.plate_pattern), spec.first, spec.last, tuple(os.stat(p).st_mtime_ns for p in paths))
    n = len(paths)
    with _track_lock:
        if key in _track_cache:
            _track_cache.move_to_end(key)
            on_progress("track", n, n)
            return list(_track_cache[key])
    channels = frames.read_header(paths[0], verify_pixels=False).channels
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
        track = motion.camera_track(each_frame(lambda p: _luma(_read_plate(spec, p, ("R", "G", "B")))))
    with _track_lock:
        _track_cache[key] = track
        while len(_track_cache) > _TRACK_CACHE_SIZE:
            _track_cache.popitem(last=False)
    return list(track)


def _card_geometry(
    bbox: Window,
    track: list[tuple[float, float]],
    sample_size: tuple[int, int],
    anchor: str = "bottom",
    context: float = 0.03,
) -> _Card:
    """The first frame's matte box plus everything the pan brings into it, a ``context`` margin (the
    plate the model sees around the region), grown to the model's aspect about ``anchor``."""
    tx = [t[0] for t in track]
    ty = [t[1] for t in track]
    # A screen-fixed region sees world x - t; a matte that travels with the plate stays inside.
    x0, x1 = bbox.x - max(tx), bbox.x + bbox.width - min(tx)
    y0, y1 = bbox.y - max(ty), bbox.y + bbox.height - min(ty)
    margin = context * max(x1 - x0, y1 - y0) + 2
    x0, x1, y0, y1 = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    mh, mw = sample_size
    w, h = x1 - x0, y1 - y0
    if w / h < mw / mh:
        w = h * mw / mh
    else:
        h = w * mh / mw
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = int(np.ceil(w)), int(np.ceil(h))
    if anchor == "bottom":
        # Skies have their horizon at the bottom: a card grown taller than a wide matte keeps its
        # bottom on the matte's (the skyline) and grows upwards, out of frame if need be.
        top = int(np.floor(y1 - height))
    else:  # follow the region: grow evenly about its centre
        top = int(np.floor(cy - height / 2))
    return _Card(int(np.floor(cx - width / 2)), top, width, height, mh, mw)


def _crop(img: np.ndarray, card: _Card) -> tuple[np.ndarray, np.ndarray]:
    """``img`` over the card's rectangle (zero outside the frame) and where it was inside."""
    h, w = img.shape[:2]
    out = np.zeros((card.height, card.width) + img.shape[2:], np.float32)
    inside = np.zeros((card.height, card.width), np.float32)
    ix0, iy0 = max(card.x, 0), max(card.y, 0)
    ix1, iy1 = min(card.x + card.width, w), min(card.y + card.height, h)
    if ix1 > ix0 and iy1 > iy0:
        region = (slice(iy0 - card.y, iy1 - card.y), slice(ix0 - card.x, ix1 - card.x))
        out[region] = img[iy0:iy1, ix0:ix1]
        inside[region] = 1.0
    return out, inside


def _crop_edge(img: np.ndarray, card: _Card) -> np.ndarray:
    """``img`` over the card's rectangle, its edge pixels repeated outside the frame."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(card.y, card.y + card.height), 0, h - 1)
    xs = np.clip(np.arange(card.x, card.x + card.width), 0, w - 1)
    return np.ascontiguousarray(img[ys][:, xs], np.float32)


def _known_and_mask(
    plate0: np.ndarray, matte0: np.ndarray, card: _Card, spec: VariationSpec, model: ModelCard, mode: str = "inpaint"
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-size known pixels ([-1, 1] in the model's colour encoding) and mask (1 = generate).

    Inpainting knows nothing under the matte or outside the frame; image-to-image starts from the
    whole card (the region's own pixels, the frame's edge repeated beyond it) and changes the matte."""
    if mode == "img2img":
        rgb, inside = _crop_edge(plate0, card), np.ones((card.height, card.width), np.float32)
    else:
        rgb, inside = _crop(plate0, card)
    matte, _ = _crop(matte0, card)
    rgb = frames.resize(rgb, card.model_w, card.model_h)
    inside = frames.resize(inside, card.model_w, card.model_h)
    matte = frames.resize(matte, card.model_w, card.model_h)
    encoded = colour.convert(rgb, spec.working_space, model.colour_encoding, config_name=spec.config_name)
    generate = (matte > 1e-4) | (inside < 0.999)
    padded = np.pad(generate, 1, mode="edge")
    h, w = generate.shape
    dilated = np.zeros_like(generate)
    for dy in range(3):
        for dx in range(3):
            dilated |= padded[dy : dy + h, dx : dx + w]
    known = np.clip(encoded * 2.0 - 1.0, -1.0, 1.0)
    if mode != "img2img":
        known = np.where(dilated[..., None], 0.0, known)
    known_t = torch.from_numpy(np.ascontiguousarray(known.transpose(2, 0, 1)[None], np.float32))
    mask_t = torch.from_numpy(dilated[None, None].astype(np.float32))
    return known_t, mask_t


def _decode(sample: torch.Tensor, spec: VariationSpec, model: ModelCard) -> np.ndarray:
    encoded = (sample[0].numpy().transpose(1, 2, 0) + 1.0) / 2.0
    return colour.convert(
        np.ascontiguousarray(encoded, np.float32),
        model.colour_encoding,
        spec.working_space,
        config_name=spec.config_name,
    )


def _cubic_taps(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bicubic (Keys, a=-0.5) taps for sampling positions ``coords``: edge-clamped indices and
    float32 weights, both (len(coords), 4)."""
    base = np.floor(coords).astype(np.int64)
    t = coords - base
    weights = np.stack(
        [
            ((-0.5 * t + 1.0) * t - 0.5) * t,
            (1.5 * t - 2.5) * t * t + 1.0,
            ((-1.5 * t + 2.0) * t + 0.5) * t,
            (0.5 * t - 0.5) * t * t,
        ],
        axis=1,
    )
    index = np.clip(base[:, None] + np.arange(-1, 3), 0, size - 1)
    return index, weights.astype(np.float32)


def _sample_card(card_rgb: np.ndarray, card: _Card, shift: tuple[float, float], box: Window) -> np.ndarray:
    """The card seen by a frame whose content moved by ``shift``, over ``box`` (array coords):
    one separable bicubic resample straight from model pixels to frame pixels."""
    sx, sy = card.width / card.model_w, card.height / card.model_h
    u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
    v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
    xi, xw = _cubic_taps(u, card.model_w)
    yi, yw = _cubic_taps(v, card.model_h)
    # Columns first at model height (cheap), then four row taps at frame size.
    cols = card_rgb[:, xi] * xw[None, :, :, None]  # (model_h, width, 4, 3)
    cols = cols.sum(axis=2)
    out = cols[yi[:, 0]] * yw[:, 0, None, None]
    for tap in range(1, 4):
        out += cols[yi[:, tap]] * yw[:, tap, None, None]
    return out


class _Outputs:
    """Files and directories this call creates, so a failure can take exactly those away."""

    def __init__(self, out_dir: str) -> None:
        self.exr_dir = os.path.join(out_dir, "exr")
        self.proxy_dir = os.path.join(out_dir, "proxy")
        self.dirs: list[str] = []
        self.files: list[str] = []
        self._out_dir = out_dir

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


def _read_plate(spec: VariationSpec, path: str, names: tuple[str, ...]) -> np.ndarray:
    """Plate channels ``names``, R, G, B in the working space whatever the plate's colour space."""
    return frames.read_channels(
        path, names, colourspace=spec.plate_colourspace, working_space=spec.working_space, config_name=spec.config_name
    )


def _read_frame(
    spec: VariationSpec, frame: int, rect_matte: np.ndarray | None, display: Window, depth_name: str | None = None
) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
    """``(plate RGB, matte, depth or None)`` of ``frame`` over the display window."""
    names = ("R", "G", "B") + ((depth_name,) if depth_name else ())
    pixels = _read_plate(spec, frame_path(spec.plate_pattern, frame), names)
    if pixels.shape[:2] != (display.height, display.width):
        raise frames.FrameError(frame_path(spec.plate_pattern, frame), "display window differs from the first frame")
    plate = pixels[..., :3] if depth_name else pixels
    depth = pixels[..., 3] if depth_name else None
    if rect_matte is not None:
        return plate, rect_matte, depth
    matte = frames.read_matte(frame_path(spec.matte_pattern, frame))
    if matte.shape != plate.shape[:2]:
        raise frames.FrameError(
            frame_path(spec.matte_pattern, frame),
            f"matte is {matte.shape[1]}x{matte.shape[0]}, plate {plate.shape[1]}x{plate.shape[0]}",
        )
    return plate, matte, depth


def depth_channel(channels) -> str | None:
    """The plate's depth channel: the first of Z, depth.Z, depth it has, or None."""
    return next((name for name in task_kinds.DEPTH_CHANNELS if name in channels), None)


_FAR = 1e6  # depth ratio given to non-finite depth (sky, infinity): fully hazed


@dataclass(frozen=True)
class _Look:
    """What a frame makes of the card (see the module docstring): kind "element", "haze" or "grade"."""

    kind: str
    card: np.ndarray  # element / airlight in the working space, or the grade in the model's encoding
    strength: float = 1.0
    depth_ref: float | None = None

    def transmittance(self, depth: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
        if depth is None or self.depth_ref is None:
            return np.full(shape + (1,), 1.0 - self.strength, np.float32)
        ratio = np.where(np.isfinite(depth), np.maximum(depth, 0.0) / self.depth_ref, _FAR)
        return np.power(np.float32(1.0 - self.strength), np.minimum(ratio, _FAR), dtype=np.float32)[..., None]

    def region(self, plate, depth, card, shift, box, spec: VariationSpec, model: ModelCard) -> np.ndarray:
        """The new pixels of ``box`` (before the matte) for a frame whose content moved by ``shift``."""
        sampled = _sample_card(self.card, card, shift, box)
        if self.kind == "element":
            return sampled
        bs = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
        if self.kind == "haze":
            t = self.transmittance(None if depth is None else depth[bs], (box.height, box.width))
            return plate[bs] * t + sampled * (1.0 - t)
        encoded = colour.convert(plate[bs], spec.working_space, model.colour_encoding, config_name=spec.config_name)
        encoded += sampled
        return colour.convert(encoded, model.colour_encoding, spec.working_space, config_name=spec.config_name)


def _depth_reference(depth0: np.ndarray | None, matte0: np.ndarray) -> float | None:
    """The median finite, positive depth under the first frame's matte (None: no usable depth)."""
    if depth0 is None:
        return None
    values = depth0[(matte0 > 0.5) & np.isfinite(depth0) & (depth0 > 0)]
    return float(np.median(values)) if values.size else None


def _backend(spec: VariationSpec, card: ModelCard, device: torch.device, strength: float):
    """``(model card, denoise(known, mask, progress, should_cancel))`` for the spec's model (``card``, read)."""
    if card.kind == "show_model":
        unet, scheduler, card = load_show_model(spec.model_path, device, pick_dtype(device))

        def denoise(known, mask, progress, should_cancel):
            return masked_denoise(
                unet,
                scheduler,
                known=known,
                mask=mask,
                seed=spec.seed,
                steps=spec.steps,
                strength=strength,
                progress=progress,
                should_cancel=should_cancel,
            )

        return card, denoise
    from generation.engine.sd_pipeline import load_sd_pipeline, sd_denoise

    pipe, card = load_sd_pipeline(spec.model_path, device, pick_dtype(device))

    def denoise(known, mask, progress, should_cancel):
        return sd_denoise(
            pipe,
            known=known,
            mask=mask,
            prompt=spec.prompt,
            seed=spec.seed,
            steps=spec.steps,
            strength=strength,
            guidance_scale=spec.guidance_scale,
            progress=progress,
            should_cancel=should_cancel,
        )

    return card, denoise


def _write_frame(
    exr_path: str,
    proxy_path: str,
    element: np.ndarray,
    comp: np.ndarray,
    display: Window,
    data_window: Window,
    attributes: dict,
    spec: VariationSpec,
) -> None:
    frames.write_exr(exr_path, element, display_window=display, data_window=data_window, attributes=attributes)
    proxy = colour.make_proxy(
        comp,
        width=spec.proxy_width,
        src=spec.working_space,
        display=spec.display,
        view=spec.view,
        config_name=spec.config_name,
        pixel_aspect=spec.pixel_aspect,
    )
    frames.write_jpeg(proxy_path, proxy)


def generate_variation(
    spec: VariationSpec,
    *,
    on_progress: ProgressFn | None = None,
    on_frame: FrameFn | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> VariationResult:
    """Generate one variation of ``spec.task`` over the plate's frames ``first..last``.

    Plates are scene-linear ``spec.working_space`` EXRs; the matte (or ``rect``) marks what to
    change. One card is generated at the model's size (a show model is unconditional and ignores the
    prompt, which is still recorded in the EXR header; an SD pipeline is prompted with it) and
    carried through the shot with the plate's camera motion, so a distant element does not boil;
    what the card means per task is in the module docstring. Per frame it writes
    ``<out_dir>/exr/element.####.exr`` (premultiplied half RGBA, the plate's display window, data
    window = the matte's box, provenance attributes) and ``<out_dir>/proxy/incontext.####.jpg``
    (element over plate through the display/view). Pixels where the matte is 0 stay the plate's
    exactly. Progress: ``on_progress(stage, k, n)`` with stage "track", "denoise", "frames";
    ``on_frame(frame, exr_path, proxy_path)`` once a frame's files exist. ``should_cancel()`` is
    asked between frames and before every denoising step; on :class:`Cancelled` or any error
    every file and directory this call created is removed and the exception re-raised.
    """
    start = time.perf_counter()
    timings: dict[str, float] = {}
    progress: ProgressFn = on_progress or (lambda stage, k, n: None)
    model, display, strength = _check_inputs(spec)
    info = task_kinds.task_info(spec.task)
    device = pick_device(spec.device)
    frame_list = list(range(spec.first, spec.last + 1))
    outputs = _Outputs(spec.out_dir)
    exr_pattern = os.path.join(outputs.exr_dir, ELEMENT_NAME)
    proxy_pattern = os.path.join(outputs.proxy_dir, PROXY_NAME)
    try:
        t = time.perf_counter()
        track = _camera_track(spec, progress, should_cancel)
        timings["track"] = time.perf_counter() - t

        t = time.perf_counter()
        model, denoise = _backend(spec, model, device, strength)
        depth_name = (
            depth_channel(frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False).channels)
            if info.uses_depth
            else None
        )
        rect_matte = None
        if spec.rect is not None:
            x, y, w, h = spec.rect
            rect_matte = np.zeros((display.height, display.width), np.float32)
            rect_matte[max(y, 0) : y + h, max(x, 0) : x + w] = 1.0
        plate0, matte0, depth0 = _read_frame(spec, spec.first, rect_matte, display, depth_name)
        bbox0 = frames.alpha_bbox(matte0, Window(0, 0, display.width, display.height))
        if bbox0 is None:
            raise ValueError(f"the matte of frame {spec.first} is empty: nothing to generate")
        card = _card_geometry(bbox0, track, model.sample_size, info.anchor, info.context)
        known, mask = _known_and_mask(plate0, matte0, card, spec, model, info.mode)
        depth_ref = _depth_reference(depth0, matte0)
        del plate0, matte0, depth0
        timings["prepare"] = time.perf_counter() - t

        t = time.perf_counter()
        sample = denoise(known, mask, lambda i, n: progress("denoise", i, n), should_cancel)
        if spec.task == "time_of_day":
            grade = ((sample - known)[0] / 2.0).numpy().transpose(1, 2, 0)
            look = _Look("grade", np.ascontiguousarray(grade, np.float32), strength)
        elif spec.task == "atmosphere":
            look = _Look("haze", _decode(sample, spec, model), strength, depth_ref)
        else:
            look = _Look("element", _decode(sample, spec, model), strength)
        timings["denoise"] = time.perf_counter() - t

        t = time.perf_counter()
        flicker, window = _frames(
            spec,
            model,
            display,
            card,
            look,
            track,
            rect_matte,
            depth_name,
            outputs,
            exr_pattern,
            proxy_pattern,
            progress,
            on_frame,
            should_cancel,
        )
        timings["frames"] = time.perf_counter() - t
    except BaseException:
        outputs.remove()
        raise
    return VariationResult(
        frames=frame_list,
        exr_pattern=exr_pattern,
        proxy_pattern=proxy_pattern,
        compute_seconds=time.perf_counter() - start,
        flicker_ratio=flicker,
        element_window=window.as_dict() if window else {},
        timings=timings,
    )


def _frames(
    spec,
    model,
    display,
    card,
    look,
    track,
    rect_matte,
    depth_name,
    outputs,
    exr_pattern,
    proxy_pattern,
    progress,
    on_frame,
    should_cancel,
) -> tuple[float, Window | None]:
    """The frame loop: reads run ahead and writes run behind on a small pool while this thread
    samples and composites; flicker is measured in order on its own thread."""
    frame_list = list(range(spec.first, spec.last + 1))
    n = len(frame_list)
    attributes = dict(spec.attributes)
    attributes.update(
        {
            "parallel_track:seed": str(spec.seed),
            "parallel_track:steps": int(spec.steps),
            "parallel_track:task": spec.task,
            "parallel_track:prompt": spec.prompt,
            "parallel_track:model": model.name,
            "parallel_track:model_manifest_sha256": model.manifest_hash,
            "parallel_track:working_space": spec.working_space,
            "parallel_track:strength": f"{look.strength:g}",
        }
    )
    if depth_name:
        attributes["parallel_track:depth_channel"] = depth_name
    origin = Window(0, 0, display.width, display.height)
    # Flicker is measured where the element can be: the card's footprint over the whole shot.
    tx, ty = [t[0] for t in track], [t[1] for t in track]
    region = Window(
        int(np.floor(card.x + min(tx))),
        int(np.floor(card.y + min(ty))),
        int(np.ceil(card.width + max(tx) - min(tx))) + 1,
        int(np.ceil(card.height + max(ty) - min(ty))) + 1,
    ).intersect(origin)
    rs = (slice(region.y, region.y + region.height), slice(region.x, region.x + region.width))
    meter = motion.FlickerMeter(track)
    window: Window | None = None
    outputs.make_dirs()
    io_pool = ThreadPoolExecutor(max_workers=2, thread_name_prefix="variation-io")
    meter_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="variation-flicker")
    reads: dict[int, Future] = {}
    measured: list[Future] = []
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
        for frame in frame_list[:2]:
            reads[frame] = io_pool.submit(_read_frame, spec, frame, rect_matte, display, depth_name)
        for k, frame in enumerate(frame_list):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled before frame {frame}")
            plate, matte, depth = reads.pop(frame).result()
            if k + 2 < n:
                nxt = frame_list[k + 2]
                reads[nxt] = io_pool.submit(_read_frame, spec, nxt, rect_matte, display, depth_name)
            box = frames.alpha_bbox(matte, origin)
            plate_luma = _luma(plate[rs])
            element = np.zeros((display.height, display.width, 4), np.float16)
            comp = plate  # composited in place; the plate's luminance is already taken
            if box is not None:
                bs = (slice(box.y, box.y + box.height), slice(box.x, box.x + box.width))
                alpha = matte[bs][..., None]
                generated = look.region(plate, depth, card, track[k], box, spec, model)
                np.multiply(generated, alpha, out=generated)
                element[bs + (slice(0, 3),)] = generated
                element[bs + (slice(3, 4),)] = alpha
                # Composite what the EXR holds, so the proxy shows exactly the delivered element.
                e32 = element[bs].astype(np.float32)
                over = e32[..., :3]
                over += comp[bs] * (1.0 - e32[..., 3:])
                np.copyto(comp[bs], over, where=alpha > 0)  # matte 0: the plate, bit for bit
                abs_box = Window(display.x + box.x, display.y + box.y, box.width, box.height)
                window = abs_box if window is None else window.union(abs_box)
                data_window = abs_box
            else:
                data_window = Window(display.x, display.y, 1, 1)
            measured.append(meter_pool.submit(meter.add, k, _luma(comp[rs]), plate_luma, matte[rs]))
            exr_path, proxy_path = frame_path(exr_pattern, frame), frame_path(proxy_pattern, frame)
            outputs.files += [exr_path, proxy_path]
            writes.append(
                (
                    frame,
                    exr_path,
                    proxy_path,
                    io_pool.submit(
                        _write_frame, exr_path, proxy_path, element, comp, display, data_window, attributes, spec
                    ),
                )
            )
            while len(writes) > 2 or (writes and writes[0][3].done()):
                finish_oldest()
        while writes:
            finish_oldest()
    finally:
        # No write may land after a failure's cleanup, so wait for whatever is running.
        io_pool.shutdown(wait=True, cancel_futures=True)
        meter_pool.shutdown(wait=True)
    for future in measured:
        future.result()
    return meter.ratio(), window
