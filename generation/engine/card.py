"""The card: the one rectangle of pixels a variation generates, carried through the shot by the camera track.

Coordinates are frame-0 display-array pixels (x right, y down, (0, 0) the display window's corner). The
track is a :class:`camera.CameraTrack`: one 3×3 per frame taking frame-0 points to frame k, so a frame's
pixel ``p`` samples the card at ``inv(H_k) @ p`` (full transform: pans, zooms, rolls, perspective).
The card is made in square pixels: on an anamorphic plate (PixelAspectRatio ``par``) it is ``par`` times
narrower in plate pixels than the model's aspect says, and the model's pixels are desqueezed ones.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import numpy as np

from generation.engine import camera
from generation.engine.camera import CameraTrack
from generation.engine.frames import Window

Track = CameraTrack
_last_coordinates = threading.local()  # per thread: a frame's card coordinates, asked for by its look and its coverage


@dataclass(frozen=True)
class Card:
    """Where the generated card sits (display-array pixels) and the model's sample size it is made at."""

    x: int
    y: int
    width: int
    height: int
    model_h: int
    model_w: int

    @property
    def scale(self) -> tuple[float, float]:
        """Frame-0 pixels per model pixel, (x, y)."""
        return self.width / self.model_w, self.height / self.model_h

    def footprint(self, track: Track) -> Window:
        """Everywhere the card can be over the shot: the bounding box of its rectangle in every frame
        (may leave the frame)."""
        corners = (
            np.array(
                [
                    [self.x, self.y],
                    [self.x + self.width, self.y],
                    [self.x, self.y + self.height],
                    [self.x + self.width, self.y + self.height],
                ],
                np.float64,
            )
            - 0.5
        )
        seen = np.concatenate([camera.apply(m, corners) for m in track.matrices]) + 0.5
        x0, y0 = np.floor(seen.min(axis=0)).astype(int)
        x1, y1 = np.ceil(seen.max(axis=0)).astype(int)
        return Window(int(x0), int(y0), int(x1 - x0) + 1, int(y1 - y0) + 1)

    def coordinates(self, matrix: np.ndarray, box: Window) -> tuple[np.ndarray, np.ndarray]:
        """Model-pixel coordinates ``u, v`` ((h, w) float64) the frame pixels of ``box`` sample, for a frame
        whose track matrix is ``matrix`` (the caller must not write to them: the thread's last ones are
        handed out again to the next caller asking for the same)."""
        key = (self, np.asarray(matrix, np.float64).tobytes(), box)
        last = getattr(_last_coordinates, "value", None)
        if last is not None and last[0] == key:
            return last[1]
        uv = camera.card_coordinates(matrix, (box.x, box.y, box.width, box.height), (self.x, self.y), self.scale)
        _last_coordinates.value = (key, uv)
        return uv


def _box_of(window: Window | None) -> tuple[int, int, int, int] | None:
    return None if window is None else (window.x, window.y, window.width, window.height)


def card_geometry(
    boxes: list[Window | None],
    track: Track,
    sample_size: tuple[int, int],
    anchor: str = "bottom",
    context: float = 0.03,
    pixel_aspect: float = 1.0,
    max_growth: float = camera.MAX_CARD_GROWTH,
    slack: float = 0.0,
) -> Card:
    """The union of every frame's matte box (``boxes``, display-array pixels, None = empty) mapped into
    frame 0 through the track, a ``context`` margin (the plate the model sees around the region), grown
    to the model's aspect in square pixels about ``anchor``. Raises :class:`camera.CardTooBig` when the
    motion needs more than ``max_growth`` times the first frame's own box per axis: the model's one sample
    would be stretched that much thinner than on a locked-off shot, so the variation is refused rather
    than made soft or full of holes. ``slack``: pixels more on every side (a card made from a coarse track
    of some of the frames, :func:`track.quick_track`, holds what the frames between them need)."""
    x0, y0, x1, y1 = camera.union_in_reference([_box_of(b) for b in boxes], track)
    first = next(i for i, b in enumerate(boxes) if b is not None)
    own = camera.box_in_reference(track.matrices[first], *_edges(boxes[first]))
    camera.check_card_growth((x0, y0, x1, y1), own, max_growth)
    margin = context * max(x1 - x0, y1 - y0) + 2 + slack
    x0, x1, y0, y1 = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    mh, mw = sample_size
    w, h = (x1 - x0) * pixel_aspect, y1 - y0  # square pixels
    if w / h < mw / mh:
        w = h * mw / mh
    else:
        h = w * mh / mw
    w /= pixel_aspect  # back to plate pixels
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = int(np.ceil(w)), int(np.ceil(h))
    if anchor == "bottom":
        # Skies have their horizon at the bottom: a card grown taller than a wide matte keeps its
        # bottom on the matte's (the skyline) and grows upwards, out of frame if need be.
        top = int(np.floor(y1 - height))
    else:  # follow the region: grow evenly about its centre
        top = int(np.floor(cy - height / 2))
    return Card(int(np.floor(cx - width / 2)), top, width, height, mh, mw)


