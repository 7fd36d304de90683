"""Quality figures of a variation: coverage and flow-based flicker, accumulated frame by frame.

Coverage: the fraction of matte pixels, over all frames, that receive generated content
(``sum(matte * covered) / sum(matte)``); 1.0 means no hole anywhere.

Flicker follows Lai et al., "Learning Blind Video Temporal Consistency" (ECCV 2018): the warping
error of the element composited over the plate, between consecutive frames, inside the matte,
using dense optical flow of the PLATE (OpenCV DIS) and a forward/backward consistency mask
(occlusions and flow failures left out), divided by the plate's own warping error on the same
pixels. Where the plate has no texture (a clear sky: any flow fits it, so DIS's there is a guess)
the flow is the homography fitted, with RANSAC, to Lucas-Kanade tracks of the plate's own features
round the matte (sub-pixel where DIS is a tenth of a pixel off), or no motion when nothing near the matte shows any (a locked-off black void); so
the motion the element is held to is always the plate's, never the camera track it was carried with. Values are compressed luminance ``y / (1 + y)`` of scene-linear luminance, so bright skies
do not dominate. 1 ≈ as steady as the plate itself; a hole that moves or grows, a texture stuck to
screen while the plate moves, or an element regenerated per frame all raise it (tests/generation/
engine/test_qc.py breaks it each of those ways on real footage).
"""

from __future__ import annotations

import hashlib
from collections.abc import Hashable

import cv2
import numpy as np

from generation.engine import frame_cache

FLICKER_LIMIT = 1.2  # above this the element is visibly less steady than its plate
COVERAGE_LIMIT = 1.0  # anything below has pixels of the matte without generated content
WORK_SIZE = 960  # flow is computed at most this big (largest side)
_FLOOR = 1e-6
_TEXTURE = 1e-3  # cornerMinEigenVal of 8-bit compressed luminance below which the plate's flow is a guess
_BAND = 0.25  # the band round the matte's box whose textured flow stands in for the untextured


def compress(y: np.ndarray) -> np.ndarray:
    """Compressed luminance ``y / (1 + y)`` of scene-linear ``y`` (negative and NaN clamp to 0)."""
    y = np.array(y, np.float32)  # a copy, worked in place (the same values as the plain expression's temporaries)
    np.nan_to_num(y, copy=False, nan=0.0, posinf=1e6, neginf=0.0)
    np.maximum(y, 0.0, out=y)
    return np.divide(y, y + np.float32(1.0), out=y)


class CoverageMeter:
    """``add(matte, covered)`` per frame ((H, W) in [0, 1]: the region, and where generated content
    landed); ``figure()`` is the fraction of matte covered over all frames (1.0 for an empty matte)."""

    def __init__(self) -> None:
        self._matte = 0.0
        self._covered = 0.0

    def add(self, matte: np.ndarray, covered: np.ndarray) -> None:
        self.add_terms(self.terms(matte, covered))

    @staticmethod
    def terms(matte: np.ndarray, covered: np.ndarray) -> tuple[float, float]:
        """One frame's sums (any thread); :meth:`add_terms` them in frame order for the same figure as :meth:`add`."""
        matte = _clipped64(matte)
        covered = np.asarray(covered)
        total = float(matte.sum())
        # The usual frame: every matte pixel fully covered (what is not, the matte leaves out), so each product below
        # is the matte's own value and the covered sum is the matte's, to the bit, without making it.
        if np.all((covered >= 1.0) | ((matte == 0.0) & (covered == covered))):
            return total, total
        return total, float((matte * np.clip(np.asarray(covered, np.float64), 0.0, 1.0)).sum())

    @staticmethod
    def covered_terms(matte: np.ndarray) -> tuple[float, float]:
        """:meth:`terms` of a frame whose every matte pixel (every one not ≤ 0) is known to be covered: the
        same two sums to the bit, without the covered image."""
        total = float(_clipped64(matte).sum())
        return total, total

    def add_terms(self, terms: tuple[float, float]) -> None:
        self._matte += terms[0]
        self._covered += terms[1]

    def figure(self) -> float:
        return 1.0 if self._matte <= 0 else min(1.0, self._covered / self._matte)


