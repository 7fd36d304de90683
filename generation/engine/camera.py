"""The plate's dominant 2D camera motion, as one 3×3 matrix per frame.

Convention (every function here): pixel coordinates over the DISPLAY window, x right, y down, the
centre of array pixel ``[row, col]`` at ``(col, row)`` (OpenCV's). ``CameraTrack.matrices[k]`` maps
a point of the first frame of the range to where that same bit of the world is seen in frame k:
``p_k ~ H_k @ (x0, y0, 1)``, so ``H_0`` is the identity, and a frame's pixel ``p`` samples frame-0
(card) space at ``inv(H_k) @ p``.

Where the motion comes from, first that applies:

1. a track file (:func:`read_track_file`) overrides everything;
2. motion-vector channels (:func:`motion_vector_channels`), fitted robustly outside what is excluded;
3. feature tracks: ``goodFeaturesToTrack`` on a reference frame outside the excluded area (the
   matte, given object mattes, a partial plate alpha), pyramidal Lucas-Kanade into each frame
   with a forward/backward check, a RANSAC homography for the inliers, and a new reference when
   fewer than half of the reference's features survive (so the track does not drift the way a
   frame-to-frame chain does);
4. a dense sub-pixel refinement of each frame's fit in the chosen model (:func:`_refine_ecc`,
   OpenCV's ECC over every unexcluded pixel against the frame's anchor): feature points sit on
   edges where a plate has few corners (Beachball: a ball's rim over black), and on an edge LK
   only sees the motion across it, so a roll or zoom along the rim came out short; the dense fit
   sees every edge's direction at once. It is kept only when it converges and stays within
   :data:`_ECC_MAX_PX` of the feature fit.

The model is chosen per shot from the inliers of all frames: the simplest of locked-off
(identity), translation, similarity (zoom, roll) and homography (handheld, perspective) whose
residual is within noise of the homography's.
"""

from __future__ import annotations

import math
import os
import re
from collections import deque
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field

import cv2
import numpy as np

MODELS = ("locked", "translation", "similarity", "homography")
WORK_SIZE = 1024  # features are tracked at most this big (largest side); matrices are full-res
NOISE_PX = 0.15  # full-resolution residual below which a simpler model is as good
_MIN_POINTS = 12
_FB_PX = 0.5  # forward/backward LK disagreement allowed (working pixels)
_RANSAC_PX = 1.0  # inlier threshold of the homography fit (working pixels)
_ECC_MAX_PX = 3.0  # the dense refinement may move a corner this far from the feature fit (working pixels)
_ECC_CRITERIA = (cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 20, 1e-5)
_ECC_MOTION = {
    "translation": cv2.MOTION_TRANSLATION,
    "similarity": cv2.MOTION_AFFINE,  # ECC has no similarity: affine, projected back onto one
    "homography": cv2.MOTION_HOMOGRAPHY,
}
_LK = dict(winSize=(21, 21), maxLevel=4, criteria=(cv2.TERM_CRITERIA_COUNT | cv2.TERM_CRITERIA_EPS, 40, 0.01))


class CameraError(ValueError):
    """A camera track that cannot be made (bad track file, shape mismatch): the message says why."""


@dataclass
class CameraTrack:
    """Frame-0 → frame-k matrices, (n, 3, 3) float64 (see the module docstring for the convention)."""

    matrices: np.ndarray
    model: str
    source: str  # "file", "motion_vectors", "features" or "none"
    residual_px: float = 0.0  # RMS of the chosen model over the inliers, full-resolution pixels
    notes: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.matrices)

    def map_points(self, k: int, points: np.ndarray) -> np.ndarray:
        """Frame-0 points (N, 2) seen in frame k."""
        return apply(self.matrices[k], points)

    def shifts(self) -> list[tuple[float, float]]:
        """Where frame 0's centre-less origin moves: the translation part, for figures that want one."""
        return [(float(m[0, 2] / m[2, 2]), float(m[1, 2] / m[2, 2])) for m in self.matrices]


def apply(matrix: np.ndarray, points: np.ndarray) -> np.ndarray:
    """``points`` (N, 2) through the 3×3 ``matrix`` (homogeneous divide), float64 (N, 2)."""
    pts = np.asarray(points, np.float64).reshape(-1, 2)
    out = pts @ matrix[:2, :2].T + matrix[:2, 2]
    w = pts @ matrix[2, :2] + matrix[2, 2]
    return out / w[:, None]


def identity_track(n: int, source: str = "none", note: str | None = None) -> CameraTrack:
    """A locked-off track of ``n`` frames."""
    return CameraTrack(np.repeat(np.eye(3)[None], n, axis=0), "locked", source, 0.0, [note] if note else [])


# --------------------------------------------------------------------------------------- model fits