def _edges(box: Window) -> tuple[int, int, int, int]:
    return box.x, box.y, box.x + box.width, box.y + box.height


def crop(img: np.ndarray, card: Card) -> tuple[np.ndarray, np.ndarray]:
    """``img`` (H, W[, C]) over the card's rectangle as float32 (zero outside the frame) and where it was inside."""
    h, w = img.shape[:2]
    out = np.zeros((card.height, card.width) + img.shape[2:], np.float32)
    inside = np.zeros((card.height, card.width), np.float32)
    ix0, iy0 = max(card.x, 0), max(card.y, 0)
    ix1, iy1 = min(card.x + card.width, w), min(card.y + card.height, h)
    if ix1 > ix0 and iy1 > iy0:
        region = (slice(iy0 - card.y, iy1 - card.y), slice(ix0 - card.x, ix1 - card.x))
        out[region] = img[iy0:iy1, ix0:ix1]
        inside[region] = 1.0
    return out, inside


def crop_edge(img: np.ndarray, card: Card) -> np.ndarray:
    """``img`` over the card's rectangle, its edge pixels repeated outside the frame (float32)."""
    h, w = img.shape[:2]
    ys = np.clip(np.arange(card.y, card.y + card.height), 0, h - 1)
    xs = np.clip(np.arange(card.x, card.x + card.width), 0, w - 1)
    return np.ascontiguousarray(img[ys][:, xs], np.float32)


def cubic_taps(coords: np.ndarray, size: int) -> tuple[np.ndarray, np.ndarray]:
    """Bicubic (Keys, a=-0.5) taps for sampling positions ``coords``: edge-clamped indices and
    float32 weights, both (len(coords), 4)."""
    base = np.floor(coords).astype(np.int64)
    t = coords - base
    weights = np.stack(
        [
            ((-0.5 * t + 1.0) * t - 0.5) * t,
            (1.5 * t - 2.5) * t * t + 1.0,
            ((-1.5 * t + 2.0) * t + 0.5) * t,
            (0.5 * t - 0.5) * t * t,
        ],
        axis=1,
    )
    index = np.clip(base[:, None] + np.arange(-1, 3), 0, size - 1)
    return index, weights.astype(np.float32)


def sample_card(card_rgb: np.ndarray, card: Card, matrix: np.ndarray, box: Window) -> np.ndarray:
    """The card (``card_rgb``: (model_h, model_w, C) float32) seen by the frame whose track matrix is
    ``matrix``, over ``box`` (array coords): one bicubic resample from model to frame pixels, separable
    (cheap) when the frame's motion is a pure shift, else through the full inverse transform."""
    if _is_shift(matrix):
        return _sample_shifted(card_rgb, card, (float(matrix[0, 2]), float(matrix[1, 2])), box)
    u, v = card.coordinates(matrix, box)
    return camera.sample_bicubic(card_rgb, u, v)[0]


def _is_shift(matrix: np.ndarray) -> bool:
    return bool(np.allclose(matrix[:2, :2], np.eye(2), atol=1e-12) and np.allclose(matrix[2], (0, 0, 1), atol=1e-15))


def card_coverage(generated: np.ndarray, card: Card, matrix: np.ndarray, box: Window) -> np.ndarray:
    """How much generated content each frame pixel of ``box`` samples, (h, w) float32 in [0, 1]:
    ``generated`` ((model_h, model_w), 1 = the model drew it) bilinearly at the pixel's card position,
    0 beyond the card (separable, cheap, when the frame's motion is a pure shift)."""
    generated = np.asarray(generated, np.float32)
    if _is_shift(matrix):
        covered = np.clip(_coverage_shifted(generated, card, (float(matrix[0, 2]), float(matrix[1, 2])), box), 0, 1)
    else:
        u, v = card.coordinates(matrix, box)
        covered = np.clip(camera.sample_bilinear(generated, u, v), 0.0, 1.0)
    # Four weights that sum to 1 in float32 may not give exactly 1: a fully generated neighbourhood is 1.
    covered[covered > 1.0 - 1e-4] = 1.0
    return covered


