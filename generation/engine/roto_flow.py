"""Dense optical flow through a shot and matte propagation along it (OpenCV DIS), numpy in and out.

Flow fields are float arrays shaped (H, W, 2) holding ``(dx, dy)`` in pixels at the shot's proxy size:
``forward[t]`` maps frame t to t + 1 (a pixel x of t lands at ``x + forward[t](x)`` in t + 1) and
``backward[t]`` maps frame t + 1 back to t. Occlusion comes from forward/backward consistency
(Sundaram, Brox, Keutzer, "Dense point trajectories by GPU-accelerated large displacement optical flow",
ECCV 2010): a pixel whose round trip does not come home was hidden or revealed between the two frames.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import cv2
import numpy as np

# Sundaram et al.'s consistency test: |f + b|² ≤ 0.01 (|f|² + |b|²) + 0.5 (pixels²).
_CONSISTENCY_RATIO = 0.01
_CONSISTENCY_FLOOR = 0.5
# Each step along a chain of flows loses a little trust even where the round trip agrees (sub-pixel drift).
STEP_TRUST = 0.97
# Photometric agreement of a carried pixel with its source in the key frame: mean |RGB difference| (0..255)
# over a neighbourhood of PHOTO_SIGMA px; full trust up to half the tolerance, none beyond it.
PHOTO_TOLERANCE = 40.0
PHOTO_SIGMA = 2.0
# Relit comparison (``relight``): the source's colour is first scaled by the ratio of the two frames' local
# brightness (luma blurred over RELIGHT_SIGMA of the long side), so a shadow, a cloud or a reflection sliding
# over the object changes what is compared no more than the light does. Hue and local contrast still count.
RELIGHT_SIGMA = 1 / 100


def _dis() -> cv2.DISOpticalFlow:
    # MEDIUM: the preset whose accuracy DIS's authors recommend for video (Kroeger et al., ECCV 2016).
    return cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)


def grey(image8: np.ndarray) -> np.ndarray:
    """Rec. 709 luma of an (H, W, 3) uint8 analysis image, uint8 (H, W), as DIS wants it."""
    weights = np.array([0.2126, 0.7152, 0.0722], np.float32)
    return np.clip(image8.astype(np.float32) @ weights + 0.5, 0, 255).astype(np.uint8)


@functools.lru_cache(maxsize=4)
def _grid(h: int, w: int) -> tuple[np.ndarray, np.ndarray]:
    xs = np.broadcast_to(np.arange(w, dtype=np.float32), (h, w))
    ys = np.broadcast_to(np.arange(h, dtype=np.float32)[:, None], (h, w))
    return xs, ys


def warp(image: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``image`` (H, W[, C]) float32 sampled at ``x + flow(x)`` (bilinear, edges repeated)."""
    h, w = flow.shape[:2]
    xs, ys = _grid(h, w)
    flow = flow.astype(np.float32)
    return cv2.remap(image, xs + flow[..., 0], ys + flow[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def consistency(there: np.ndarray, back: np.ndarray) -> np.ndarray:
    """Float32 (H, W) 1 where ``back`` (frame B → A) and ``there`` (A → B) agree at B's pixels, else 0."""
    there_at = warp(there.astype(np.float32), back)
    back = back.astype(np.float32)
    tx, ty, bx, by = there_at[..., 0], there_at[..., 1], back[..., 0], back[..., 1]
    err = (tx + bx) ** 2 + (ty + by) ** 2
    bound = _CONSISTENCY_RATIO * (tx * tx + ty * ty + bx * bx + by * by) + _CONSISTENCY_FLOOR
    return (err <= bound).astype(np.float32)


@dataclass
class ShotFlow:
    """Forward and backward DIS flow between every pair of neighbouring frames, with their trust maps.

    ``trust_fwd[t]`` (float16 (H, W), 0..1) is the trust of frame t + 1's pixels when a matte is carried
    from t to t + 1; ``trust_bwd[t]`` the trust of frame t's pixels when carried back from t + 1.
    """

    forward: list[np.ndarray]
    backward: list[np.ndarray]
    trust_fwd: list[np.ndarray]
    trust_bwd: list[np.ndarray]

    @classmethod
    def compute(cls, images8: Sequence[np.ndarray], progress: Callable[[int, int], None] | None = None) -> ShotFlow:
        """Flow through ``images8`` (a sequence of (H, W, 3) uint8 analysis images at proxy size)."""
        dis = _dis()
        greys = [grey(im) for im in images8]
        fwd, bwd, tf, tb = [], [], [], []
        for t in range(len(greys) - 1):
            f = dis.calc(greys[t], greys[t + 1], None)
            b = dis.calc(greys[t + 1], greys[t], None)
            tf.append(consistency(f, b).astype(np.float16))
            tb.append(consistency(b, f).astype(np.float16))
            fwd.append(f.astype(np.float16))
            bwd.append(b.astype(np.float16))
            if progress:
                progress(t + 1, len(greys) - 1)
        return cls(fwd, bwd, tf, tb)

    def step(self, matte: np.ndarray, trust: np.ndarray, t: int, direction: int) -> tuple[np.ndarray, np.ndarray]:
        """Carry ``matte`` and ``trust`` (float32 (H, W)) from frame t to t + direction (±1)."""
        if direction > 0:
            flow, seen = self.backward[t], self.trust_fwd[t]
        else:
            flow, seen = self.forward[t - 1], self.trust_bwd[t - 1]
        moved = warp(np.stack([matte, trust], -1), flow)
        return moved[..., 0], moved[..., 1] * seen.astype(np.float32) * STEP_TRUST


def propagate(flow: ShotFlow, matte: np.ndarray, start: int, stop: int) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Mattes and trust maps carried from frame ``start`` to each frame up to ``stop`` (exclusive), in order.

    ``matte`` is float32 (H, W) 0..1 at proxy size; ``stop`` may lie before ``start`` (backward in time).
    """
    direction = 1 if stop > start else -1
    current, trust = matte.astype(np.float32), np.ones_like(matte, np.float32)
    mattes, trusts = [], []
    for t in range(start, stop - direction, direction):
        current, trust = flow.step(current, trust, t, direction)
        mattes.append(current)
        trusts.append(trust)
    return mattes, trusts


def carry(
    flow: ShotFlow,
    matte: np.ndarray,
    start: int,
    stop: int,
    images: Sequence[np.ndarray] | None = None,
    relight: bool = False,
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """:func:`propagate` by accumulated warps: each frame samples the key matte once, at where its pixels came from.

    :func:`propagate` resamples the carried matte at every step, so over tens of frames bilinear resampling
    blurs it and thin parts (limbs, lines, a kite's edge) melt away below 0.5. Here the *positions* are carried
    instead (a pixel of frame t + 1 looks up where its source pixel in t came from in the key frame), and the
    key matte is sampled once per frame at those positions: the matte stays as sharp as the artist drew it.
    Trust is carried the same way (the product of each step's consistency along the path, fading per step).

    ``images`` (the shot's (H, W, 3) uint8 proxies, indexed like the flow): when given, each frame's trust is
    also multiplied by :func:`photometric` agreement between the frame and the key frame at the carried
    positions, so a pixel the flow dragged along with the object (background between legs, revealed behind
    it) but that does not look like where it claims to come from is not trusted; ``relight``: compared as
    :func:`photometric` says, with the light's change taken out.
    """
    direction = 1 if stop > start else -1
    h, w = matte.shape
    xs, ys = _grid(h, w)
    where = np.stack([xs, ys], -1).astype(np.float32)  # per pixel: its position in the key frame
    key = matte.astype(np.float32)
    trust = np.ones_like(key)
    mattes, trusts = [], []
    for t in range(start, stop - direction, direction):
        if direction > 0:
            step, seen = flow.backward[t], flow.trust_fwd[t]
        else:
            step, seen = flow.forward[t - 1], flow.trust_bwd[t - 1]
        moved = warp(np.concatenate([where, trust[..., None]], -1), step)
        where, trust = moved[..., :2], moved[..., 2] * seen.astype(np.float32) * STEP_TRUST
        mattes.append(cv2.remap(key, where[..., 0], where[..., 1], cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE))
        if images is None:
            trusts.append(trust)
        else:
            trusts.append(trust * photometric(images[start], images[t + direction], where, relight))
    return mattes, trusts


def _local_luma(image: np.ndarray) -> np.ndarray:
    sigma = RELIGHT_SIGMA * max(image.shape[:2])
    return cv2.GaussianBlur(grey(image).astype(np.float32), (0, 0), sigma)


def photometric(key_image: np.ndarray, image: np.ndarray, where: np.ndarray, relight: bool = False) -> np.ndarray:
    """Float32 (H, W) 0..1: how well ``image``'s pixels match ``key_image`` sampled at ``where`` (their carried
    positions in the key frame), on a small neighbourhood; 1 for a match, falling to 0 past :data:`PHOTO_TOLERANCE`.

    ``relight``: the key frame's colour is first scaled by the local brightness ratio of the two frames (see
    :data:`RELIGHT_SIGMA`), so a pixel whose light changed but whose colour relative to its surroundings did
    not still matches.
    """
    xs, ys = where[..., 0], where[..., 1]
    source = cv2.remap(key_image.astype(np.float32), xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    if relight:
        lit = cv2.remap(_local_luma(key_image), xs, ys, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        source *= ((_local_luma(image) + 1.0) / (lit + 1.0))[..., None]
    diff = np.abs(source - image.astype(np.float32)).mean(-1)
    diff = cv2.GaussianBlur(diff, (0, 0), PHOTO_SIGMA)
    return np.clip(1.0 - (diff - PHOTO_TOLERANCE / 2) / (PHOTO_TOLERANCE / 2), 0.0, 1.0).astype(np.float32)
