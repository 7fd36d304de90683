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
BAND = 1 / 50  # of the frame's long side: how far from the carried edge the colour model may speak


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


def colour_mend(table: np.ndarray, image8: np.ndarray, matte: np.ndarray, trust: np.ndarray) -> np.ndarray:
    """``matte`` (H, W) with the colour model's say mixed in by distrust, on the band around its edge."""
    hard = (matte >= 0.5).astype(np.uint8)
    disk = _disk(max(2, round(max(hard.shape) * BAND)))
    band = cv2.dilate(hard, disk) != cv2.erode(hard, disk)
    weight = np.where(band, 1.0 - trust, 0.0).astype(np.float32)
    return (1 - weight) * matte + weight * table[_bins(image8)]
