"""Whole-frame translation by phase correlation, numpy only.

The engine's camera track is :mod:`camera` (features away from the matte and moving things, a model per
shot, full 3×3 transforms) and its flicker figure is :mod:`qc`'s. This shift-only estimator is kept as
the reference the real-plates bench measures the camera track against (``tests/bench/realplates.py``):
it reads a moving object as camera motion and cannot see a zoom or a roll.

Shifts are ``(dx, dy)`` in pixels, x right and y down, meaning the content moved by that much:
``b(x) ≈ a(x - d)``. A track is the cumulative shift of every frame from the first.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable

import numpy as np

_COARSE = 256  # coarse pass size (largest side) for big frames
_FINE = 512  # full-resolution refinement crop (largest side)
_UPSAMPLE = 20  # upsampled-DFT peak refinement factor
_EPS = 1e-6


def _downscale(img: np.ndarray, f: int) -> np.ndarray:
    if f == 1:
        return img
    h, w = (img.shape[0] // f) * f, (img.shape[1] // f) * f
    return img[:h, :w].reshape(h // f, f, w // f, f).mean(axis=(1, 3))


def _upsampled_dft(data: np.ndarray, size: int, factor: int, offsets: np.ndarray) -> np.ndarray:
    # Guizar-Sicairos et al. 2008: the inverse DFT evaluated on a fine grid around a point.
    for n, offset in zip(data.shape[::-1], offsets[::-1], strict=True):
        kernel = (np.arange(size) - offset)[:, None] * np.fft.fftfreq(n, factor)
        data = np.tensordot(np.exp(-2j * np.pi * kernel), data, axes=(1, -1))
    return data


def _parabola(m: float, c: float, p: float) -> float:
    denom = m - 2 * c + p
    return 0.0 if abs(denom) < 1e-12 else float(np.clip(0.5 * (m - p) / denom, -0.5, 0.5))


def _phase_correlate(a: np.ndarray, b: np.ndarray, weight: np.ndarray | None) -> np.ndarray:
    """(dy, dx) with b(x) ≈ a(x - d), sub-pixel, for same-shaped 2-D arrays."""
    a, b = a.astype(np.float64), b.astype(np.float64)
    h, w = a.shape
    win = np.outer(np.hanning(h), np.hanning(w))
    if weight is not None:
        win = win * weight
    total = win.sum()
    if total <= _EPS:
        return np.zeros(2)
    fa = np.fft.fft2((a - (a * win).sum() / total) * win)
    fb = np.fft.fft2((b - (b * win).sum() / total) * win)
    cross = fb * np.conj(fa)
    cross /= np.abs(cross) + _EPS * np.abs(cross).max() + 1e-30
    corr = np.fft.ifft2(cross).real
    peak = np.array(np.unravel_index(np.argmax(corr), corr.shape), float)
    shape = np.array(corr.shape)
    peak[peak > shape // 2] -= shape[peak > shape // 2]
    size = int(np.ceil(_UPSAMPLE * 1.5))
    centre = size // 2
    fine = np.abs(_upsampled_dft(np.conj(cross), size, _UPSAMPLE, centre - peak * _UPSAMPLE))
    iy, ix = np.unravel_index(np.argmax(fine), fine.shape)
    sub = np.zeros(2)
    if 0 < iy < size - 1:
        sub[0] = _parabola(fine[iy - 1, ix], fine[iy, ix], fine[iy + 1, ix])
    if 0 < ix < size - 1:
        sub[1] = _parabola(fine[iy, ix - 1], fine[iy, ix], fine[iy, ix + 1])
    return peak + (np.array([iy, ix]) - centre + sub) / _UPSAMPLE


def _centre_crop(lo: int, hi: int, size: int) -> tuple[int, int]:
    if hi - lo <= size:
        return lo, hi
    start = lo + (hi - lo - size) // 2
    return start, start + size


def estimate_shift(a: np.ndarray, b: np.ndarray, mask: np.ndarray | None = None) -> tuple[float, float]:
    """Global translation ``(dx, dy)`` of ``b`` relative to ``a`` (2-D luminance, same shape).

    Phase correlation with a Hann window and upsampled-DFT peak refinement. Frames bigger than
    256 px are first matched at a box-downscaled size, then refined at full resolution on a central
    crop of the overlap. ``mask`` (optional, same shape) weights the pixels to trust (e.g. 1 - matte).
    """
    a = np.asarray(a, np.float32)
    b = np.asarray(b, np.float32)
    if a.ndim != 2 or a.shape != b.shape:
        raise ValueError(f"estimate_shift needs two same-shaped 2-D images, got {a.shape}, {b.shape}")
    weight = None if mask is None else np.asarray(mask, np.float32)
    if weight is not None and weight.shape != a.shape:
        raise ValueError(f"mask is {weight.shape}, images are {a.shape}")
    h, w = a.shape
    f = max(1, int(np.ceil(max(h, w) / _COARSE)))
    d = np.zeros(2)
    if f > 1:
        small_w = None if weight is None else _downscale(weight, f)
        d = _phase_correlate(_downscale(a, f), _downscale(b, f), small_w) * f
    iy, ix = (int(round(v)) for v in d)
    # Refine on the overlap with the integer part removed, where the Hann window barely biases.
    y0, y1 = _centre_crop(max(0, iy), min(h, h + iy), _FINE)
    x0, x1 = _centre_crop(max(0, ix), min(w, w + ix), _FINE)
    if y1 - y0 < 8 or x1 - x0 < 8:
        return float(d[1]), float(d[0])
    a_c = a[y0 - iy : y1 - iy, x0 - ix : x1 - ix]
    w_c = None if weight is None else weight[y0:y1, x0:x1]
    r = _phase_correlate(a_c, b[y0:y1, x0:x1], w_c)
    return float(ix + r[1]), float(iy + r[0])


def camera_track(
    lumas: Iterable[np.ndarray], progress: Callable[[int], None] | None = None
) -> list[tuple[float, float]]:
    """Cumulative shift of every frame from the first; ``lumas`` may be a generator (one frame kept).

    ``progress(k)`` is called after frame k (1-based) is tracked.
    """
    track: list[tuple[float, float]] = []
    prev = None
    for k, luma in enumerate(lumas):
        if prev is None:
            track.append((0.0, 0.0))
        else:
            dx, dy = estimate_shift(prev, luma)
            track.append((track[-1][0] + dx, track[-1][1] + dy))
        prev = luma
        if progress is not None:
            progress(k + 1)
    return track


def _taps(n: int, d: float) -> tuple[np.ndarray, np.ndarray, np.float32]:
    lo = int(np.floor(d))
    src = np.arange(n) - lo  # out(x) = (1 - f) * img(x - lo) + f * img(x - lo - 1)
    return np.clip(src, 0, n - 1), np.clip(src - 1, 0, n - 1), np.float32(d - lo)


def shift_image(img: np.ndarray, dx: float, dy: float) -> np.ndarray:
    """``out(x) = img(x - d)``: bilinear, edge-clamped; (H, W) or (H, W, C), float32 out."""
    img = np.asarray(img, np.float32)
    h, w = img.shape[:2]
    a, b, f = _taps(w, dx)
    cols = img[:, a] if f == 0 else img[:, a] * (1 - f) + img[:, b] * f
    a, b, f = _taps(h, dy)
    return cols[a] if f == 0 else cols[a] * (1 - f) + cols[b] * f
