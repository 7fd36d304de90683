"""Cleanup: a moving region removed from a plate, filled from the plate's own frames where they reveal what is
behind it, the never-revealed rest generated once and carried (no Django, no torch).

The steps, as flow-guided video completion does them (Huang et al. 2016; Gao et al., FGVC, ECCV 2020; Zhou et
al., ProPainter, ICCV 2023), without learned weights:

1. **Flow**: dense DIS optical flow of the plate between neighbouring frames, both ways, on compressed luminance.
   Inside both frames' holes (grown by :attr:`CleanupOptions.flow_margin`, since the patch-based flow there
   follows the object being removed) and wherever the two ways' round trip misses by more than
   :attr:`CleanupOptions.consistency` (DIS's pyramid drags the object's motion well beyond the margin) the flow
   is thrown away and completed: the camera's motion (a homography refitted to the flow it explains) plus a
   smooth push-pull fill (:func:`fill_smooth`) of what the trusted flow moves beyond it, its sub-noise part
   taken as noise: the background behind an object moves as the background around it.
2. **Propagation**: every hole pixel of frame t is traced through the completed flows, one frame at a time,
   to earlier frames and to later ones, until it lands where that frame shows the background (outside its
   own hole); the colour is taken there once (bicubic) from the untouched plate, so nothing is resampled
   twice. The two directions are blended by nearness in time. The camera-completed flow carries a moving
   thing behind the hole (a car the removed object passes in front of) as if it were the background, smeared;
   so each pixel is traced a second time through a looser flow (:attr:`CleanupOptions.second_flow`: a pair's
   untrusted pixels taken from the nearest pairs that trust them, where the hole has moved on, and no
   round-trip check). Where both traces reveal a pixel and neither's sources agree in colour far better
   than the other's (:attr:`CleanupOptions.blend_band`; their variance, averaged over a few pixels so regions
   switch, not pixels) their colours are averaged (``second_blend="mean"``, the default since 2026-12-04):
   each is wrong in its own way where the hidden thing moves, and the mean of two partly independent errors
   is nearer the truth than either, more often than the agreement can tell which one is right; where one
   agrees far better (it sees one surface, the other lands on different things), it is taken.
3. **Never revealed**: pixels no frame shows are filled in ONE reference frame (the frame with most of them)
   by ``generate`` (the show model's masked denoising in the runner; a spatial inpaint by default) and then
   carried to every other frame by the same tracing, so the made-up part moves with the background instead of
   being invented anew each frame (which would flicker).
4. **Gradient-domain blend** (:func:`poisson_blend`, as FGVC does): each hole pixel keeps the differences to
   its neighbours that its own source frames show, and the whole hole is solved (Poisson) so that it meets the
   plate round it (leaving out the seam pixels whose mismatch is an outlier, a copy misplaced across an edge): an exposure change between frames or a seam between sources leaves no edge, and a
   slightly misplaced copy's low-frequency error is taken out by the surrounding plate. On DAVIS subsets
   (20 frames) this raised the hole's PSNR by 1.3..2.7 dB over blending colours.
5. **Composite**: ``matte * fill + (1 - matte) * plate``; where the matte is 0 the plate is returned bit for
   bit.

Frames are float32 (H, W, 3) in any one space (scene-linear in the runner, display-referred in the bench);
mattes are (H, W) in [0, 1], 1 = remove.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import cv2
import numpy as np

Generate = Callable[[np.ndarray, np.ndarray], np.ndarray]  # (frame (H, W, 3), unseen (H, W) bool) -> (H, W, 3)


class CleanupError(ValueError):
    """Frames and mattes that cannot be cleaned up (sizes, ranges, empty input); said before anything runs."""


@dataclass(frozen=True)
class CleanupOptions:
    flow_margin: int = 9  # px the hole is grown by before its flow is replaced (DIS patches see the object)
    visible_margin: int = 2  # px a source frame's hole is grown by before its pixels count as background
    reach: int = 0  # most frames a pixel is traced through each way (0: the whole shot)
    sources: int = 2  # frames that show a hole pixel blended each way (nearest first, weighted by nearness)
    flow_size: int = 1024  # flow is computed at most this big (largest side), then scaled to the frame
    poisson: bool = True  # gradient-domain blend of what is propagated and what is generated
    consistency: float = 0.05  # px: flow whose forward-backward round trip misses by more is completed (0: off)
    robust_seam: bool = True  # the blend leaves out seam pixels whose mismatch is an outlier (misplaced edges)
    poisson_iterations: int = 100  # conjugate-gradient iterations of each frame's Poisson solve (at most)
    temporal: int = 0  # pairs each way whose trusted flow fills a pair's untrusted pixels before the spatial fill
    second_flow: bool = True  # also trace through a looser flow, taken where its sources agree better
    second_consistency: float = 0.0  # px: the second flow's round-trip limit (0: none)
    second_temporal: int = 8  # the second flow's :attr:`temporal` reach
    choose_window: int = 5  # px: the neighbourhood whose sources' disagreement picks between the two flows
    second_ratio: float = 1.0  # the second flow is taken where its disagreement is below this × the first's
    second_blend: str = "mean"  # "mean": both traces averaged where they agree alike (blend_band); "choose": one
    blend_band: float = 4.0  # "mean" only where neither trace's disagreement is this many times the other's
    flow_finest: int = 0  # DIS's finest pyramid level (0: the flow's full resolution; each level halves it)
    flow_stride: int = 2  # px: DIS's patch stride at each level
    flow_refine: int = 5  # DIS's variational refinement iterations at each level


def _compressed(rgb: np.ndarray) -> np.ndarray:
    """Compressed luminance ``y / (1 + y)`` (H, W) float32 of any-range RGB."""
    y = np.maximum(np.nan_to_num(rgb, nan=0.0, posinf=1e6, neginf=0.0), 0.0) @ np.array(
        [0.2126, 0.7152, 0.0722], np.float32
    )
    return y / (1.0 + y)


def _to8(c: np.ndarray, top: float) -> np.ndarray:
    return np.clip(255.0 * c / top + 0.5, 0, 255).astype(np.uint8)


def fill_smooth(values: np.ndarray, known: np.ndarray) -> np.ndarray:
    """``values`` (H, W) or (H, W, C) float32 with the pixels where ``known`` (H, W) bool is False replaced by
    a smooth fill from the known ones (push-pull: a weighted image pyramid, filled coarse to fine)."""
    v = np.asarray(values, np.float32)
    w = known.astype(np.float32)
    if v.ndim == 2:
        v = v[..., None]
    if not w.any():
        return np.zeros_like(values, np.float32)
    levels: list[tuple[np.ndarray, np.ndarray]] = []
    cur_v, cur_w = v * w[..., None], w
    while True:
        levels.append((cur_v, cur_w))
        h, wd = cur_w.shape
        if max(h, wd) <= 2:
            break
        size = (max(1, (wd + 1) // 2), max(1, (h + 1) // 2))
        cur_v = cv2.resize(cur_v, size, interpolation=cv2.INTER_AREA).reshape(size[1], size[0], -1)
        cur_w = cv2.resize(cur_w, size, interpolation=cv2.INTER_AREA)
    sv, sw = levels[-1]
    out = sv / np.maximum(sw, 1e-8)[..., None]
    for lv, lw in reversed(levels[:-1]):
        h, wd = lw.shape
        up = cv2.resize(out, (wd, h), interpolation=cv2.INTER_LINEAR).reshape(h, wd, -1)
        mean = lv / np.maximum(lw, 1e-8)[..., None]
        a = np.clip(lw, 0.0, 1.0)[..., None]
        out = a * mean + (1.0 - a) * up
    out = np.where(known[..., None], v, out)
    return out[..., 0] if np.asarray(values).ndim == 2 else out


RESIDUAL_NOISE = 0.05  # px: DIS's sub-pixel noise; flow within about this of the camera's motion is taken as it


def _homography_flow(flow: np.ndarray, known: np.ndarray, step: int = 8) -> np.ndarray | None:
    """The flow field of the homography that best explains ``flow`` where ``known`` (RANSAC, 1 px), or None
    when too little is known."""
    h, w = known.shape
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    keep = known[ys, xs]
    if keep.sum() < 16:
        return None
    src = np.stack([xs[keep], ys[keep]], axis=1).astype(np.float32)
    dst = src + flow[ys[keep], xs[keep]]
    m, _ = cv2.findHomography(src, dst, cv2.RANSAC, 1.0)
    if m is None:
        return None
    # RANSAC's own refit takes every point within 1 px, and DIS is off by tenths of a pixel along edges and
    # the frame's border while exact (to 1e-5 px) on most of the picture: refit to the points that the first
    # fit explains within a few robust sigmas of its residuals, so the camera's motion is sub-hundredth exact.
    for _ in range(2):
        proj = cv2.perspectiveTransform(src[None], m)[0]
        res = np.linalg.norm(proj - dst, axis=1)
        keep = res <= max(3.0 * 1.4826 * float(np.median(res)), 1e-3)
        if keep.sum() < 16:
            break
        refit, _ = cv2.findHomography(src[keep], dst[keep], 0)
        if refit is None:
            break
        m = refit
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    den = m[2, 0] * gx + m[2, 1] * gy + m[2, 2]
    out = np.empty((h, w, 2), np.float32)
    out[..., 0] = (m[0, 0] * gx + m[0, 1] * gy + m[0, 2]) / den - gx
    out[..., 1] = (m[1, 0] * gx + m[1, 1] * gy + m[1, 2]) / den - gy
    return out


def _round_trip(there: np.ndarray, back: np.ndarray) -> np.ndarray:
    """(H, W) px: how far a pixel lands from where it started, carried by ``there`` and brought back by ``back``
    (the forward-backward check)."""
    h, w = there.shape[:2]
    gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
    returned = cv2.remap(back, gx + there[..., 0], gy + there[..., 1], cv2.INTER_LINEAR,
                         borderMode=cv2.BORDER_REPLICATE)
    return np.linalg.norm(there + returned, axis=2)


def _grow(mask: np.ndarray, px: int) -> np.ndarray:
    if px <= 0:
        return mask.astype(bool)
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * px + 1, 2 * px + 1))
    return cv2.dilate(mask.astype(np.uint8), kernel) > 0


def _sample(img: np.ndarray, pts: np.ndarray, interpolation: int = cv2.INTER_LINEAR) -> np.ndarray:
    """``img`` sampled at ``pts`` (N, 2) float32 x, y: (N,) or (N, C)."""
    n = len(pts)
    cols = 1024  # remap's maps must be under 32767 on each side: lay the points out as rows
    rows = max(1, -(-n // cols))
    grid = np.zeros((rows * cols, 2), np.float32)
    grid[:n] = pts
    mx = np.ascontiguousarray(grid[:, 0].reshape(rows, cols))
    my = np.ascontiguousarray(grid[:, 1].reshape(rows, cols))
    out = cv2.remap(img, mx, my, interpolation, borderMode=cv2.BORDER_REPLICATE)
    out = out.reshape(rows * cols, -1)[:n]
    return out if img.ndim == 3 else out.reshape(-1)


OFFSETS = np.array([(0, 0), (1, 0), (-1, 0), (0, 1), (0, -1)], np.float32)  # a pixel and its 4 neighbours


def poisson_blend(
    plate: np.ndarray,
    hole: np.ndarray,
    patches: np.ndarray,
    iterations: int = 300,
    ignore: np.ndarray | None = None,
    robust: bool = False,
) -> np.ndarray:
    """The colours (N, 3) of the ``hole`` (H, W) bool pixels (row-major order) whose differences to their
    neighbours best match the guidance and whose outer ring is the ``plate`` (H, W, 3): the least-squares
    (Poisson) solution of Pérez et al. 2003, as FGVC blends propagated pixels.

    ``patches`` (N, 5, 3): per hole pixel, its fill and its four neighbours' (:data:`OFFSETS`) as seen in the
    frame it was taken from, so each edge's guidance is a difference within ONE source (two hole pixels'
    estimates of their shared edge are averaged). Neighbours where ``ignore`` (H, W) bool is set are left out
    (no edge to them: what is solved does not depend on them). Solved by Jacobi-preconditioned conjugate gradients from the
    fill itself, in float64, a fixed number of iterations at most (deterministic)."""
    h, w = hole.shape
    ys, xs = np.nonzero(hole)
    n = len(ys)
    if n == 0:
        return np.zeros((0, 3), np.float32)
    index = np.full((h, w), -1, np.int64)
    index[ys, xs] = np.arange(n)
    patches = patches.astype(np.float64)
    centre = patches[:, 0]
    nbr = np.full((n, 4), -1, np.int64)
    inside = np.zeros((n, 4), bool)
    rhs = np.zeros((n, 3), np.float64)
    drop = _seam_outliers(plate, hole, patches, xs, ys, ignore) if robust else None
    for j, (dx, dy) in enumerate(OFFSETS[1:].astype(np.int64)):
        qx, qy = xs + dx, ys + dy
        ok = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
        if ignore is not None:
            ok[ok] = ~ignore[qy[ok], qx[ok]]
        if drop is not None:
            ok &= ~drop[:, j]
        inside[:, j] = ok
        q = np.full(n, -1, np.int64)
        q[ok] = index[qy[ok], qx[ok]]
        nbr[:, j] = q
        guide = patches[:, j + 1] - centre  # u_q - u_p as p's source sees it
        both = q >= 0
        opp = (1, 0, 3, 2)[j]  # the opposite offset's slot: +x↔-x, +y↔-y
        guide[both] = 0.5 * (guide[both] - (patches[q[both], opp + 1] - patches[q[both], 0]))
        known = ok & (q < 0)
        rhs[known] += plate[qy[known], qx[known]].astype(np.float64)
        rhs[ok] -= guide[ok]
    degree = np.maximum(inside.sum(axis=1), 1).astype(np.float64)[:, None]  # no edge at all: keeps its fill
    nbr[nbr < 0] = n  # a known or outside neighbour reads the zero row appended below
    ext = np.zeros((n + 1, 3), np.float64)

    def apply(u: np.ndarray) -> np.ndarray:
        ext[:n] = u
        return degree * u - ext[nbr].sum(axis=1)

    u = centre.copy()
    r = rhs - apply(u)
    z = r / degree
    d = z.copy()
    rz = (r * z).sum(axis=0)
    floor = 1e-10 * max(float((rhs * rhs / degree).sum()), 1e-20)
    for _ in range(iterations):
        if float(rz.sum()) <= floor:
            break
        ad = apply(d)
        alpha = rz / np.maximum((d * ad).sum(axis=0), 1e-300)
        u += alpha * d
        r -= alpha * ad
        z = r / degree
        rz_new = (r * z).sum(axis=0)
        d = z + (rz_new / np.maximum(rz, 1e-300)) * d
        rz = rz_new
    return u.astype(np.float32)


def _seam_outliers(
    plate: np.ndarray, hole: np.ndarray, patches: np.ndarray, xs: np.ndarray, ys: np.ndarray,
    ignore: np.ndarray | None, spread: float = 3.0,
) -> np.ndarray:
    """(N, 4) bool: the seam edges (a hole pixel to a plate neighbour) whose mismatch, the plate's colour minus
    the source's view of it, is an outlier (beyond ``spread`` robust sigmas, 1.4826 MAD, of the frame's seam
    mismatches round their median, per channel). A shift of level (exposure) is common to the whole seam and
    is kept; a copy misplaced across an edge mismatches at a few seam pixels by far more, and solving to those
    would spread the error over the hole as a smooth wash that changes from frame to frame (flicker)."""
    h, w = hole.shape
    out = np.zeros((len(xs), 4), bool)
    seam: list[tuple[int, np.ndarray, np.ndarray]] = []
    for j, (dx, dy) in enumerate(OFFSETS[1:].astype(np.int64)):
        qx, qy = xs + dx, ys + dy
        ok = (qx >= 0) & (qx < w) & (qy >= 0) & (qy < h)
        ok[ok] = ~hole[qy[ok], qx[ok]]
        if ignore is not None:
            ok[ok] = ~ignore[qy[ok], qx[ok]]
        at = np.flatnonzero(ok)
        seam.append((j, at, plate[qy[at], qx[at]].astype(np.float64) - patches[at, j + 1]))
    d = np.concatenate([s[2] for s in seam])
    if len(d) < 8:
        return out
    med = np.median(d, axis=0)
    sigma = 1.4826 * np.median(np.abs(d - med), axis=0)
    level = max(float(np.abs(plate[~hole]).mean()), 1e-6) if (~hole).any() else 1.0
    limit = spread * np.maximum(sigma, 1e-4 * level)
    for j, at, dj in seam:
        out[at, j] = (np.abs(dj - med) > limit).any(axis=1)
    return out


@dataclass
class Fill:
    """What :meth:`CleanupShot.fill` made: the filled frames and how each hole pixel was filled."""

    frames: list[np.ndarray]  # (H, W, 3) float32: the comp, matte · fill + (1 - matte) · plate
    fills: list[np.ndarray]  # (H, W, 3) float32: the plate with every hole pixel replaced (the element's colour)
    revealed: float  # fraction of hole pixels, over all frames, taken from another frame of the plate
    generated: float  # fraction made by ``generate`` in the reference frame and carried
    reference: int | None  # index of the frame where the never-revealed part was generated (None: none)
    notes: list[str] = field(default_factory=list)


class CleanupShot:
    """A plate's frames and the mattes of what to remove; :meth:`fill` does the work."""

    def __init__(
        self,
        plates: Sequence[np.ndarray],
        mattes: Sequence[np.ndarray],
        options: CleanupOptions | None = None,
        progress: Callable[[str, int, int], None] | None = None,
    ) -> None:
        if len(plates) == 0:
            raise CleanupError("cleanup needs at least one frame")
        if len(plates) != len(mattes):
            raise CleanupError(f"{len(plates)} plate frames but {len(mattes)} mattes")
        self.options = options or CleanupOptions()
        self.progress = progress or (lambda stage, done, total: None)
        self.plates = [np.asarray(p, np.float32)[..., :3] for p in plates]
        h, w = self.plates[0].shape[:2]
        self.mattes: list[np.ndarray] = []
        for k, (p, m) in enumerate(zip(self.plates, mattes, strict=True)):
            m = np.asarray(m, np.float32)
            if p.shape[:2] != (h, w) or m.shape != (h, w):
                raise CleanupError(f"frame index {k}: plate {p.shape[1]}x{p.shape[0]} and matte "
                                   f"{m.shape[1] if m.ndim == 2 else '?'}x{m.shape[0]} must both be {w}x{h}")
            if not np.isfinite(m).all() or m.min() < -1e-3 or m.max() > 1 + 1e-3:
                raise CleanupError(f"frame index {k}: the matte must lie in 0..1")
            self.mattes.append(np.clip(m, 0.0, 1.0))
        if not any((m > 0).any() for m in self.mattes):
            raise CleanupError("every matte is empty: nothing to remove")
        self.size = (h, w)
        self.holes = [m > 0 for m in self.mattes]
        self._back: list[np.ndarray | None] = []  # k → k-1, completed in the hole
        self._fwd: list[np.ndarray | None] = []  # k → k+1, completed in the hole
        self._second: tuple[list, list] | None = None  # (fwd, back) of the looser flow (``second_flow``)

    # -- flow -------------------------------------------------------------------------------------------------

    def _dis(self, a8: np.ndarray, b8: np.ndarray) -> np.ndarray:
        h, w = self.size
        scale = min(1.0, self.options.flow_size / max(h, w))
        if scale < 1.0:
            a8 = cv2.resize(a8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
            b8 = cv2.resize(b8, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
        dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
        # Down to the finest scale with a denser patch grid: a pixel taken from another frame lands a few
        # hundredths of a pixel from where it belongs instead of a tenth (the synthetic-pan test pins it).
        dis.setFinestScale(self.options.flow_finest)
        dis.setPatchStride(self.options.flow_stride)
        dis.setVariationalRefinementIterations(self.options.flow_refine)
        flow = dis.calc(a8, b8, None)
        if scale < 1.0:
            flow = cv2.resize(flow, (w, h), interpolation=cv2.INTER_LINEAR) / scale
        return flow

    def flows(self) -> None:
        """Both-way flows between neighbours, completed where they cannot be trusted: inside both frames'
        holes grown by :attr:`CleanupOptions.flow_margin` (the object being removed, where it is and where it
        goes), and wherever the two ways disagree by more than :attr:`CleanupOptions.consistency` px (DIS's
        pyramid drags the object's motion tens of pixels round it, and occlusions)."""
        if self._back:
            return
        untrusted = [_grow(h, self.options.flow_margin) for h in self.holes]
        memo: dict = {}  # the plate's DIS flows, computed once for both
        if self.options.second_flow:
            self._flows_on(self.plates, untrusted, self.options.second_consistency, self.options.second_temporal,
                           memo)
            self._second = self._fwd, self._back
        self._flows_on(self.plates, untrusted, memo=memo)

    def _flows_on(
        self, frames: Sequence[np.ndarray], untrusted: Sequence[np.ndarray], limit: float | None = None,
        temporal: int | None = None, memo: dict | None = None,
    ) -> None:
        """The completed both-way flows of ``frames`` (the plate, or a fill of it), thrown away where a pair's
        ``untrusted`` masks (H, W) bool are set and where the round trip misses."""
        n = len(frames)
        lum = [_compressed(p) for p in frames]
        top = max(float(np.percentile(_compressed(self.plates[0]), 99.5)), 1e-3)  # one scale for the shot
        lum = [_to8(c, top) for c in lum]
        limit = self.options.consistency if limit is None else limit
        self._back, self._fwd = [None] * n, [None] * n
        raw: list[tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]] = []  # per pair: fwd, bad, back, bad
        for k in range(n - 1):
            if memo is not None and k in memo:
                fwd, back = memo[k]
            else:
                fwd = self._dis(lum[k], lum[k + 1])  # k → k+1
                back = self._dis(lum[k + 1], lum[k])  # k+1 → k
                if memo is not None:
                    memo[k] = fwd, back
            bad = untrusted[k] | untrusted[k + 1]
            bad_fwd, bad_back = bad, bad
            if limit > 0:
                rt_fwd, rt_back = _round_trip(fwd, back), _round_trip(back, fwd)
                bad_fwd = bad | (rt_fwd > limit)
                bad_back = bad | (rt_back > limit)
            raw.append((fwd, bad_fwd, back, bad_back))
            self.progress("flow", k + 1, n - 1)
        reach = self.options.temporal if temporal is None else temporal
        for k in range(n - 1):
            fwd, bad_fwd, back, bad_back = raw[k]
            if reach > 0:
                fwd, bad_fwd = self._from_neighbours(raw, k, 0, reach)
                back, bad_back = self._from_neighbours(raw, k, 2, reach)
            self._fwd[k] = self._complete(fwd, bad_fwd)
            self._back[k + 1] = self._complete(back, bad_back)

    @staticmethod
    def _from_neighbours(raw: list, k: int, slot: int, reach: int) -> tuple[np.ndarray, np.ndarray]:
        """Pair k's flow (``slot`` 0 forward, 2 backward) with its untrusted pixels taken, where they can be,
        from the nearest pairs (up to ``reach`` each way) whose flow is trusted there: the hole moves, and what
        it hides in one pair is usually seen moving the same way a pair or two away."""
        flow, bad = raw[k][slot].copy(), raw[k][slot + 1].copy()
        for j in range(1, reach + 1):
            for kk in (k - j, k + j):
                if not 0 <= kk < len(raw) or not bad.any():
                    continue
                take = bad & ~raw[kk][slot + 1]
                flow[take] = raw[kk][slot][take]
                bad &= ~take
        return flow, bad

    @staticmethod
    def _complete(flow: np.ndarray, bad: np.ndarray) -> np.ndarray:
        """``flow`` with its ``bad`` pixels replaced: the camera's motion (a homography fitted with RANSAC to
        the flow round the hole) plus a smooth fill of what the surroundings move beyond it (parallax)."""
        if not bad.any():
            return flow
        base = _homography_flow(flow, ~bad)
        if base is None:
            return fill_smooth(flow, ~bad).astype(np.float32)
        rest = flow - base
        if RESIDUAL_NOISE > 0:  # what DIS adds to the camera's motion below its own precision is its noise
            r2 = (rest * rest).sum(axis=2, keepdims=True)
            rest = rest * (r2 / (r2 + RESIDUAL_NOISE**2))
        rest = fill_smooth(rest, ~bad)
        return (base + rest).astype(np.float32)

    # -- tracing ----------------------------------------------------------------------------------------------

    def _trace(
        self, t: int, pts: np.ndarray, step: int, sources: Callable[[int], np.ndarray | None], hits: int = 1
    ) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Trace pixels ``pts`` (N, 2) of frame t one frame at a time in direction ``step`` (±1) through the
        frames whose ``sources(s)`` (H, W) bool says the pixel is usable there, up to ``hits`` of them. Returns,
        per hit, (frame index, x, y) per point, frame index -1 where no such hit was found."""
        n = len(self.plates)
        h, w = self.size
        levels = [(np.full(len(pts), -1, np.int32), np.zeros_like(pts)) for _ in range(hits)]
        count = np.zeros(len(pts), np.int32)
        p = pts.copy()
        alive = np.ones(len(pts), bool)
        reach = self.options.reach or n
        s = t
        for _ in range(reach):
            flow = (self._back if step < 0 else self._fwd)[s]
            s += step
            if flow is None or not 0 <= s < n or not alive.any():
                break
            idx = np.flatnonzero(alive)
            p[idx] += _sample(flow, p[idx])
            inside = (p[idx, 0] >= 0) & (p[idx, 0] <= w - 1) & (p[idx, 1] >= 0) & (p[idx, 1] <= h - 1)
            alive[idx[~inside]] = False
            idx = idx[inside]
            usable = sources(s)
            if usable is None or idx.size == 0:
                continue
            ok = _sample(usable.astype(np.float32), p[idx], cv2.INTER_NEAREST) > 0.5
            hit = idx[ok]
            for j in range(hits):
                at = hit[count[hit] == j]
                levels[j][0][at] = s
                levels[j][1][at] = p[at]
            count[hit] += 1
            alive[hit[count[hit] >= hits]] = False
        return [(found, where[:, 0], where[:, 1]) for found, where in levels]

    def _take(self, images: Sequence[np.ndarray], found: np.ndarray, xs: np.ndarray, ys: np.ndarray) -> np.ndarray:
        return self._take_patches(images, found, xs, ys, OFFSETS[:1])[:, 0]

    @staticmethod
    def _take_patches(
        images: Sequence[np.ndarray], found: np.ndarray, xs: np.ndarray, ys: np.ndarray, offsets: np.ndarray
    ) -> np.ndarray:
        """(N, len(offsets), 3): ``images[found]`` sampled (bicubic) at (xs, ys) + each offset."""
        out = np.zeros((len(found), len(offsets), 3), np.float32)
        for s in np.unique(found[found >= 0]):
            sel = found == s
            pts = np.stack([xs[sel], ys[sel]], axis=1).astype(np.float32)
            for j, off in enumerate(offsets):
                out[sel, j] = _sample(images[s], pts + off, cv2.INTER_CUBIC)
        return out

    # -- the fill ---------------------------------------------------------------------------------------------

    def _propagate(
        self, t: int, pts: np.ndarray, visible: list[np.ndarray], offsets: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Frame t's hole pixels ``pts`` traced both ways to the frames that show them: their colour patches
        (N, len(offsets), 3) blended by nearness (zero where none), the total weight (N,) (0: never revealed)
        and the sources' disagreement (N,): the weighted variance of the centre colour, summed over channels
        (inf with fewer than two sources)."""
        values = np.zeros((len(pts), len(offsets), 3), np.float32)
        second = np.zeros((len(pts), 3), np.float32)
        weight = np.zeros(len(pts), np.float32)
        count = np.zeros(len(pts), np.int32)
        for step in (-1, 1):
            for found, fx, fy in self._trace(t, pts, step, lambda s: visible[s], self.options.sources):
                got = found >= 0
                wgt = np.where(got, 1.0 / np.maximum(np.abs(found - t), 1), 0.0).astype(np.float32)
                taken = self._take_patches(self.plates, found, fx, fy, offsets)
                values += wgt[:, None, None] * taken
                second += wgt[:, None] * taken[:, 0] ** 2
                weight += wgt
                count += got
        seen = weight > 0
        values[seen] /= weight[seen, None, None]
        spread = np.full(len(pts), np.inf, np.float32)
        many = count >= 2
        spread[many] = np.maximum(second[many] / weight[many, None] - values[many, 0] ** 2, 0.0).sum(axis=1)
        return values, weight, spread

    def _near(self, ys: np.ndarray, xs: np.ndarray, spread: np.ndarray, spread2: np.ndarray) -> np.ndarray:
        """(N,) bool: where the two traces' disagreements (averaged as :meth:`_choose` does) are within
        :attr:`CleanupOptions.blend_band` of each other, so neither is clearly the one that sees one surface."""
        a, b = self._local(ys, xs, spread), self._local(ys, xs, spread2)
        band = self.options.blend_band
        with np.errstate(invalid="ignore"):
            return (a <= band * b) & (b <= band * a)

    def _choose(
        self, t: int, ys: np.ndarray, xs: np.ndarray, weight: np.ndarray, spread: np.ndarray,
        weight2: np.ndarray, spread2: np.ndarray,
    ) -> np.ndarray:
        """(N,) bool: the hole pixels of frame t to take from the second flow: where only it reveals them, or
        where its sources disagree less than :attr:`CleanupOptions.second_ratio` times the first flow's (each
        disagreement averaged over a :attr:`CleanupOptions.choose_window` neighbourhood of the hole, so whole
        regions switch, not pixels). Ratio 0.25 measured on the full bench: car-shadow +0.77 dB in the hole,
        camel, horsejump-high and Sintel about −0.3 each, mean −0.01: not the default."""
        a, b = self._local(ys, xs, spread), self._local(ys, xs, spread2)
        with np.errstate(invalid="ignore"):  # 0 × inf: never
            better = b < self.options.second_ratio * a
        return ((weight <= 0) & (weight2 > 0)) | ((weight2 > 0) & better)

    def _local(self, ys: np.ndarray, xs: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Per hole pixel (ys, xs), the mean of its finite ``v`` over a :attr:`CleanupOptions.choose_window`
        neighbourhood of the hole (inf where there is none)."""
        h, w = self.size
        win = self.options.choose_window
        img = np.zeros((h, w), np.float32)
        cnt = np.zeros((h, w), np.float32)
        ok = np.isfinite(v)
        img[ys[ok], xs[ok]] = v[ok]
        cnt[ys[ok], xs[ok]] = 1.0
        num = cv2.boxFilter(img, -1, (win, win), normalize=False)
        den = cv2.boxFilter(cnt, -1, (win, win), normalize=False)
        out = np.where(den > 0, num / np.maximum(den, 1e-6), np.inf)[ys, xs]
        return np.where(ok | (den[ys, xs] > 0), out, np.inf)

    def fill(self, generate: Generate | None = None) -> Fill:
        """Fill every frame's hole (see the module docstring); ``generate`` makes the never-revealed part of
        the reference frame (default: OpenCV's Telea inpaint, per channel)."""
        self.flows()
        n = len(self.plates)
        visible = [~_grow(hole, self.options.visible_margin) for hole in self.holes]
        filled: list[np.ndarray] = []
        unseen: list[tuple[np.ndarray, np.ndarray]] = []  # per frame: hole pixel coords (N, 2) never revealed
        patches: list[np.ndarray] = []  # per frame: (N, 5, 3) each hole pixel and its neighbours in its sources
        seens: list[np.ndarray] = []
        offsets = OFFSETS if self.options.poisson else OFFSETS[:1]
        total = revealed = 0
        for t in range(n):
            ys, xs = np.nonzero(self.holes[t])
            pts = np.stack([xs, ys], axis=1).astype(np.float32)
            values, weight, spread = self._propagate(t, pts, visible, offsets)
            if self._second is not None:  # the other flow where its sources agree better
                first = self._fwd, self._back
                self._fwd, self._back = self._second
                try:
                    values2, weight2, spread2 = self._propagate(t, pts, visible, offsets)
                finally:
                    self._fwd, self._back = first
                take = self._choose(t, ys, xs, weight, spread, weight2, spread2)
                if self.options.second_blend == "mean":  # both, where neither agrees far better
                    both = (weight > 0) & (weight2 > 0) & self._near(ys, xs, spread, spread2)
                    values[both] = 0.5 * (values[both] + values2[both])
                    take &= ~both
                values[take], weight[take] = values2[take], weight2[take]
            frame = self.plates[t].copy()
            seen = weight > 0
            frame[ys[seen], xs[seen]] = values[seen, 0]
            filled.append(frame)
            unseen.append(pts[~seen])
            patches.append(values)
            seens.append(seen)
            total += len(pts)
            revealed += int(seen.sum())
            self.progress("propagate", t + 1, n)
        h, w = self.size
        if self.options.poisson:  # the revealed pixels first, blind to the never-revealed ones (so a
            for t in range(n):  # variation's generated part changes nothing else)
                ys, xs = np.nonzero(self.holes[t])
                seen_mask = np.zeros((h, w), bool)
                seen_mask[ys[seens[t]], xs[seens[t]]] = True
                if seens[t].any():
                    filled[t][seen_mask] = poisson_blend(self.plates[t], seen_mask, patches[t][seens[t]],
                                                         self.options.poisson_iterations,
                                                         ignore=self.holes[t] & ~seen_mask,
                                                         robust=self.options.robust_seam)
                self.progress("blend", t + 1, n)
        counts = [len(u) for u in unseen]
        reference = int(np.argmax(counts)) if max(counts) > 0 else None
        generated = 0
        notes: list[str] = []
        if reference is not None:
            carried: dict[int, np.ndarray] = {}
            generated = self._fill_unseen(filled, unseen, reference, generate or telea, notes, carried)
            if self.options.poisson:  # then the generated and carried part, met by what is round it
                for t in range(n):
                    pts = unseen[t].astype(np.int64)
                    if len(pts) == 0:
                        continue
                    own = np.zeros((h, w), bool)
                    own[pts[:, 1], pts[:, 0]] = True
                    ys, xs = np.nonzero(own)  # row-major, as ``unseen`` and ``carried`` are
                    px = np.clip(xs[:, None] + OFFSETS[None, :, 0].astype(np.int64), 0, w - 1)
                    py = np.clip(ys[:, None] + OFFSETS[None, :, 1].astype(np.int64), 0, h - 1)
                    guide = filled[t][py, px]  # the generator's own frame, or filled spatially: itself
                    if t in carried:  # carried from the reference: its differences there
                        got = np.isfinite(carried[t][:, 0, 0])
                        guide[got] = carried[t][got]
                    filled[t][own] = poisson_blend(filled[t], own, guide, self.options.poisson_iterations)
        out = [
            np.where((m > 0)[..., None], m[..., None] * f + (1.0 - m[..., None]) * p, p)
            for f, p, m in zip(filled, self.plates, self.mattes, strict=True)
        ]
        return Fill(out, filled, revealed / max(total, 1), generated / max(total, 1), reference, notes)

    def _fill_unseen(
        self,
        filled: list[np.ndarray],
        unseen: list[np.ndarray],
        reference: int,
        generate: Generate,
        notes: list[str],
        carried: dict[int, np.ndarray] | None = None,
    ) -> int:
        h, w = self.size
        mask = np.zeros((h, w), bool)
        ref_pts = unseen[reference].astype(np.int64)
        mask[ref_pts[:, 1], ref_pts[:, 0]] = True
        made = np.asarray(generate(filled[reference], mask), np.float32)
        if made.shape != filled[reference].shape:
            raise CleanupError(f"the generator returned {made.shape}, not {filled[reference].shape}")
        filled[reference][mask] = made[mask]
        count = len(ref_pts)
        for t, pts in enumerate(unseen):
            if t == reference or len(pts) == 0:
                continue
            step = 1 if reference > t else -1
            [(found, fx, fy)] = self._trace(t, pts, step, lambda s: np.ones((h, w), bool) if s == reference else None)
            got = found >= 0
            xs, ys = pts[:, 0].astype(np.int64), pts[:, 1].astype(np.int64)
            if got.any():
                taken = self._take_patches(filled, found[got], fx[got], fy[got], OFFSETS)
                filled[t][ys[got], xs[got]] = taken[:, 0]
                if carried is not None:  # each carried pixel and its neighbours as the reference shows them
                    carried[t] = np.full((len(pts), len(OFFSETS), 3), np.nan, np.float32)
                    carried[t][got] = taken
            if (~got).any():  # traced out of the frame: fill from this frame's own surroundings
                rest = np.zeros((h, w), bool)
                rest[ys[~got], xs[~got]] = True
                filled[t][rest] = telea(filled[t], rest)[rest]
                notes.append(f"frame index {t}: {int((~got).sum())} pixels filled spatially (traced out of frame)")
            count += len(pts)
        return count


def flicker_ratio(shot: CleanupShot, filled: Sequence[np.ndarray]) -> float:
    """The fill's steadiness: the warping error of ``filled`` frames inside the hole under the completed
    background flow, over the plate's own warping error in a ring round the hole under the same flow (the
    plate there is real background, so 1 means the fill moves as steadily as what surrounds it). A fill that
    boils, swims or is made anew per frame raises it; 1.0 with fewer than two frames."""
    shot.flows()
    ours = plate = ours_px = plate_px = 0.0
    top = None
    for k in range(1, len(filled)):
        back = shot._back[k]
        if back is None:
            continue
        cur, prev = _compressed(filled[k]), _compressed(filled[k - 1])
        top = top or max(float(np.percentile(_compressed(shot.plates[0]), 99.5)), 1e-3)
        h, w = shot.size
        gx, gy = np.meshgrid(np.arange(w, dtype=np.float32), np.arange(h, dtype=np.float32))
        sx, sy = gx + back[..., 0], gy + back[..., 1]
        warped = cv2.remap(prev, sx, sy, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE) / top
        inside = (sx >= 0) & (sx <= w - 1) & (sy >= 0) & (sy <= h - 1)
        hole = shot.holes[k] & inside
        grown = _grow(shot.holes[k], shot.options.flow_margin)
        ring = _grow(shot.holes[k], 4 * shot.options.flow_margin) & ~grown & inside
        prev_holes = cv2.remap(shot.holes[k - 1].astype(np.float32), sx, sy, cv2.INTER_LINEAR) > 0
        ring &= ~prev_holes
        err = (cur / top - warped) ** 2
        ours += float(err[hole].sum())
        ours_px += float(hole.sum())
        plate += float(err[ring].sum())
        plate_px += float(ring.sum())
    if ours_px == 0 or plate_px == 0:
        return 1.0
    floor = 1e-6
    return float((ours / ours_px + floor) / (plate / plate_px + floor))


def telea(frame: np.ndarray, mask: np.ndarray, radius: int = 5) -> np.ndarray:
    """OpenCV's Telea inpaint of ``frame`` (H, W, 3) float32 where ``mask`` (H, W) bool, channel by channel.

    OpenCV's float inpaint is unstable on large holes (values far outside the image's), so each channel is
    coded ``x / (1 + x)`` into 16 bits (any scene-linear range), inpainted and decoded."""
    m8 = mask.astype(np.uint8) * 255
    x = np.maximum(np.nan_to_num(np.asarray(frame, np.float32)), 0.0)
    coded = np.round(65535.0 * x / (1.0 + x)).astype(np.uint16)
    out = np.stack([cv2.inpaint(np.ascontiguousarray(coded[..., c]), m8, radius, cv2.INPAINT_TELEA)
                    for c in range(3)], axis=-1).astype(np.float32) / 65535.0
    return np.where(mask[..., None], out / np.maximum(1.0 - out, 1e-6), frame).astype(np.float32)
