"""The roto edge pass: soft, sub-pixel matte edges at full resolution on a narrow band.

A colour guided filter (He, Sun, Tang, "Guided Image Filtering", TPAMI 2013) of a coarse matte, guided by
the plate: inside the band around the coarse edge the matte becomes a local linear function of the plate's
colour, so it follows the real edge (hair, motion blur) to sub-pixel precision; outside the band the coarse
matte is kept, so the pass can never grow the matte into far-away look-alike colours.
"""

from __future__ import annotations

import cv2
import numpy as np


def _box(image: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(image, -1, (2 * radius + 1, 2 * radius + 1), normalize=True, borderType=cv2.BORDER_REFLECT)


def guided_filter(
    guide: np.ndarray, source: np.ndarray, radius: int, eps: float, where: np.ndarray | None = None
) -> np.ndarray:
    """He et al.'s colour guided filter: ``source`` (H, W) float32 filtered by ``guide`` (H, W, 3) float32 0..1.

    ``where`` (optional boolean (H, W)): only those pixels are wanted; the per-window linear fit is then solved
    only within ``radius`` of them (exact there), which is what makes a narrow band cheap.
    """
    guide = guide.astype(np.float32)
    p = source.astype(np.float32)
    mean_i = _box(guide, radius)
    mean_p = _box(p, radius)
    mean_ip = _box(guide * p[..., None], radius)
    cov_ip = mean_ip - mean_i * mean_p[..., None]
    # Per-pixel 3×3 covariance of the guide; the eps ridge keeps flat regions at the mean.
    outer = guide[..., :, None] * guide[..., None, :]
    var_i = _box(outer.reshape(*guide.shape[:2], 9), radius).reshape(*guide.shape[:2], 3, 3)
    var_i = var_i - mean_i[..., :, None] * mean_i[..., None, :] + eps * np.eye(3, dtype=np.float32)
    a = np.zeros_like(guide)
    if where is None:
        a = np.linalg.solve(var_i, cov_ip[..., None])[..., 0]
    else:
        kernel = np.ones((2 * radius + 1, 2 * radius + 1), np.uint8)
        need = cv2.dilate(where.astype(np.uint8), kernel) > 0
        a[need] = np.linalg.solve(var_i[need], cov_ip[need][..., None])[..., 0]
    b = mean_p - np.sum(a * mean_i, axis=-1)
    mean_a = _box(a, radius)
    mean_b = _box(b, radius)
    return np.sum(mean_a * guide, axis=-1) + mean_b


def edge_band(matte: np.ndarray, radius: int) -> np.ndarray:
    """Boolean (H, W): pixels within ``radius`` of the matte's 0.5 edge (or already soft)."""
    hard = (matte >= 0.5).astype(np.uint8)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))
    grown = cv2.dilate(hard, kernel)
    shrunk = cv2.erode(hard, kernel)
    return (grown != shrunk) | ((matte > 0.02) & (matte < 0.98))


def refine_edges(plate01: np.ndarray, matte: np.ndarray, *, radius: int | None = None, eps: float = 1e-3) -> np.ndarray:
    """Full-resolution soft matte (H, W) float32 0..1 from a coarse ``matte`` and the plate.

    ``plate01``: (H, W, 3) float32 analysis image (display-like encoding, 0..1) at full resolution.
    ``matte``: float32 0..1 at any size; it is resized to the plate first. ``radius`` (pixels) defaults to
    about 1/240 of the frame's long side (2 px at 480p, 8 px at 2K), the band is twice that wide.
    """
    h, w = plate01.shape[:2]
    if matte.shape != (h, w):
        matte = cv2.resize(matte.astype(np.float32), (w, h), interpolation=cv2.INTER_LINEAR)
    radius = radius or max(2, round(max(h, w) / 240))
    band = edge_band(matte, 2 * radius)
    ys, xs = np.nonzero(band)
    if ys.size == 0:
        return matte.astype(np.float32)
    # Filter only the band's bounding box (plus the filter's reach): most of a frame is flat matte.
    pad = 2 * radius + 1
    y0, y1 = max(0, ys.min() - pad), min(h, ys.max() + pad + 1)
    x0, x1 = max(0, xs.min() - pad), min(w, xs.max() + pad + 1)
    inner = band[y0:y1, x0:x1]
    soft = guided_filter(plate01[y0:y1, x0:x1], matte[y0:y1, x0:x1], radius, eps, where=inner)
    out = matte.astype(np.float32).copy()
    out[y0:y1, x0:x1][inner] = soft[inner]
    return np.clip(out, 0.0, 1.0)
