"""The shot's own roto model: a tiny CNN that learns, from the artist's key frames, to mend a carried matte.

Input per pixel: the plate's analysis colour (3), the matte carried there by flow (1) and its trust (1).
Output: a matte logit, added to the logit of the carried matte (so "keep what flow says" is the easy answer
and the network only learns where and how to correct it). It is trained on the key frames themselves, with
the carried matte replaced by what drift looks like: the other key frame carried across by flow (real drift
and occlusion) and random warps, erosions, dilations and blurs of the key matte. Like Nuke's CopyCat, the
model is the shot's, learned in seconds on a CPU; nothing is downloaded.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
import torch
from torch import nn

_LOGIT_CLAMP = 6.0


def logit(matte: np.ndarray) -> np.ndarray:
    """Clamped logit of a 0..1 matte (float32), the carried matte's voice in the network."""
    m = np.clip(matte, 1e-3, 1 - 1e-3)
    return np.clip(np.log(m / (1 - m)), -_LOGIT_CLAMP, _LOGIT_CLAMP).astype(np.float32)


class MatteMender(nn.Module):
    """Two-scale CNN (≈30 k parameters): full-size detail, quarter-size context with dilations (reach ≈ 120 px)."""

    def __init__(self, width: int = 16, context: int = 24) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(5, width, 3, padding=1), nn.ReLU())
        self.down = nn.Sequential(
            nn.Conv2d(width, width, 3, stride=2, padding=1),
            nn.ReLU(),
            nn.Conv2d(width, context, 3, stride=2, padding=1),
            nn.ReLU(),
        )
        layers: list[nn.Module] = []
        for dilation in (1, 2, 4, 8):
            layers += [nn.Conv2d(context, context, 3, padding=dilation, dilation=dilation), nn.ReLU()]
        self.context = nn.Sequential(*layers)
        self.tail = nn.Sequential(nn.Conv2d(width + context, width, 1), nn.ReLU(), nn.Conv2d(width, 1, 3, padding=1))
        nn.init.zeros_(self.tail[-1].weight)
        nn.init.zeros_(self.tail[-1].bias)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``x`` (N, 5, H, W): colour 0..1, carried matte logit / 6, trust. Returns the logit (N, 1, H, W)."""
        detail = self.head(x)
        context = self.context(self.down(detail))
        context = nn.functional.interpolate(context, size=x.shape[-2:], mode="bilinear", align_corners=False)
        return self.tail(torch.cat([detail, context], 1)) + x[:, 3:4] * _LOGIT_CLAMP


def features(image8: np.ndarray, carried: np.ndarray, trust: np.ndarray) -> np.ndarray:
    """(5, H, W) float32 network input from a uint8 analysis image, a carried matte and its trust."""
    colour = image8.astype(np.float32).transpose(2, 0, 1) / 255.0
    return np.concatenate([colour, logit(carried)[None] / _LOGIT_CLAMP, trust[None].astype(np.float32)])


@dataclass
class TrainingFrame:
    """One key frame to learn from: its analysis image, the artist's matte and what flow carried there."""

    image8: np.ndarray
    matte: np.ndarray
    carried: list[tuple[np.ndarray, np.ndarray]]  # (matte, trust) pairs flow delivered to this frame