def _clipped64(matte: np.ndarray) -> np.ndarray:
    """``matte`` as float64 clipped to [0, 1] (NaN kept), a new array clipped in place."""
    out = np.array(matte, np.float64)
    np.maximum(out, 0.0, out=out)
    return np.minimum(out, 1.0, out=out)


def coverage(mattes, covered) -> float:
    """Coverage of whole sequences (iterables of (H, W) arrays); see :class:`CoverageMeter`."""
    meter = CoverageMeter()
    for m, c in zip(mattes, covered, strict=True):
        meter.add(m, c)
    return meter.figure()


def _to8(c: np.ndarray) -> np.ndarray:
    return np.clip(c * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _flow(a8: np.ndarray, b8: np.ndarray) -> np.ndarray:
    """Dense flow (H, W, 2) float32 with ``a(x) ≈ b(x + flow(x))``."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    return dis.calc(a8, b8, None)


def _maps(flow: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Where ``flow`` (H, W, 2) takes each pixel: the x and y maps :func:`cv2.remap` samples at."""
    h, w = flow.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    return gx + flow[..., 0], gy + flow[..., 1]


def _remap(img: np.ndarray, flow: np.ndarray | tuple[np.ndarray, np.ndarray]) -> np.ndarray:
    """``img`` sampled where ``flow`` takes each pixel (a flow, or its :func:`_maps`)."""
    maps = _maps(flow) if isinstance(flow, np.ndarray) else flow
    return cv2.remap(img, *maps, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistent(back: np.ndarray, fwd: np.ndarray) -> np.ndarray:
    """Pixels of frame k whose flow to k-1 (``back``) and back again (``fwd`` of k-1, sampled where
    ``back`` lands) cancel (Sundaram et al. 2010), and whose source lies inside the frame."""
    h, w = back.shape[:2]
    fwd_at = _remap(fwd, back)
    total = back + fwd_at
    # x² + y² channel by channel: what summing over the last axis of 2 gives, to the bit, several times faster.
    limit = 0.01 * ((back[..., 0] ** 2 + back[..., 1] ** 2) + (fwd_at[..., 0] ** 2 + fwd_at[..., 1] ** 2)) + 0.5
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    sx, sy = gx + back[..., 0], gy + back[..., 1]
    inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
    return ((total[..., 0] ** 2 + total[..., 1] ** 2) < limit) & inside


def _band(matte: np.ndarray) -> np.ndarray | None:
    """The matte's box grown by :data:`_BAND` of its size each way (bool (H, W)), None for an empty matte."""
    rows, cols = np.flatnonzero((matte > 0).any(axis=1)), np.flatnonzero((matte > 0).any(axis=0))
    if rows.size == 0:
        return None
    gy, gx = int(_BAND * (rows[-1] - rows[0] + 1)) + 8, int(_BAND * (cols[-1] - cols[0] + 1)) + 8
    band = np.zeros(matte.shape, bool)
    band[max(0, rows[0] - gy) : rows[-1] + gy + 1, max(0, cols[0] - gx) : cols[-1] + gx + 1] = True
    return band


def _band_homography(cur8: np.ndarray, prev8: np.ndarray, band: np.ndarray) -> np.ndarray | None:
    """The plate's own motion k → k-1 round the matte: Lucas-Kanade feature tracks in ``band`` (checked
    forward and back) and a RANSAC homography; None when the band shows too little."""
    pts = cv2.goodFeaturesToTrack(cur8, 800, 0.01, 5, mask=band.astype(np.uint8) * 255, blockSize=7)
    if pts is None or len(pts) < 12:
        return None
    lk = dict(winSize=(21, 21), maxLevel=3, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.01))
    fwd, ok, _ = cv2.calcOpticalFlowPyrLK(cur8, prev8, pts, None, **lk)
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(prev8, cur8, fwd, None, **lk)
    good = ok.ravel().astype(bool) & ok2.ravel().astype(bool)
    good &= np.linalg.norm((back - pts).reshape(-1, 2), axis=1) < 0.5
    if good.sum() < 12:
        return None
    m, _ = cv2.findHomography(pts[good].reshape(-1, 2), fwd[good].reshape(-1, 2), cv2.RANSAC, 0.5)
    return m


def _plate_motion(
    back: np.ndarray, trusted: np.ndarray, matte: np.ndarray, cur8: np.ndarray, prev8: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """The flow to use (H, W, 2) and where it holds (H, W) bool: the plate's own DIS flow where it is
    ``trusted``, elsewhere the plate's homography round the matte (:func:`_band_homography`; no motion
    when the band shows none), so a textureless part of the matte moves as its surroundings do."""
    h, w = back.shape[:2]
    band = _band(matte)
    if band is None:
        return back, trusted
    xx, yy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    fill = np.zeros_like(back)
    m = _band_homography(cur8, prev8, band)
    if m is not None:
        den = m[2, 0] * xx + m[2, 1] * yy + m[2, 2]
        fill[..., 0] = (m[0, 0] * xx + m[0, 1] * yy + m[0, 2]) / den - xx
        fill[..., 1] = (m[1, 0] * xx + m[1, 1] * yy + m[1, 2]) / den - yy
    flow = np.where(trusted[..., None], back, fill).astype(np.float32)
    sx, sy = xx + flow[..., 0], yy + flow[..., 1]
    return flow, (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)


class FlowFlickerMeter:
    """Flow-based flicker, frame by frame (two frames kept).

    ``add(comp_luma, plate_luma, matte)``: scene-linear luminance (H, W) of the element composited
    over the plate and of the plate alone, and the matte (H, W) in [0, 1], for consecutive frames
    in order. ``ratio()``: comp warping error / plate warping error inside the matte (see the
    module docstring); 0 pairs → 1.0 (nothing to tell).
    """

    def __init__(self, work_size: int = WORK_SIZE, group: Hashable = None) -> None:
        self.work_size = work_size
        self.group = group
        self._prev: tuple | None = None
        self._comp = 0.0
        self._plate = 0.0
        self._pixels = 0.0
        self.pairs = 0

    def _small(self, img: np.ndarray) -> np.ndarray:
        img = np.asarray(img, np.float32)
        scale = min(1.0, self.work_size / max(img.shape[:2]))
        if scale == 1.0:
            return img
        return cv2.resize(img, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)

    def add(self, comp_luma: np.ndarray, plate_luma: np.ndarray, matte: np.ndarray) -> None:
        small = self.prepare(comp_luma, plate_luma, matte)
        if self._prev is not None:
            self.add_terms(self.pair_terms(self._prev, small))
        self._prev = small

    def prepare(self, comp_luma: np.ndarray, plate_luma: np.ndarray, matte: np.ndarray) -> tuple:
        """One frame's working-size inputs (any thread)."""
        return self.prepare_with(comp_luma, self.plate_side(plate_luma, matte))

    def plate_side(self, plate_luma: np.ndarray, matte: np.ndarray) -> tuple:
        """The plate's half of :meth:`prepare` (working-size plate and matte, and with a ``group`` their digest,
        what :meth:`pair_terms` keys the plate's flow by): the same for every variation of a request, so a
        caller may keep it (it is handed out, never written to)."""
        plate = self._small(compress(plate_luma))
        matte = self._small(np.clip(np.asarray(matte, np.float32), 0.0, 1.0))
        return plate, matte, _digest(plate, matte) if self.group is not None else None

    def prepare_with(self, comp_luma: np.ndarray, plate_side: tuple) -> tuple:
        """:meth:`prepare` with the plate's half already made (:meth:`plate_side`)."""
        plate, matte, digest = plate_side
        return self._small(compress(comp_luma)), plate, matte, digest

    def add_terms(self, terms: tuple[float, float, float] | None) -> None:
        """A pair's :meth:`pair_terms`, added in frame order (so the figure is :meth:`add`'s to the bit)."""
        self.pairs += 1
        if terms is not None:
            self._comp += terms[0]
            self._plate += terms[1]
            self._pixels += terms[2]

    def pair_terms(self, prev: tuple, cur: tuple) -> tuple[float, float, float] | None:
        """The warping-error sums of consecutive frames' :meth:`prepare` results (any thread). With a
        ``group`` (the plate's pattern) the plate's own side, the same for every variation of a request,
        comes from :data:`frame_cache.FLOWS` when another variation measured it already."""
        (p_comp, p_plate, p_matte, p_digest), (comp, plate, matte, digest) = prev, cur
        if self.group is None:
            back, weight, total, plate_error = _plate_pair(p_plate, p_matte, plate, matte)
        else:
            key = ("flicker", p_digest, digest)
            back, weight, total, plate_error = frame_cache.FLOWS.get_or_make(
                key, lambda: _plate_pair(p_plate, p_matte, plate, matte), self.group
            )
        if total <= 0:
            return None
        # weight × (comp − the previous comp moved by the plate's flow)², in one buffer: the same sum to the bit.
        error = _remap(p_comp, back)
        np.subtract(comp, error, out=error)
        np.multiply(error, error, out=error)
        np.multiply(weight, error, out=error)
        return float(error.sum()), plate_error, total

    def ratio(self) -> float:
        if not self.pairs or self._pixels <= 0:
            return 1.0
        floor = _FLOOR * self._pixels
        return float((self._comp + floor) / (self._plate + floor))

    def plate_error(self) -> float:
        """The plate's own mean warping error inside the matte (compressed luminance squared)."""
        return self._plate / self._pixels if self._pixels else 0.0


def _plate_pair(p_plate, p_matte, plate, matte) -> tuple[tuple[np.ndarray, np.ndarray], np.ndarray, float, float]:
    """The plate's side of a frame pair: where its flow k → k-1 takes each pixel (the x and y maps
    :func:`cv2.remap` samples frame k-1 at), the weight of each pixel (inside the matte in both frames, where the
    plate's motion is known), the weight's sum and the plate's own error."""
    plate8, p_plate8 = _to8(plate), _to8(p_plate)
    back = _flow(plate8, p_plate8)  # frame k → k-1
    fwd = _flow(p_plate8, plate8)  # frame k-1 → k
    trusted = consistent(back, fwd) & (cv2.cornerMinEigenVal(plate8, 5, 3) > _TEXTURE)
    back, valid = _plate_motion(back, trusted, matte, plate8, p_plate8)
    weight = np.minimum(matte, _remap(p_matte, back)) * valid
    total = float(weight.sum())
    plate_error = float((weight * (plate - _remap(p_plate, back)) ** 2).sum()) if total > 0 else 0.0
    return _maps(back), weight, total, plate_error  # the maps made once, for every variation's pair


def _digest(*arrays: np.ndarray) -> bytes:
    h = hashlib.blake2b(digest_size=20)
    for a in arrays:
        h.update(repr((a.shape, a.dtype.str)).encode())
        h.update(np.ascontiguousarray(a).data)
    return h.digest()


def flicker_ratio_flow(comps, plates, mattes, work_size: int = WORK_SIZE) -> float:
    """Flow flicker of whole sequences (iterables of (H, W) luminance and mattes)."""
    meter = FlowFlickerMeter(work_size)
    for c, p, m in zip(comps, plates, mattes, strict=True):
        meter.add(c, p, m)
    return meter.ratio()
