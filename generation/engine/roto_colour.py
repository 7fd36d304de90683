"""The shot's colour model for roto: which colours are the object's and which its surroundings', per segment.

Learned from the key frames around a segment: a 16³ RGB histogram of the matte's inside and one of the plate
just outside it (within :data:`REACH` of the edge, so the model is local to the object and blind to far-away
look-alike colours), Laplace-smoothed; P(inside | colour) is their ratio. It speaks only where flow is not
trusted (occluded or revealed pixels, which the consistency test flags) and only near the carried edge.
"""

from __future__ import annotations

from collections.abc import Sequence

import cv2
import numpy as np

BINS = 16  # per channel: coarse enough to generalise across a segment's frames from two examples
REACH = 1 / 20  # of the frame's long side: how far outside the matte counts as its surroundings
BAND = 1 / 30  # of the frame's long side: how far from the carried edge the colour model may speak (bench: 1/50 → 1/30 dog +0.01)


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def _bins(image8: np.ndarray) -> np.ndarray:
    q = (image8 // (256 // BINS)).astype(np.int32)
    return (q[..., 0] * BINS + q[..., 1]) * BINS + q[..., 2]


def colour_model(images8: Sequence[np.ndarray], mattes: Sequence[np.ndarray]) -> np.ndarray:
    """P(inside | colour) as a float32 (BINS³,) table from key frames (uint8 (H, W, 3), mattes (H, W) 0..1)."""
    inside = np.zeros(BINS**3)
    outside = np.zeros(BINS**3)
    for image8, matte in zip(images8, mattes, strict=True):
        hard = (matte >= 0.5).astype(np.uint8)
        near = cv2.dilate(hard, _disk(max(2, round(max(hard.shape) * REACH))))
        bins = _bins(image8).ravel()
        inside += np.bincount(bins, weights=hard.ravel().astype(float), minlength=BINS**3)
        outside += np.bincount(bins, weights=((near > 0) & (hard == 0)).ravel().astype(float), minlength=BINS**3)
    p_in = (inside + 1) / (inside.sum() + BINS**3)
    p_out = (outside + 1) / (outside.sum() + BINS**3)
    return (p_in / (p_in + p_out)).astype(np.float32)


def band(matte: np.ndarray) -> np.ndarray:
    """Boolean (H, W): within :data:`BAND` of the matte's 0.5 edge."""
    hard = (matte >= 0.5).astype(np.uint8)
    disk = _disk(max(2, round(max(hard.shape) * BAND)))
    return cv2.dilate(hard, disk) != cv2.erode(hard, disk)


def reliability(table: np.ndarray, image8: np.ndarray, matte: np.ndarray) -> float:
    """How well the colour model tells inside from outside on a key frame's band: 0 (a coin) .. 1 (always).

    Measured on a key frame the model did not learn from where there is one, so a shot whose object wears its
    surroundings' colours (a dark car on its own shadow) keeps the colour model quiet.
    """
    near = band(matte)
    if not near.any():
        return 0.0
    said = table[_bins(image8)][near] >= 0.5
    truth = matte[near] >= 0.5
    inside, outside = truth.mean(), 1 - truth.mean()
    if min(inside, outside) == 0:
        return 0.0
    # Balanced accuracy, so a band that is mostly outside cannot score by saying "outside" everywhere.
    balanced = 0.5 * ((said & truth).sum() / truth.sum() + (~said & ~truth).sum() / (~truth).sum())
    return float(np.clip(2 * balanced - 1, 0, 1))


def colour_mend(
    table: np.ndarray, image8: np.ndarray, matte: np.ndarray, seen: np.ndarray, trust_in_colour: float = 1.0
) -> np.ndarray:
    """``matte`` (H, W) with the colour model's say mixed in on the band around its edge.

    The colour model speaks as far as flow is not trusted there (``1 - seen``: the pass gives the carried
    trust, which is 0 where flow lost sight of the pixel and fades with distance from the key frames), as
    loudly as its colour is decided (``|2p - 1|``) and as the model proved reliable (``trust_in_colour``, see
    :func:`reliability`).
    """
    p = table[_bins(image8)]
    weight = np.where(band(matte), (1.0 - seen) * np.abs(2 * p - 1) * trust_in_colour, 0.0).astype(np.float32)
    return (1 - weight) * matte + weight * p
