"""What a frame makes of the denoised card: the look a task names in ``TaskInfo.look``.

- ``element`` (sky replacement, set extension, background fill): the card is the new element.
- ``haze`` (atmosphere): the card is the airlight, the model's image-to-image rendition of the region at
  ``strength``; each frame is ``plate * T + airlight * (1 - T)``. T = ``(1 - strength) ** (z / z_ref)``
  when the plate has a depth channel (Z, depth.Z or depth; z_ref = the median depth under the first
  frame's matte, so haze thickens with distance and is ``strength`` at z_ref; non-finite depth is far),
  else ``1 - strength`` everywhere.
- ``grade`` (time of day): the card is a look change, generated minus plate in the model's encoding at
  ``strength``; each frame adds it to its own plate there, so the plate's full-resolution structure
  (and anything moving in it) is kept and the palette and light change.

Every look's :meth:`region` gives the new pixels of a frame's matte box before the matte is applied,
(h, w, 3) float32 in the working space. A new look is a class here and a name in :data:`MAKERS`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Protocol

import numpy as np
import torch

from generation.engine.card import Card, sample_card
from generation.engine.encoding import decode, from_model, to_model
from generation.engine.frames import Window
from generation.engine.plan import VariationPlan

_FAR = 1e6  # depth ratio given to non-finite depth (sky, infinity): fully hazed


class Look(Protocol):
    def region(
        self, plate: np.ndarray, depth: np.ndarray | None, shift: tuple[float, float], box: Window
    ) -> np.ndarray:
        """The new pixels of ``box`` (array coords) for a frame whose content moved by ``shift``."""
        ...


def _box(box: Window) -> tuple[slice, slice]:
    return slice(box.y, box.y + box.height), slice(box.x, box.x + box.width)


@dataclass(frozen=True)
class Element:
    """The card itself, carried with the camera."""

    card: Card
    rgb: np.ndarray  # (model_h, model_w, 3) working space

    def region(self, plate, depth, shift, box):
        return sample_card(self.rgb, self.card, shift, box)


@dataclass(frozen=True)
class Haze:
    """The plate seen through airlight, thicker with depth when the plate has it."""

    card: Card
    airlight: np.ndarray  # (model_h, model_w, 3) working space
    strength: float
    depth_ref: float | None = None

    def transmittance(self, depth: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
        """T, (h, w, 1) float32: 1 keeps the plate, 0 is all airlight."""
        if depth is None or self.depth_ref is None:
            return np.full(shape + (1,), 1.0 - self.strength, np.float32)
        ratio = np.where(np.isfinite(depth), np.maximum(depth, 0.0) / self.depth_ref, _FAR)
        return np.power(np.float32(1.0 - self.strength), np.minimum(ratio, _FAR), dtype=np.float32)[..., None]

    def region(self, plate, depth, shift, box):
        sampled = sample_card(self.airlight, self.card, shift, box)
        bs = _box(box)
        t = self.transmittance(None if depth is None else depth[bs], (box.height, box.width))
        return plate[bs] * t + sampled * (1.0 - t)


@dataclass(frozen=True)
class Grade:
    """A change of palette and light added to each frame's own plate in the model's encoding."""

    card: Card
    grade: np.ndarray  # (model_h, model_w, 3) generated minus plate, model encoding
    plan: VariationPlan  # its model and working space say what "the model's encoding" is

    def region(self, plate, depth, shift, box):
        sampled = sample_card(self.grade, self.card, shift, box)
        encoded = to_model(plate[_box(box)], self.plan)
        encoded += sampled
        return from_model(encoded, self.plan)


def depth_reference(depth0: np.ndarray | None, matte0: np.ndarray) -> float | None:
    """The median finite, positive depth under the first frame's matte (None: no usable depth)."""
    if depth0 is None:
        return None
    values = depth0[(matte0 > 0.5) & np.isfinite(depth0) & (depth0 > 0)]
    return float(np.median(values)) if values.size else None


def _grade(plan, card, sample, known, depth_ref) -> Grade:
    grade = ((sample - known)[0] / 2.0).numpy().transpose(1, 2, 0)
    return Grade(card, np.ascontiguousarray(grade, np.float32), plan)


MAKERS: dict[str, Callable[..., Look]] = {
    "element": lambda plan, card, sample, known, depth_ref: Element(card, decode(sample, plan)),
    "haze": lambda plan, card, sample, known, depth_ref: Haze(card, decode(sample, plan), plan.strength, depth_ref),
    "grade": _grade,
}


def make_look(
    plan: VariationPlan, card: Card, sample: torch.Tensor, known: torch.Tensor, depth_ref: float | None
) -> Look:
    """The look ``plan.info.look`` from the denoised ``sample`` and the ``known`` pixels it started from."""
    return MAKERS[plan.info.look](plan, card, sample, known, depth_ref)