def surely_covered(generated: np.ndarray, card: Card, matrix: np.ndarray, box: Window) -> np.ndarray:
    """Pixels of ``box`` ((h, w) bool) whose :func:`card_coverage` is 1 for certain, found without sampling:
    both bilinear taps each way land inside the card, on a 2 × 2 block of ``generated`` that is all ≥ 1 (the
    four weights then sum to 1 within float32 rounding, which :func:`card_coverage` counts as 1). A pixel it
    leaves out may still be covered; the caller samples those."""
    full = np.asarray(generated) >= 1.0
    mh, mw = full.shape
    if mh < 2 or mw < 2:
        return np.zeros((box.height, box.width), bool)
    block = full[:-1, :-1] & full[1:, :-1] & full[:-1, 1:] & full[1:, 1:]  # block (i, j): taps i, i+1 × j, j+1
    if _is_shift(matrix):
        sx, sy = card.scale
        shift = (float(matrix[0, 2]), float(matrix[1, 2]))
        u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
        v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
        bu, bv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
        ok_u, ok_v = (bu >= 0) & (bu < mw - 1), (bv >= 0) & (bv < mh - 1)
        rows = block[np.clip(bv, 0, mh - 2)] & ok_v[:, None]
        return np.take(rows, np.clip(bu, 0, mw - 2), axis=1) & ok_u[None, :]
    u, v = card.coordinates(matrix, box)
    bu, bv = np.floor(u).astype(np.int64), np.floor(v).astype(np.int64)
    inside = (bu >= 0) & (bu < mw - 1) & (bv >= 0) & (bv < mh - 1)
    return block[np.clip(bv, 0, mh - 2), np.clip(bu, 0, mw - 2)] & inside


def _bilinear_taps(coords: np.ndarray, size: int) -> list[tuple[np.ndarray, np.ndarray]]:
    """The two bilinear taps of sampling positions ``coords``: (index clamped to the card, float32 weight, 0
    where the tap is beyond the card's edge)."""
    base = np.floor(coords).astype(np.int64)
    frac = (coords - base).astype(np.float32)
    taps = []
    for d, weight in ((0, 1 - frac), (1, frac)):
        index = base + d
        taps.append((np.clip(index, 0, size - 1), np.where((index >= 0) & (index < size), weight, np.float32(0))))
    return taps


def _coverage_shifted(generated: np.ndarray, card: Card, shift: tuple[float, float], box: Window) -> np.ndarray:
    """:func:`camera.sample_bilinear` of ``generated`` for a pure shift: columns at model height, then rows."""
    sx, sy = card.scale
    u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
    v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
    cols = sum(generated[:, i] * w[None, :] for i, w in _bilinear_taps(u, card.model_w))
    return sum(cols[i] * w[:, None] for i, w in _bilinear_taps(v, card.model_h))


def _sample_shifted(card_rgb: np.ndarray, card: Card, shift: tuple[float, float], box: Window) -> np.ndarray:
    sx, sy = card.scale
    u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
    v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
    xi, xw = cubic_taps(u, card.model_w)
    yi, yw = cubic_taps(v, card.model_h)
    # Columns first at model height (cheap; only the model rows the taps reach), then four row taps at frame size.
    r0, r1 = int(yi.min()), int(yi.max()) + 1
    yi = yi - r0
    # Tap by tap, added in order: what summing the four taps' axis gives, to the bit.
    cols = card_rgb[r0:r1, xi[:, 0]] * xw[None, :, 0, None]  # (rows, width, C)
    for tap in range(1, 4):
        cols += card_rgb[r0:r1, xi[:, tap]] * xw[None, :, tap, None]
    cols = np.ascontiguousarray(cols)  # fancy indexing lays the width axis outermost; rows must be contiguous
    # Then the four row taps, a run of frame rows at a time: the card is magnified, so consecutive rows read the
    # same four model rows (only their weights differ) and a run's products and sums stay in the cache. The same
    # products, added in the same order, as the four whole-box taps: the same floats.
    h = len(yi)
    out = np.empty((h,) + cols.shape[1:], np.float32)
    starts = np.flatnonzero(np.r_[True, (yi[1:] != yi[:-1]).any(axis=1)]).tolist() + [h]
    run = max(1, _RUN_FLOATS // max(1, cols[0].size))  # rows a piece: about 384 KB of them, in L2
    scratch = np.empty((min(h, run),) + cols.shape[1:], np.float32)
    for a, b in zip(starts[:-1], starts[1:], strict=True):
        taps = yi[a]
        for lo in range(a, b, run):  # a long run in cache-sized pieces
            hi = min(b, lo + run)
            rows, tmp = out[lo:hi], scratch[: hi - lo]
            np.multiply(cols[taps[0]], yw[lo:hi, 0, None, None], out=rows)
            for tap in range(1, 4):
                np.multiply(cols[taps[tap]], yw[lo:hi, tap, None, None], out=tmp)
                rows += tmp
    return out


_RUN_FLOATS = 98_304  # floats of the card sample worked at once (384 KB: 16 rows of a 2K RGB frame)
