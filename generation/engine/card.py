"""The card: the one rectangle of pixels a variation generates, carried through the shot by the camera track.

Coordinates are frame-0 display-array pixels (x right, y down, (0, 0) the display window's corner).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from generation.engine.frames import Window

Track = list[tuple[float, float]]  # cumulative camera shift per frame index, pixels


@dataclass(frozen=True)
class Card:
    """Where the generated card sits (display-array pixels) and the model's sample size it is made at."""

    x: int
    y: int
    width: int
    height: int
    model_h: int
    model_w: int

    def footprint(self, track: Track) -> Window:
        """Everywhere the card can be over the shot: its rectangle swept along the track (may leave the frame)."""
        tx, ty = [t[0] for t in track], [t[1] for t in track]
        return Window(
            int(np.floor(self.x + min(tx))),
            int(np.floor(self.y + min(ty))),
            int(np.ceil(self.width + max(tx) - min(tx))) + 1,
            int(np.ceil(self.height + max(ty) - min(ty))) + 1,
        )


def card_geometry(
    bbox: Window,
    track: Track,
    sample_size: tuple[int, int],
    anchor: str = "bottom",
    context: float = 0.03,
) -> Card:
    """The first frame's matte box plus everything the pan brings into it, a ``context`` margin (the
    plate the model sees around the region), grown to the model's aspect about ``anchor``."""
    tx = [t[0] for t in track]
    ty = [t[1] for t in track]
    # A screen-fixed region sees world x - t; a matte that travels with the plate stays inside.
    x0, x1 = bbox.x - max(tx), bbox.x + bbox.width - min(tx)
    y0, y1 = bbox.y - max(ty), bbox.y + bbox.height - min(ty)
    margin = context * max(x1 - x0, y1 - y0) + 2
    x0, x1, y0, y1 = x0 - margin, x1 + margin, y0 - margin, y1 + margin
    mh, mw = sample_size
    w, h = x1 - x0, y1 - y0
    if w / h < mw / mh:
        w = h * mw / mh
    else:
        h = w * mh / mw
    cx, cy = (x0 + x1) / 2, (y0 + y1) / 2
    width, height = int(np.ceil(w)), int(np.ceil(h))
    if anchor == "bottom":
        # Skies have their horizon at the bottom: a card grown taller than a wide matte keeps its
        # bottom on the matte's (the skyline) and grows upwards, out of frame if need be.
        top = int(np.floor(y1 - height))
    else:  # follow the region: grow evenly about its centre
        top = int(np.floor(cy - height / 2))
    return Card(int(np.floor(cx - width / 2)), top, width, height, mh, mw)


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


def sample_card(card_rgb: np.ndarray, card: Card, shift: tuple[float, float], box: Window) -> np.ndarray:
    """The card (``card_rgb``: (model_h, model_w, 3) float32) seen by a frame whose content moved by
    ``shift``, over ``box`` (array coords): one separable bicubic resample from model to frame pixels."""
    sx, sy = card.width / card.model_w, card.height / card.model_h
    u = (np.arange(box.x, box.x + box.width) + 0.5 - shift[0] - card.x) / sx - 0.5
    v = (np.arange(box.y, box.y + box.height) + 0.5 - shift[1] - card.y) / sy - 0.5
    xi, xw = cubic_taps(u, card.model_w)
    yi, yw = cubic_taps(v, card.model_h)
    # Columns first at model height (cheap), then four row taps at frame size.
    cols = card_rgb[:, xi] * xw[None, :, :, None]  # (model_h, width, 4, 3)
    cols = cols.sum(axis=2)
    out = cols[yi[:, 0]] * yw[:, 0, None, None]
    for tap in range(1, 4):
        out += cols[yi[:, tap]] * yw[:, tap, None, None]
    return out