def _disturb(matte: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    """What drift does to a matte: a small random affine move, then grow/shrink and softening."""
    h, w = matte.shape
    scale = max(h, w)
    angle = rng.uniform(-4, 4)
    zoom = rng.uniform(0.95, 1.05)
    m = cv2.getRotationMatrix2D((w / 2 + rng.uniform(-0.2, 0.2) * w, h / 2), angle, zoom)
    m[:, 2] += rng.uniform(-0.08, 0.08, 2) * scale
    out = cv2.warpAffine(matte, m, (w, h), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
    r = int(rng.integers(0, max(2, scale // 12)))
    if r:
        kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * r + 1, 2 * r + 1))
        out = cv2.dilate(out, kernel) if rng.random() < 0.5 else cv2.erode(out, kernel)
    if rng.random() < 0.5:
        out = cv2.GaussianBlur(out, (0, 0), rng.uniform(0.5, 2.5))
    trust = np.full_like(out, rng.uniform(0.3, 1.0))
    return out.astype(np.float32), trust.astype(np.float32)


def _edge_pixels(matte: np.ndarray) -> np.ndarray:
    hard = (matte > 0.5).astype(np.uint8)
    return np.argwhere(cv2.dilate(hard, np.ones((3, 3), np.uint8)) != cv2.erode(hard, np.ones((3, 3), np.uint8)))


def _crop_at(rng: np.random.Generator, shape: tuple[int, int], edge: np.ndarray, size: int) -> tuple[int, int]:
    """Top-left of a crop, centred on the key matte's edge three times in four (where mending matters)."""
    h, w = shape
    if edge.size and rng.random() < 0.75:
        cy, cx = edge[rng.integers(len(edge))]
    else:
        cy, cx = rng.integers(h), rng.integers(w)
    return int(np.clip(cy - size // 2, 0, max(0, h - size))), int(np.clip(cx - size // 2, 0, max(0, w - size)))


def _batch(frames: Sequence[TrainingFrame], edges: list[np.ndarray], rng: np.random.Generator, size: int, count: int):
    xs, ys = [], []
    for _ in range(count):
        i = int(rng.integers(len(frames)))
        frame = frames[i]
        y0, x0 = _crop_at(rng, frame.matte.shape, edges[i], size)
        sl = (slice(y0, y0 + size), slice(x0, x0 + size))
        pick = int(rng.integers(len(frame.carried) + 1))
        if pick < len(frame.carried):
            carried, trust = (c[sl] for c in frame.carried[pick])
        else:  # a disturbed crop of the key matte: drift the flow did not happen to show
            carried, trust = _disturb(np.ascontiguousarray(frame.matte[sl]), rng)
        xs.append(features(frame.image8[sl], carried, trust))
        ys.append(frame.matte[sl][None])
    return torch.from_numpy(np.stack(xs)), torch.from_numpy(np.stack(ys).astype(np.float32))


def train_mender(
    frames: Sequence[TrainingFrame],
    *,
    seed: int,
    steps: int = 150,
    crop: int = 96,
    batch: int = 4,
    device: str = "cpu",
) -> MatteMender:
    """A :class:`MatteMender` fitted to ``frames`` (key frames at proxy size); same inputs and seed, same model."""
    torch.manual_seed(seed)
    rng = np.random.default_rng(seed)
    model = MatteMender().to(device)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    crop = min(crop, *frames[0].matte.shape)
    crop -= crop % 2
    edges = [_edge_pixels(f.matte) for f in frames]
    for _ in range(steps):
        x, y = _batch(frames, edges, rng, crop, batch)
        loss = nn.functional.binary_cross_entropy_with_logits(model(x.to(device)), y.to(device))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    return model.eval()


MEND_REACH = 1 / 16  # of the frame's long side: how far from the carried edge the model may move it


@torch.no_grad()
def mend(model: MatteMender, image8: np.ndarray, carried: np.ndarray, trust: np.ndarray, device: str = "cpu"):
    """The model's matte (H, W) float32 0..1 for one frame (image8 uint8 (H, W, 3), carried and trust (H, W)).

    The model runs on the box around the carried matte's edge (grown by :data:`MEND_REACH`): drift moves
    edges by a few pixels, and a frame's far corners cost time without anything to mend. Outside the box the
    carried matte is kept; a frame with no edge at all is returned as carried.
    """
    h, w = carried.shape
    reach = max(8, round(max(h, w) * MEND_REACH))
    ys, xs = np.nonzero(np.abs(carried - 0.5) < 0.45)
    if ys.size == 0:
        return carried.astype(np.float32)
    y0, y1 = max(0, ys.min() - reach), min(h, ys.max() + reach + 1)
    x0, x1 = max(0, xs.min() - reach), min(w, xs.max() + reach + 1)
    box = (slice(y0, y1), slice(x0, x1))
    x = torch.from_numpy(features(image8[box], carried[box], trust[box]))[None].to(device)
    out = carried.astype(np.float32).copy()
    out[box] = torch.sigmoid(model(x))[0, 0].cpu().numpy()
    return out
