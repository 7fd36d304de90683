"""A variation's plan: everything checked before anything is written, built once from the spec.

:func:`plan_variation` refuses a bad spec (frames, region, seed, steps, strength, model kind, colour
names) with a clear error, reading the first plate frame's header once; the plan then reads each
frame's plate, matte and depth the same way for every stage.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np

from generation.engine import camera, colour, frame_cache, frames, task_kinds
from generation.engine.frames import FrameHeader, Window
from generation.engine.registry import ModelCard, ModelError, read_model_card
from generation.engine.sequence import frame_path
from generation.engine.spec import VariationSpec

LOOKS = ("element", "haze", "grade")  # what generate_variation can make of a card (TaskInfo.look)


def depth_channel(channels) -> str | None:
    """The plate's depth channel: the first of Z, depth.Z, depth it has, or None."""
    return next((name for name in task_kinds.DEPTH_CHANNELS if name in channels), None)


@dataclass(frozen=True)
class VariationPlan:
    """A checked spec with what it resolves to: the task's row, the model card, the first frame's
    header and display window, the strength and the frames. ``rect_matte`` is the rect drawn as a
    (H, W) float32 matte over the display window (None when the spec has a matte sequence)."""

    spec: VariationSpec
    info: task_kinds.TaskInfo
    model: ModelCard
    header: FrameHeader
    strength: float
    frames: list[int]
    rect_matte: np.ndarray | None

    @property
    def display(self) -> Window:
        return self.header.display_window

    @property
    def depth_name(self) -> str | None:
        """The depth channel the task reads (None: the task has no use for depth, or the plate has none)."""
        return depth_channel(self.header.channels) if self.info.uses_depth else None

    def read_matte(self, frame: int) -> np.ndarray:
        """The region matte (H, W) float32 of ``frame`` over the display window (the rect, drawn, if no sequence)."""
        if self.rect_matte is not None:
            return self.rect_matte
        matte = self._matte(frame)
        display = self.display
        if matte.shape != (display.height, display.width):
            raise frames.FrameError(
                frame_path(self.spec.matte_pattern, frame),
                f"matte is {matte.shape[1]}x{matte.shape[0]}, plate {display.width}x{display.height}",
            )
        return matte

    def matte_box(self, frame: int, matte: np.ndarray | None = None) -> Window | None:
        """:func:`frames.alpha_bbox` of ``frame``'s matte in array coords (None: empty), kept per matte file
        (:func:`frame_cache.matte_box`); ``matte``: the frame's matte when the caller has it already."""
        origin = Window(0, 0, self.display.width, self.display.height)
        if self.rect_matte is not None:
            return frames.alpha_bbox(self.rect_matte, origin)
        path = frame_path(self.spec.matte_pattern, frame)
        return frame_cache.matte_box(path, lambda: self.read_matte(frame) if matte is None else matte, origin)

    @property
    def pixel_aspect(self) -> float:
        """The plate's PixelAspectRatio (the card is made in square pixels: :mod:`card`)."""
        return camera.pixel_aspect(self.header.path)

    def read_frame(self, frame: int) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        """``(plate RGB (H, W, 3), matte (H, W), depth (H, W) or None)`` of ``frame``: float32 over the
        display window, plate in the spec's working space."""
        spec, display, depth_name = self.spec, self.display, self.depth_name
        names = ("R", "G", "B") + ((depth_name,) if depth_name else ())
        pixels = self.read_plate(frame, names)
        if pixels.shape[:2] != (display.height, display.width):
            raise frames.FrameError(
                frame_path(spec.plate_pattern, frame), "display window differs from the first frame"
            )
        plate = pixels[..., :3] if depth_name else pixels
        depth = pixels[..., 3] if depth_name else None
        if self.rect_matte is not None:
            return plate, self.rect_matte, depth
        matte = self._matte(frame)
        if matte.shape != plate.shape[:2]:
            raise frames.FrameError(
                frame_path(spec.matte_pattern, frame),
                f"matte is {matte.shape[1]}x{matte.shape[0]}, plate {plate.shape[1]}x{plate.shape[0]}",
            )
        return plate, matte, depth

    def read_plate(self, frame: int, names: tuple[str, ...] = ("R", "G", "B")) -> np.ndarray:
        """The plate's channels ``names`` of ``frame`` (H, W, C) float32, R, G, B in the working space: a fresh
        array, decoded once per request (:data:`frame_cache.PLATES`)."""
        spec = self.spec
        return frame_cache.read_plate(
            frame_path(spec.plate_pattern, frame), names, spec.plate_colour(), group=spec.plate_pattern
        )

    def _matte(self, frame: int) -> np.ndarray:
        # Grouped with the plate: a full cache drops another shot's frames, never this shot's plate for its matte.
        return frame_cache.read_matte(frame_path(self.spec.matte_pattern, frame), group=self.spec.plate_pattern)


