"""The roto cut: a GrabCut in a narrow band around the carried edge decides the pixels flow lost.

GrabCut (Rother, Kolmogorov, Blake, "GrabCut", SIGGRAPH 2004; OpenCV's ``cv2.grabCut``): colour mixtures
of the object and of its surroundings, learned from the frame itself, and a graph cut that puts the edge on
the plate's own colour edges. Here it only decides a band of :data:`BAND` around the fused matte's 0.5 edge:
deep inside the matte is the object, beyond the band the surroundings, and so are pixels in the band that
flow carried all the way from a key frame without losing them (``seen``) and that the matte is sure about.
What is left to decide is what flow lost on the way: the background a moving object drags along (the
swept, revealed pixels) and the edge where it drifted. The frame's own colours, not the key frames', speak.

Deterministic: OpenCV's random generator (GrabCut's k-means) is seeded before each cut.
"""

from __future__ import annotations

import cv2
import numpy as np

BAND = (
    1 / 25
)  # of the frame's long side: how far from the fused edge the cut may move it (tuned on blackswan, dog, kite-surf: 1/60 .821, 1/40 .820, 1/25 .824)
SURE = 0.4  # |matte - 0.5| above which a pixel flow carried all the way is not put to the cut
ITERATIONS = 2  # GrabCut's rounds of colour model and cut


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def cut_band(image8: np.ndarray, matte: np.ndarray, seen: np.ndarray, interior: bool = False) -> np.ndarray:
    """``matte`` (H, W) float32 0..1 with the unsure pixels of the band around its edge decided by GrabCut.

    ``image8``: (H, W, 3) uint8 analysis image of the frame; ``seen``: (H, W) 1 where flow carried the pixel
    all the way from a key frame without a failed consistency test. With ``interior``, the inside of the
    matte deeper than the band is put to the cut too where ``seen`` is below 0.5 (a lump of background flow
    dragged into the object); otherwise it is taken as the object. Decided pixels become 0 or 1 (the edge
    pass softens them afterwards); every other pixel is returned as given.
    """
    h, w = matte.shape
    hard = (matte >= 0.5).astype(np.uint8)
    radius = max(2, round(max(h, w) * BAND))
    grown, shrunk = cv2.dilate(hard, _disk(radius)), cv2.erode(hard, _disk(radius))
    labels = np.full((h, w), cv2.GC_BGD, np.uint8)
    labels[grown > 0] = cv2.GC_PR_BGD
    labels[hard > 0] = cv2.GC_PR_FGD
    labels[shrunk > 0] = cv2.GC_FGD
    if interior:
        labels[(shrunk > 0) & (seen < 0.5)] = cv2.GC_PR_FGD
    sure = (seen >= 0.5) & (np.abs(matte - 0.5) > SURE)
    labels[sure & (hard > 0)] = cv2.GC_FGD
    labels[sure & (hard == 0)] = cv2.GC_BGD
    unsure = (labels == cv2.GC_PR_FGD) | (labels == cv2.GC_PR_BGD)
    ys, xs = np.nonzero(grown)
    if not unsure.any() or ys.size == 0:
        return matte.astype(np.float32)
    # Cut the band's bounding box only (plus the surroundings' colours next to it): most of a frame is far away.
    y0, y1 = max(0, ys.min() - radius), min(h, ys.max() + radius + 1)
    x0, x1 = max(0, xs.min() - radius), min(w, xs.max() + radius + 1)
    box = np.ascontiguousarray(labels[y0:y1, x0:x1])
    fg = (box == cv2.GC_FGD) | (box == cv2.GC_PR_FGD)
    if fg.sum() < 10 or (~fg).sum() < 10:  # GrabCut needs both colour mixtures
        return matte.astype(np.float32)
    cv2.setRNGSeed(0)
    background, foreground = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    cv2.grabCut(
        np.ascontiguousarray(image8[y0:y1, x0:x1, :3]),
        box,
        None,
        background,
        foreground,
        ITERATIONS,
        cv2.GC_INIT_WITH_MASK,
    )
    decided = np.zeros((h, w), np.float32)
    decided[y0:y1, x0:x1] = ((box == cv2.GC_FGD) | (box == cv2.GC_PR_FGD)).astype(np.float32)
    return np.where(unsure, decided, matte).astype(np.float32)