def _fit(model: str, src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Least-squares ``model`` matrix taking ``src`` (N, 2) to ``dst``."""
    if model == "locked" or len(src) == 0:
        return np.eye(3)
    if model == "translation":
        m = np.eye(3)
        m[:2, 2] = np.median(dst - src, axis=0) if len(src) < 3 else (dst - src).mean(axis=0)
        return m
    if model == "similarity":
        return _fit_similarity(src, dst)
    if len(src) < 4:
        return _fit_similarity(src, dst)
    h, _ = cv2.findHomography(src.astype(np.float64), dst.astype(np.float64), 0)
    return _fit_similarity(src, dst) if h is None else h / h[2, 2]


def _fit_similarity(src: np.ndarray, dst: np.ndarray) -> np.ndarray:
    """Umeyama's closed form: scale, rotation and translation (no reflection)."""
    ms, md = src.mean(axis=0), dst.mean(axis=0)
    a, b = src - ms, dst - md
    var = (a**2).sum() / len(src)
    if var < 1e-12:
        m = np.eye(3)
        m[:2, 2] = md - ms
        return m
    u, s, vt = np.linalg.svd(b.T @ a / len(src))
    d = np.diag([1.0, np.sign(np.linalg.det(u @ vt)) or 1.0])
    rot = u @ d @ vt
    scale = float(np.trace(np.diag(s) @ d) / var)
    m = np.eye(3)
    m[:2, :2] = scale * rot
    m[:2, 2] = md - scale * rot @ ms
    return m


def _rms(matrix: np.ndarray, src: np.ndarray, dst: np.ndarray) -> float:
    return float(np.sqrt(((apply(matrix, src) - dst) ** 2).sum(axis=1).mean())) if len(src) else 0.0


def _inliers(src: np.ndarray, dst: np.ndarray, threshold: float) -> np.ndarray:
    """Boolean mask of the RANSAC homography's inliers (all when too few points to be choosy)."""
    if len(src) < 8:
        return np.ones(len(src), bool)
    _, keep = cv2.findHomography(src, dst, cv2.RANSAC, threshold, maxIters=2000, confidence=0.999)
    return np.ones(len(src), bool) if keep is None else keep.ravel().astype(bool)


@dataclass
class _Pair:
    """Inlier correspondences from an anchor frame ``ref`` to frame ``k`` (full-resolution pixels)."""

    ref: int
    k: int
    src: np.ndarray
    dst: np.ndarray


def _robust_fit(model: str, src: np.ndarray, dst: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``model`` fitted by least squares, then refitted twice without the points its residual puts
    beyond three times the median (tracks the homography's RANSAC let through but this model need
    not bend for); returns the matrix and the points kept."""
    m = _fit(model, src, dst)
    keep = np.ones(len(src), bool)
    for _ in range(2):
        r = np.linalg.norm(apply(m, src) - dst, axis=1)
        trial = r <= max(3.0 * float(np.median(r)), 0.3)
        if trial.sum() < min(len(src), 4):
            break
        keep = trial
        m = _fit(model, src[keep], dst[keep])
    return m, keep


def choose_model(pairs: Sequence[_Pair], noise_px: float = NOISE_PX) -> tuple[str, float]:
    """The simplest model whose robust RMS over all pairs is within noise of the homography's and
    which keeps nearly as many of the points."""
    stats = {}
    for model in MODELS:
        err, kept = 0.0, 0
        for p in pairs:
            m, keep = _robust_fit(model, p.src, p.dst)
            err += _rms(m, p.src[keep], p.dst[keep]) ** 2 * int(keep.sum())
            kept += int(keep.sum())
        total = sum(len(p.src) for p in pairs)
        stats[model] = (math.sqrt(err / kept) if kept else 0.0, kept / total if total else 1.0)
    best, best_kept = stats["homography"]
    for model in MODELS:
        rms, kept = stats[model]
        if rms <= best * 1.25 + noise_px and kept >= best_kept - 0.1:
            return model, rms
    return "homography", best


def _chain(pairs: Sequence[_Pair], n: int, model: str) -> np.ndarray:
    """Per-frame matrices: each pair's fit composed onto its anchor's matrix (frames without a
    pair hold the previous matrix)."""
    out = np.repeat(np.eye(3)[None], n, axis=0)
    by_frame = {p.k: p for p in pairs}
    for k in range(1, n):
        pair = by_frame.get(k)
        if pair is None:
            out[k] = out[k - 1]
            continue
        m = _robust_fit(model, pair.src, pair.dst)[0] @ out[pair.ref]
        out[k] = m / m[2, 2]
    return out


def _track_from_pairs(pairs: list[_Pair], n: int, source: str, notes: list[str]) -> CameraTrack:
    if not pairs:
        return identity_track(n, source, "; ".join(notes) or None)
    model, rms = choose_model(pairs)
    return CameraTrack(_chain(pairs, n, model), model, source, rms, notes)


# --------------------------------------------------------------------------------------- features


def _to_work(luma: np.ndarray, scale: float, lo_hi: tuple[float, float]) -> np.ndarray:
    """Working-size 8-bit image of scene-linear luminance (compressed ``y / (1 + y)``, stretched)."""
    y = np.maximum(np.nan_to_num(np.asarray(luma, np.float32), nan=0.0, posinf=0.0), 0.0)
    c = y / (1.0 + y)
    if scale != 1.0:
        c = cv2.resize(c, None, fx=scale, fy=scale, interpolation=cv2.INTER_AREA)
    lo, hi = lo_hi
    return np.clip((c - lo) / max(hi - lo, 1e-6) * 255.0 + 0.5, 0, 255).astype(np.uint8)


def _work_mask(exclude: np.ndarray | None, shape: tuple[int, int], scale: float) -> np.ndarray:
    """8-bit mask of where features may be (255), from an exclusion matte (> 0 = excluded), grown
    by the LK window so no feature's patch reaches into a moving thing."""
    if exclude is None:
        return np.full(shape, 255, np.uint8)
    small = cv2.resize(np.asarray(exclude, np.float32), (shape[1], shape[0]), interpolation=cv2.INTER_AREA)
    grown = cv2.dilate((small > 0).astype(np.uint8), np.ones((11, 11), np.uint8))
    return np.where(grown > 0, 0, 255).astype(np.uint8)


def _detect(img: np.ndarray, mask: np.ndarray) -> np.ndarray:
    spacing = max(4, max(img.shape) // 120)
    pts = cv2.goodFeaturesToTrack(img, 1500, 0.001, spacing, mask=mask, blockSize=7)
    return np.zeros((0, 2), np.float32) if pts is None else pts.reshape(-1, 2).astype(np.float32)


def _lk(ref: np.ndarray, cur: np.ndarray, pts: np.ndarray, guess: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Points tracked ref → cur (starting at ``guess``) and where the forward/backward check holds."""
    fwd, ok, _ = cv2.calcOpticalFlowPyrLK(
        ref, cur, pts.reshape(-1, 1, 2), guess.reshape(-1, 1, 2).copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK
    )
    back, ok2, _ = cv2.calcOpticalFlowPyrLK(
        cur, ref, fwd, pts.reshape(-1, 1, 2).copy(), flags=cv2.OPTFLOW_USE_INITIAL_FLOW, **_LK
    )
    fwd, back = fwd.reshape(-1, 2), back.reshape(-1, 2)
    good = ok.ravel().astype(bool) & ok2.ravel().astype(bool) & (np.linalg.norm(back - pts, axis=1) < _FB_PX)
    h, w = cur.shape
    good &= (fwd[:, 0] >= 0) & (fwd[:, 0] <= w - 1) & (fwd[:, 1] >= 0) & (fwd[:, 1] <= h - 1)
    return fwd, good


def _sample_mask(mask: np.ndarray, pts: np.ndarray) -> np.ndarray:
    """True where the 8-bit ``mask`` allows points ``pts`` (working pixels)."""
    h, w = mask.shape
    xi = np.clip(np.round(pts[:, 0]).astype(int), 0, w - 1)
    yi = np.clip(np.round(pts[:, 1]).astype(int), 0, h - 1)
    return mask[yi, xi] > 0


def _work_to_full(scale: float) -> np.ndarray:
    """Matrix from working pixel coordinates to full-resolution ones (pixel centres line up)."""
    s = 1.0 / scale
    return np.array([[s, 0, 0.5 * s - 0.5], [0, s, 0.5 * s - 0.5], [0, 0, 1.0]])


@dataclass(frozen=True)
class _WorkSpace:
    """What every frame's working image is made with, from the first frame: the scale to the working size and
    the tone range its 8-bit image stretches."""

    scale: float
    lo_hi: tuple[float, float]

    @classmethod
    def of(cls, luma: np.ndarray, work_size: int) -> _WorkSpace:
        c = np.maximum(np.nan_to_num(np.asarray(luma, np.float32)), 0)
        c = c / (1 + c)
        lo_hi = (float(np.percentile(c, 0.5)), float(np.percentile(c, 99.5)))
        return cls(min(1.0, work_size / max(luma.shape)), lo_hi)

    def frame(self, luma: np.ndarray, exclude: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """A frame's working image and feature mask (any thread: OpenCV and numpy release the GIL)."""
        img = _to_work(luma, self.scale, self.lo_hi)
        return img, _work_mask(exclude, img.shape, self.scale)


def estimate_track(
    lumas: Iterable[np.ndarray],
    excludes: Iterable[np.ndarray | None] | None = None,
    *,
    progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    work_size: int = WORK_SIZE,
    refine: bool = True,
) -> CameraTrack:
    """The dominant camera motion of a sequence of scene-linear luminance frames (H, W) float32.

    ``excludes`` (same length, each (H, W) or None): where features must not be, > 0 = excluded
    (the matte, moving objects); both ends of a correspondence are checked. Frames stream through
    (two working-size frames are kept); ``progress(k)`` after frame k (1-based). ``work_size``: the
    largest side features are tracked at; ``refine=False`` skips the dense refinement (a coarse track:
    :func:`track.quick_track`).
    """
    excludes_it = iter(excludes) if excludes is not None else None
    space: list[_WorkSpace] = []

    def work() -> Iterator[tuple[np.ndarray, np.ndarray]]:
        for luma in lumas:
            exclude = next(excludes_it) if excludes_it is not None else None
            if not space:
                space.append(_WorkSpace.of(luma, work_size))
            yield space[0].frame(luma, exclude)

    return _estimate(work(), lambda: space[0], progress=progress, should_cancel=should_cancel, refine=refine)


def _estimate(
    work: Iterable[tuple[np.ndarray, np.ndarray]],
    space: Callable[[], _WorkSpace],
    *,
    progress: Callable[[int], None] | None,
    should_cancel: Callable[[], bool] | None,
    refine: bool,
) -> CameraTrack:
    """:func:`estimate_track` of the frames' working images and masks (``work``, in frame order; ``space()``:
    what they were made with, known once the first is)."""
    pairs: list[_Pair] = []
    kept: list[tuple[np.ndarray, np.ndarray]] = []  # every frame's working image and mask, for the refinement
    notes: list[str] = []
    to_full = _work_to_full(1.0)
    ref = ref_mask = ref_pts = None
    ref_k = 0
    ref_h = np.eye(3)  # working-res matrix of the anchor (frame 0 → anchor)
    prev_h = np.eye(3)
    n = 0
    for k, (img, mask) in enumerate(work):
        if should_cancel is not None and should_cancel():
            from generation.engine.inpaint import Cancelled

            raise Cancelled(f"cancelled while tracking frame {k + 1}")
        n = k + 1
        if k == 0:
            to_full = _work_to_full(space().scale)
        kept.append((img, mask))
        if k == 0:
            ref, ref_mask, ref_pts = img, mask, _detect(img, mask)
            if len(ref_pts) < _MIN_POINTS:
                notes.append(f"frame {k}: only {len(ref_pts)} trackable features outside the exclusions")
        else:
            pair, cur_h = _track_frame(ref, ref_pts, ref_h, prev_h, img, mask, ref_k, k, to_full)
            if pair is None:
                if ref_pts is not None and len(ref_pts) >= _MIN_POINTS:
                    notes.append(f"frame {k}: no background track, previous motion held")
            else:
                pairs.append(pair)
                prev_h = cur_h
            if pair is None or len(pair.src) < max(_MIN_POINTS, len(ref_pts) // 2):
                # Re-anchor on this frame: its features carry the track on without chaining every frame.
                new_pts = _detect(img, mask)
                if len(new_pts) >= _MIN_POINTS:
                    ref, ref_mask, ref_pts, ref_k, ref_h = img, mask, new_pts, k, prev_h
        if progress is not None:
            progress(k + 1)
    del ref_mask
    track = _track_from_pairs(pairs, n, "features", notes)
    if not pairs:
        track.notes.append("no trackable background: treated as locked off")
    elif track.model != "locked" and refine:
        track.matrices = _refine_ecc(track.matrices, pairs, kept, track.model, to_full)
    return track


def _project(model: str, warp: np.ndarray, shape: tuple[int, int]) -> np.ndarray:
    """``warp`` (3×3) as ``model``: the least-squares ``model`` through a grid of the frame's points."""
    if model != "similarity":
        return warp / warp[2, 2]
    h, w = shape
    grid = np.stack(np.meshgrid(np.linspace(0, w - 1, 5), np.linspace(0, h - 1, 5)), axis=-1).reshape(-1, 2)
    return _fit_similarity(grid, apply(warp, grid))


def _ecc(template, template_mask, image, mask, init: np.ndarray, model: str) -> np.ndarray | None:
    """``init`` (template → image, working pixels, 3×3) refined by ECC in ``model``, or None when the
    refinement fails or goes further than :data:`_ECC_MAX_PX` from ``init`` (pulled off by something
    moving that no matte excludes)."""
    motion = _ECC_MOTION[model]
    warp = (init if motion == cv2.MOTION_HOMOGRAPHY else init[:2]).astype(np.float32)
    try:
        _, warp = cv2.findTransformECCWithMask(template, image, template_mask, mask, warp, motion, _ECC_CRITERIA, 5)
    except cv2.error:  # no texture where it may look, or it did not converge: keep the feature fit
        return None
    refined = np.eye(3)
    refined[: warp.shape[0]] = warp
    if not np.isfinite(refined).all() or abs(refined[2, 2]) < 1e-9:
        return None
    refined = _project(model, refined, template.shape)
    if corner_error(refined, init, template.shape) > _ECC_MAX_PX:
        return None
    return refined


def _refine_ecc(matrices, pairs, kept, model, to_full) -> np.ndarray:
    """Each tracked frame's matrix refined against its anchor's image (see the module docstring, 4.):
    the frames' refinements run on a small pool (OpenCV releases the GIL), then compose in frame order,
    so an anchor is refined before the frames that hang on it. The result does not depend on the pool."""
    to_work = np.linalg.inv(to_full)
    ordered = sorted(pairs, key=lambda p: p.k)

    def refine(pair: _Pair) -> np.ndarray | None:
        rel = to_work @ (matrices[pair.k] @ np.linalg.inv(matrices[pair.ref])) @ to_full  # anchor → k, working
        template, template_mask = kept[pair.ref]
        image, mask = kept[pair.k]
        return _ecc(template, template_mask, image, mask, rel / rel[2, 2], model)

    with ThreadPoolExecutor(max_workers=usable_cores(), thread_name_prefix="track-ecc") as pool:
        refined = list(pool.map(refine, ordered))
    out = matrices.copy()
    for pair, rel in zip(ordered, refined, strict=True):
        if rel is None:
            rel_full = matrices[pair.k] @ np.linalg.inv(matrices[pair.ref])
        else:
            rel_full = to_full @ rel @ to_work
        m = rel_full @ out[pair.ref]
        out[pair.k] = m / m[2, 2]
    return out


def _track_frame(ref, ref_pts, ref_h, prev_h, img, mask, ref_k, k, to_full):
    """One frame against the anchor: (inlier pair in full-res pixels or None, working-res matrix)."""
    if ref_pts is None or len(ref_pts) < _MIN_POINTS:
        return None, prev_h
    # Start LK where the previous frame's motion puts the anchor's points.
    guess = apply(prev_h @ np.linalg.inv(ref_h), ref_pts).astype(np.float32)
    cur, good = _lk(ref, img, ref_pts, guess)
    good &= _sample_mask(mask, cur)
    src, dst = ref_pts[good].astype(np.float64), cur[good].astype(np.float64)
    if len(src) < _MIN_POINTS:
        return None, prev_h
    keep = _inliers(src, dst, _RANSAC_PX)
    src, dst = src[keep], dst[keep]
    if len(src) < _MIN_POINTS:
        return None, prev_h
    rel = _fit("homography", src, dst)
    full = _Pair(ref_k, k, apply(to_full, src), apply(to_full, dst))
    return full, rel @ ref_h


def usable_cores() -> int:
    """The cores this process may use: threads for per-frame work that releases the GIL."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not Linux
        return max(1, os.cpu_count() or 1)


def _read_ahead(read: Callable, items: Sequence, depth: int = 2) -> Iterator:
    """``read(item)`` for each of ``items`` in order, up to ``depth`` reads running ahead on a pool."""
    with ThreadPoolExecutor(max_workers=depth, thread_name_prefix="track-read") as pool:
        futures = deque(pool.submit(read, item) for item in items[:depth])
        for index in range(len(items)):
            result = futures.popleft().result()
            if index + depth < len(items):
                futures.append(pool.submit(read, items[index + depth]))
            yield result


# --------------------------------------------------------------------------------------- motion vectors

# Channel pairs, what frame their vectors point to and which way their y runs.
# forward.u/v (Nuke's VectorGenerator and most renderers' "forward"): pixels toward the NEXT frame,
# y UP (Nuke's coordinates) - proven on Beachball's forward.<view>.u/v by tests/generation/engine/test_camera.py.
# motion.x/y, MV.x/y, mv.x/y: motion SINCE the previous frame, y down (this project's long-standing
# convention for them; a file that differs should be tracked from its pixels or a track file).
VECTOR_CHANNELS = (
    (("forward.u", "forward.v"), "next", -1.0),
    (("motion.x", "motion.y"), "previous", 1.0),
    (("MV.x", "MV.y"), "previous", 1.0),
    (("mv.x", "mv.y"), "previous", 1.0),
    (("MV.u", "MV.v"), "previous", 1.0),
    (("mv.u", "mv.v"), "previous", 1.0),
)


@dataclass(frozen=True)
class VectorChannels:
    """Which channels hold motion vectors and how to read them."""

    names: tuple[str, str]
    points_to: str  # "next": frame k's vectors reach frame k+1; "previous": they came from frame k-1
    y_sign: float  # multiply v by this to get pixels down


def motion_vector_channels(channels: Sequence[str], hero_view: str | None = None) -> VectorChannels | None:
    """The motion-vector channels of a plate, or None. ``forward.<view>.u/v`` is taken for the
    plate's hero view (the one its plain R, G, B belong to) when there are several views."""
    have = set(channels)
    for names, points_to, y_sign in VECTOR_CHANNELS:
        if set(names) <= have:
            return VectorChannels(names, points_to, y_sign)
    views = sorted({m.group(1) for c in channels if (m := re.fullmatch(r"forward\.([^.]+)\.u", c))})
    views = [v for v in views if f"forward.{v}.v" in have]
    if not views:
        return None
    view = hero_view if hero_view in views else views[0]
    return VectorChannels((f"forward.{view}.u", f"forward.{view}.v"), "next", -1.0)


def vector_pairs(
    vectors: np.ndarray, valid: np.ndarray, exclude: np.ndarray | None, spec: VectorChannels, step: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Correspondences (src, dst) in full-res pixels from one frame's (H, W, 2) vectors: from frame
    k to k+1 ("next") or from k-1 to k ("previous"), on a grid of valid, non-excluded pixels."""
    h, w = vectors.shape[:2]
    step = step or max(2, max(h, w) // 96)
    ys, xs = np.mgrid[step // 2 : h : step, step // 2 : w : step]
    ys, xs = ys.ravel(), xs.ravel()
    keep = valid[ys, xs] > 0
    if exclude is not None:
        keep &= ~(np.asarray(exclude)[ys, xs] > 0)
    d = vectors[ys, xs].astype(np.float64)
    keep &= np.isfinite(d).all(axis=1)
    pts = np.stack([xs, ys], axis=1)[keep].astype(np.float64)
    d = d[keep] * np.array([1.0, spec.y_sign])
    if spec.points_to == "next":
        return pts, pts + d
    return pts - d, pts


def track_from_vectors(
    frames_vectors: Iterable[tuple[np.ndarray, np.ndarray, np.ndarray | None]], spec: VectorChannels
) -> CameraTrack:
    """Camera track from per-frame ``(vectors (H, W, 2), valid (H, W), exclude or None)``, frame to
    frame (the vectors say nothing about frames further apart), RANSAC-fitted and chained."""
    pairs: list[_Pair] = []
    notes: list[str] = []
    n = 0
    for k, (vec, valid, exclude) in enumerate(frames_vectors):
        n = k + 1
        if spec.points_to == "next" and k == 0:
            pending = (vec, valid, exclude)
            continue
        if spec.points_to == "next":
            src, dst = vector_pairs(*pending, spec)  # frame k-1's vectors reach frame k
            pending = (vec, valid, exclude)
        elif k == 0:
            continue
        else:
            src, dst = vector_pairs(vec, valid, exclude, spec)
        if len(src) < _MIN_POINTS:
            notes.append(f"frame {k}: no usable background vectors, previous motion held")
            continue
        keep = _inliers(src, dst, 1.0)
        pairs.append(_Pair(k - 1, k, src[keep], dst[keep]))
    track = _track_from_pairs(pairs, n, "motion_vectors", notes)
    if not pairs:
        track.notes.append("no background motion vectors: treated as locked off")
    return track


# --------------------------------------------------------------------------------------- track files


def read_track_file(path: str | os.PathLike[str], first: int, last: int, size: tuple[int, int]) -> CameraTrack:
    """A per-frame 2D track from a text file (overrides any estimate), frames ``first..last``.

    One line per frame, ``#`` starts a comment, blank lines ignored, numbers split by spaces/tabs:

    - ``frame tx ty rot scale`` (as a Nuke Transform exported to ``.chan``): translate in pixels
      with ty UP, rotation in degrees counter-clockwise, uniform scale, about the frame centre;
    - ``frame m00 m01 m02 m10 m11 m12 m20 m21 m22``: a row-major 3×3 in this module's convention
      (pixel centres at integers, y down).

    Each line places the world at that frame relative to the file's own reference; the track is
    made relative to ``first`` (``H_k = T_k @ inv(T_first)``). ``size`` = (height, width) of the
    display window. Every frame of the range must be present.
    """
    path = os.fspath(path)
    try:
        with open(path, encoding="utf-8") as handle:
            text = handle.read()
    except (OSError, UnicodeDecodeError) as error:
        raise CameraError(f"{path}: cannot read the track file ({error})") from None
    by_frame: dict[int, np.ndarray] = {}
    for number, line in enumerate(text.splitlines(), 1):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        by_frame.update([_parse_track_line(path, number, line, size)])
    missing = [f for f in range(first, last + 1) if f not in by_frame]
    if missing:
        raise CameraError(f"{path}: no track for {len(missing)} frame(s) of {first}-{last}, first {missing[0]}")
    base = np.linalg.inv(by_frame[first])
    mats = np.stack([by_frame[f] @ base for f in range(first, last + 1)])
    mats /= mats[:, 2:3, 2:3]
    return CameraTrack(mats, "file", "file", 0.0, [f"track file {os.path.basename(path)}"])


def _parse_track_line(path: str, number: int, line: str, size: tuple[int, int]) -> tuple[int, np.ndarray]:
    where = f"{path}, line {number}"
    try:
        values = [float(v) for v in line.split()]
    except ValueError:
        raise CameraError(f"{where}: not numbers: {line!r}") from None
    if len(values) not in (5, 10) or not all(math.isfinite(v) for v in values) or values[0] != int(values[0]):
        raise CameraError(f"{where}: want 'frame tx ty rot scale' or 'frame' and 9 matrix numbers, got {line!r}")
    frame = int(values[0])
    if len(values) == 10:
        m = np.array(values[1:], np.float64).reshape(3, 3)
    else:
        tx, ty, rot, scale = values[1:]
        if scale <= 0:
            raise CameraError(f"{where}: scale must be positive, got {scale:g}")
        m = transform_matrix(tx, ty, rot, scale, size)
    if abs(np.linalg.det(m)) < 1e-12 or abs(m[2, 2]) < 1e-12:
        raise CameraError(f"{where}: the matrix is singular")
    return frame, m


def transform_matrix(tx: float, ty: float, rot_deg: float, scale: float, size: tuple[int, int]) -> np.ndarray:
    """The y-down pixel matrix of a Nuke-style transform (ty up, rotation counter-clockwise on
    screen, uniform scale about the centre of a ``size`` = (height, width) frame)."""
    h, w = size
    cx, cy = (w - 1) / 2.0, (h - 1) / 2.0
    a = math.radians(rot_deg)
    # Counter-clockwise on screen is clockwise in y-down coordinates: negate the angle.
    c, s = math.cos(-a) * scale, math.sin(-a) * scale
    to_c = np.array([[1, 0, -cx], [0, 1, -cy], [0, 0, 1.0]])
    rs = np.array([[c, -s, 0], [s, c, 0], [0, 0, 1.0]])
    back = np.array([[1, 0, cx + tx], [0, 1, cy - ty], [0, 0, 1.0]])
    return back @ rs @ to_c


def write_track_file(path: str | os.PathLike[str], first: int, track: CameraTrack) -> None:
    """Write ``track`` as the 3×3 form of :func:`read_track_file` (frames from ``first``)."""
    lines = ["# frame m00 m01 m02 m10 m11 m12 m20 m21 m22 (frame-0 pixels -> frame k, y down)"]
    for k, m in enumerate(track.matrices):
        lines.append(" ".join([str(first + k)] + [f"{v:.10g}" for v in m.ravel()]))
    with open(os.fspath(path), "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------------------- quality


def corner_error(estimated: np.ndarray, truth: np.ndarray, size: tuple[int, int]) -> float:
    """Largest distance (pixels) between where two matrices put a ``size`` = (h, w) frame's corners."""
    h, w = size
    corners = np.array([[0, 0], [w - 1, 0], [0, h - 1], [w - 1, h - 1]], np.float64)
    return float(np.linalg.norm(apply(estimated, corners) - apply(truth, corners), axis=1).max())


# --------------------------------------------------------------------------------------- plates

AP1_LUMA = np.array([0.2722287, 0.6740818, 0.0536895], np.float32)  # ACEScg luminance weights


def hero_view(path: str) -> str | None:
    """The view a multi-view EXR's plain R, G, B belong to (the first of ``multiView``), or None."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(os.fspath(path))
    if inp is None:
        return None
    try:
        views = inp.spec().getattribute("multiView")
    finally:
        inp.close()
    return views[0] if isinstance(views, tuple | list) and views else None


def _alpha_excludes(path: str, channels: Sequence[str]) -> np.ndarray | None:
    """A plate's own alpha as an exclusion when it is partial: an element render (Beachball's ball
    over nothing) moves on its own, so what its alpha covers is not the camera's
    (:func:`frame_cache.partial_alpha`: an opaque frame's alpha is decoded once, with its colour channels when
    the track reads them through :func:`frame_cache.read_plate`, not again by every track of it)."""
    from generation.engine import frame_cache

    return frame_cache.partial_alpha(path) if "A" in channels else None


def plate_track(
    paths: Sequence[str],
    *,
    exclude: Callable[[int], np.ndarray | None] | None = None,
    track_file: str | None = None,
    first: int = 0,
    use_vectors: bool = True,
    progress: Callable[[int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    header=None,
    plate_colour: dict | None = None,
    read_rgb: Callable[[str], np.ndarray] | None = None,
    work_size: int = WORK_SIZE,
    refine: bool = True,
) -> CameraTrack:
    """The camera track of plate frames ``paths`` (EXRs, frame numbers ``first``…; ``header``: the first
    frame's :class:`frames.FrameHeader` when the caller has read it).

    ``exclude(k)`` gives frame k's exclusion matte ((H, W), > 0 = not camera: the region's matte,
    moving objects) or None. A ``track_file`` overrides; then motion-vector channels; then features
    of the plate's luminance. A partial plate alpha is excluded too (see :func:`_alpha_excludes`).
    ``plate_colour``: :func:`frames.read_channels`'s colour keywords, so luminance is the working space's;
    ``read_rgb(path)``: reads a frame's working-space R, G, B instead (a shared cache). Frames and their
    exclusions are read ahead of the tracking on a small pool. ``work_size`` and ``refine``: as
    :func:`estimate_track`'s.
    """
    from generation.engine import frames

    header = header or frames.read_header(paths[0], verify_pixels=False)
    size = (header.display_window.height, header.display_window.width)
    if track_file:
        track = read_track_file(track_file, first, first + len(paths) - 1, size)
        if progress is not None:
            progress(len(paths))
        return track
    vectors = motion_vector_channels(header.channels, hero_view(paths[0])) if use_vectors else None

    def exclusion(k: int) -> np.ndarray | None:
        own = _alpha_excludes(paths[k], header.channels)
        given = exclude(k) if exclude is not None else None
        if own is None or given is None:
            return given if own is None else own
        return np.maximum(own, given)

    def excludes():
        for k in range(len(paths)):
            yield exclusion(k)

    def counted(items):
        for k, item in enumerate(items):
            if should_cancel is not None and should_cancel():
                from generation.engine.inpaint import Cancelled

                raise Cancelled(f"cancelled while tracking frame {k + 1} of {len(paths)}")
            yield item
            if progress is not None:
                progress(k + 1)

    if vectors is not None:

        def vector_frames():
            for path, ex in zip(paths, excludes(), strict=True):
                vec, valid, _ = frames._read_display(path, list(vectors.names))
                yield vec, valid, ex

        return track_from_vectors(counted(vector_frames()), vectors)
    if read_rgb is None:

        def read_rgb(path: str) -> np.ndarray:
            return frames.read_channels(path, ("R", "G", "B"), **(plate_colour or {}))

    read = read_rgb
    space: Future[_WorkSpace] = Future()  # frame 0's, which every other frame's preparation waits for

    def prepared(k: int) -> tuple[np.ndarray, np.ndarray]:
        """Frame k read, its luminance, exclusion, working image and mask: on the read pool, so the tracking
        thread only tracks."""
        try:
            luma = read(paths[k]) @ AP1_LUMA
            if k == 0:
                space.set_result(_WorkSpace.of(luma, work_size))
            return space.result().frame(luma, exclusion(k))
        except BaseException as error:
            if k == 0 and not space.done():
                space.set_exception(error)  # frames waiting for it fail too, not hang
            raise

    work = _read_ahead(prepared, list(range(len(paths))), depth=max(2, usable_cores()))
    return _estimate(counted(work), space.result, progress=None, should_cancel=None, refine=refine)


# --------------------------------------------------------------------------------------- carrying a card

MAX_CARD_GROWTH = 4.0  # per axis: how much bigger than a static shot's card the motion may make it


class CardTooBig(ValueError):
    """The shot's motion needs a card the model cannot fill (see :data:`MAX_CARD_GROWTH`)."""


def pixel_aspect(path: str) -> float:
    """A plate frame's PixelAspectRatio (1.0 when absent or nonsensical)."""
    import OpenImageIO as oiio

    inp = oiio.ImageInput.open(os.fspath(path))
    if inp is None:
        return 1.0
    try:
        value = inp.spec().getattribute("PixelAspectRatio")
    finally:
        inp.close()
    return float(value) if isinstance(value, int | float) and 0.05 < value < 20 else 1.0


def box_in_reference(matrix: np.ndarray, x0: float, y0: float, x1: float, y1: float) -> tuple[float, ...]:
    """The frame-0 bounding box of the frame-k box ``[x0, x1] × [y0, y1]`` (pixel edges), through
    ``inv(matrix)``. Raises :class:`CardTooBig` when the box reaches the homography's horizon."""
    inv = np.linalg.inv(matrix)
    corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], np.float64) - 0.5  # edges → centre coords
    w = corners @ inv[2, :2] + inv[2, 2]
    if (w <= 1e-6).any():
        raise CardTooBig("the matte reaches the camera track's horizon: no card can hold it")
    mapped = apply(inv, corners) + 0.5
    return float(mapped[:, 0].min()), float(mapped[:, 1].min()), float(mapped[:, 0].max()), float(mapped[:, 1].max())


def union_in_reference(boxes: Sequence[tuple[int, int, int, int] | None], track: CameraTrack) -> tuple[float, ...]:
    """Union, in frame-0 coordinates, of each frame's matte box ``(x, y, width, height)`` (None = empty)
    mapped through that frame's inverse matrix: everything the card must hold."""
    out = None
    for box, matrix in zip(boxes, track.matrices, strict=True):
        if box is None:
            continue
        x, y, w, h = box
        b = box_in_reference(matrix, x, y, x + w, y + h)
        out = b if out is None else (min(out[0], b[0]), min(out[1], b[1]), max(out[2], b[2]), max(out[3], b[3]))
    if out is None:
        raise ValueError("every frame's matte is empty: nothing to generate")
    return out


def check_card_growth(union: tuple[float, ...], first: tuple[float, ...], limit: float = MAX_CARD_GROWTH) -> None:
    """Refuse a shot whose card (``union``, frame-0 box) is more than ``limit`` times the first frame's
    own box per axis: the model's sample would be stretched that much thinner than on a still shot."""
    for axis, name in ((0, "wide"), (1, "tall")):
        need = union[axis + 2] - union[axis]
        own = max(first[axis + 2] - first[axis], 1.0)
        if need > limit * own:
            raise CardTooBig(
                f"the camera moves so far that the card would be {need / own:.1f}x as {name} as the region "
                f"(limit {limit:g}x): split the shot into shorter ranges or give a track file"
            )


def card_coordinates(
    matrix: np.ndarray, box: tuple[int, int, int, int], origin: tuple[float, float], scale: tuple[float, float]
) -> tuple[np.ndarray, np.ndarray]:
    """Card pixel coordinates (centre convention) sampled by the frame-k pixels of ``box`` (x, y, w, h):
    ``u, v`` (h, w) float64. The card's left/top edge is at frame-0 ``origin``; one card pixel is
    ``scale`` = (sx, sy) frame-0 pixels."""
    x, y, w, h = box
    inv = np.linalg.inv(matrix)
    xs, ys = np.meshgrid(np.arange(x, x + w, dtype=np.float64), np.arange(y, y + h, dtype=np.float64))
    den = inv[2, 0] * xs + inv[2, 1] * ys + inv[2, 2]
    qx = (inv[0, 0] * xs + inv[0, 1] * ys + inv[0, 2]) / den
    qy = (inv[1, 0] * xs + inv[1, 1] * ys + inv[1, 2]) / den
    return (qx + 0.5 - origin[0]) / scale[0] - 0.5, (qy + 0.5 - origin[1]) / scale[1] - 0.5


def _keys(t: np.ndarray) -> list[np.ndarray]:
    """Bicubic (Keys, a = -0.5) weights of the four taps at offsets -1..2 from floor."""
    return [
        ((-0.5 * t + 1.0) * t - 0.5) * t,
        (1.5 * t - 2.5) * t * t + 1.0,
        ((-1.5 * t + 2.0) * t + 0.5) * t,
        (0.5 * t - 0.5) * t * t,
    ]


def sample_bicubic(card: np.ndarray, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``card`` (h, w, C) float32 sampled at card coordinates ``u, v`` (edge-clamped Keys bicubic) and
    where the sample lies on the card (1.0) or beyond its edge (0.0): the coverage of those pixels."""
    ch, cw = card.shape[:2]
    u0, v0 = np.floor(u), np.floor(v)
    wu, wv = _keys((u - u0).astype(np.float32)), _keys((v - v0).astype(np.float32))
    ui = [np.clip(u0.astype(np.int64) + d, 0, cw - 1) for d in range(-1, 3)]
    vi = [np.clip(v0.astype(np.int64) + d, 0, ch - 1) for d in range(-1, 3)]
    out = np.zeros(u.shape + card.shape[2:], np.float32)
    for j in range(4):
        row = np.zeros_like(out)
        for i in range(4):
            row += card[vi[j], ui[i]] * wu[i][..., None]
        out += row * wv[j][..., None]
    covered = (u >= -0.5) & (u <= cw - 0.5) & (v >= -0.5) & (v <= ch - 0.5)
    return out, covered.astype(np.float32)


def sample_bilinear(img: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """(H, W) ``img`` at centre-convention coordinates ``x, y`` (any shape), 0 beyond the edge."""
    h, w = img.shape
    x0, y0 = np.floor(x).astype(np.int64), np.floor(y).astype(np.int64)
    fx, fy = (x - x0).astype(np.float32), (y - y0).astype(np.float32)
    out = np.zeros(x.shape, np.float32)
    for dy, wy in ((0, 1 - fy), (1, fy)):
        for dx, wx in ((0, 1 - fx), (1, fx)):
            xi, yi = x0 + dx, y0 + dy
            inside = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
            out += np.where(inside, img[np.clip(yi, 0, h - 1), np.clip(xi, 0, w - 1)], 0.0) * wx * wy
    return out


def generated_region(
    mattes: Iterable[np.ndarray],
    track: CameraTrack,
    origin: tuple[float, float],
    scale: tuple[float, float],
    model_hw: tuple[int, int],
) -> np.ndarray:
    """Where the card must be generated, (model_h, model_w) float32 in [0, 1]: the union over frames of
    each frame's matte (H, W) seen from card space, sampled at five points per card pixel (its centre
    and four quarter-pixel offsets) so a thin sliver of matte still marks its card pixel."""
    mh, mw = model_hw
    out = np.zeros((mh, mw), np.float32)
    jj, ii = np.meshgrid(np.arange(mw, dtype=np.float64), np.arange(mh, dtype=np.float64))
    for matte, matrix in zip(mattes, track.matrices, strict=True):
        for du, dv in ((0, 0), (-0.25, -0.25), (0.25, -0.25), (-0.25, 0.25), (0.25, 0.25)):
            qx = origin[0] + (jj + 0.5 + du) * scale[0] - 0.5  # card pixel → frame-0 centre coordinates
            qy = origin[1] + (ii + 0.5 + dv) * scale[1] - 0.5
            p = apply(matrix, np.stack([qx.ravel(), qy.ravel()], axis=1))
            seen = sample_bilinear(np.asarray(matte, np.float32), p[:, 0], p[:, 1]).reshape(mh, mw)
            np.maximum(out, seen, out=out)
    return np.clip(out, 0.0, 1.0)