def plan_variation(spec: VariationSpec) -> VariationPlan:
    """Check ``spec`` and resolve it; raises ValueError (ModelError for the model) before anything is written."""
    info = task_kinds.task_info(spec.task)
    strength = task_kinds.resolve_strength(spec.task, spec.strength)
    if info.look not in LOOKS:
        raise ValueError(f"{info.label.lower()} makes a {info.look!r} look; variation makes only {', '.join(LOOKS)}")
    _check_numbers(spec, strength)
    _check_frames(spec)
    header = frames.read_header(frame_path(spec.plate_pattern, spec.first), verify_pixels=False)
    if not {"R", "G", "B"} <= set(header.channels):
        raise ValueError(f"{header.path}: the plate needs R, G and B channels")
    rect_matte = _rect_matte(spec.rect, header.display_window) if spec.rect is not None else None
    if spec.track_file:  # a bad track file fails now, with its line, not after the denoise
        display = header.display_window
        camera.read_track_file(spec.track_file, spec.first, spec.last, (display.height, display.width))
    model = read_model_card(spec.model_path)
    try:
        task_kinds.check_model_kind(spec.task, model.kind, model.name)
    except task_kinds.TaskError as exc:
        raise ModelError(str(exc)) from None
    _check_colour(spec, model)
    frame_list = list(range(spec.first, spec.last + 1))
    return VariationPlan(spec, info, model, header, strength, frame_list, rect_matte)


def _check_numbers(spec: VariationSpec, strength: float) -> None:
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


def _check_frames(spec: VariationSpec) -> None:
    if (spec.matte_pattern is None) == (spec.rect is None):
        raise ValueError("give exactly one of a matte sequence or a rect")
    if not spec.out_dir:
        raise ValueError("out_dir is empty")
    patterns = [spec.plate_pattern] + [p for p in (spec.matte_pattern, spec.holdout_pattern) if p]
    for pattern in patterns:
        missing = [f for f in range(spec.first, spec.last + 1) if not os.path.isfile(frame_path(pattern, f))]
        if missing:
            raise ValueError(f"{pattern}: {len(missing)} frame(s) missing, first {missing[0]}")


def _rect_matte(rect: tuple[int, int, int, int], display: Window) -> np.ndarray:
    """The rect (x, y, w, h relative to the display window) as a matte over it; refused if it covers none of it."""
    x, y, w, h = rect
    if w < 1 or h < 1 or Window(x, y, w, h).intersect(Window(0, 0, display.width, display.height)) is None:
        raise ValueError(f"rect {rect} does not cover any of the {display.width}x{display.height} frame")
    matte = np.zeros((display.height, display.width), np.float32)
    matte[max(y, 0) : y + h, max(x, 0) : x + w] = 1.0
    return matte


def _check_colour(spec: VariationSpec, model: ModelCard) -> None:
    """Fail on a bad colour space, display or view now, not after the first frame is written."""
    colour.convert(
        np.zeros((1, 1, 3), np.float32), spec.working_space, model.colour_encoding, config_name=spec.config_name
    )
    colour.make_proxy(
        np.zeros((2, 2, 3), np.float32),
        width=2,
        src=spec.working_space,
        display=spec.display,
        view=spec.view,
        config_name=spec.config_name,
    )
