"""The show upscaler: a small residual CNN over a bicubic base, ×2 and ×4, trained on the show's own plates.

Studio practice is degrain → work → regrain at delivery resolution, so the upscaler never sees grain: it is trained
(:mod:`generation.engine.upscale_training`) on degrained, downscaled plates against the originals, and the
finishing stage regrains its output with the plate's profile (:mod:`generation.engine.grain`).

The network (ESPCN/FSRCNN-like) works in the card's ``colour_encoding`` (ACEScct: a log encoding, so shadows and
highlights weigh alike): a 5×5 head, ``layers`` 3×3 convolutions with PReLU, and one sub-pixel (pixel-shuffle) tail
per factor whose output is added to a bicubic upscale of the input. One body serves both factors.

A model directory holds ``upscaler.safetensors`` and the card ``parallel_track.json``::

    {"name": "...", "kind": "upscaler", "factors": [2, 4], "colour_encoding": "ACEScct", "working_space": "ACEScg",
     "architecture": {"features": 32, "layers": 4}, "created_by": "...",
     "training_manifest": {"files": [{"path", "sha256", "licence"}], "recipe": {...}}}

No Django here. Pixels in and out are float32 (H, W, 3) scene-linear ``working_space``; device and dtype are
explicit (float16 on CUDA, float32 on CPU: see :func:`generation.engine.device.pick_dtype`).
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import OpenImageIO as oiio
import torch
import torch.nn.functional as F
from torch import nn

from generation.engine import colour, frames, registry
from generation.engine.device import pick_dtype

WEIGHTS_NAME = "upscaler.safetensors"
FACTORS = (2, 4)
SOURCE_SPACE_8BIT = "sRGB - Texture"  # what a JPEG/PNG frame holds (its name in every built-in ACES config)


class UpscaleError(ValueError):
    """An upscaler directory, card or input that cannot be used."""


@dataclass(frozen=True)
class UpscalerCard:
    path: str
    name: str
    factors: tuple[int, ...]
    colour_encoding: str
    working_space: str
    features: int
    layers: int
    manifest: dict
    manifest_hash: str
    created_by: str = ""
    kind: str = "upscaler"


class ShowUpscaler(nn.Module):
    """(B, 3, h, w) encoded input → (B, 3, h·f, w·f) encoded output for f in ``factors``."""

    def __init__(self, features: int = 32, layers: int = 4, factors: tuple[int, ...] = FACTORS) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Conv2d(3, features, 5, padding=2), nn.PReLU(features))
        body: list[nn.Module] = []
        for _ in range(layers):
            body += [nn.Conv2d(features, features, 3, padding=1), nn.PReLU(features)]
        self.body = nn.Sequential(*body)
        self.tails = nn.ModuleDict({str(f): nn.Conv2d(features, 3 * f * f, 3, padding=1) for f in factors})
        for tail in self.tails.values():  # start as the bicubic base: the residual begins at zero
            nn.init.zeros_(tail.weight)
            nn.init.zeros_(tail.bias)

    def forward(self, low: torch.Tensor, factor: int) -> torch.Tensor:
        if str(factor) not in self.tails:
            raise UpscaleError(f"this upscaler does ×{', ×'.join(self.tails)}, not ×{factor}")
        features = self.head(low)
        features = features + self.body(features)
        residual = F.pixel_shuffle(self.tails[str(factor)](features), factor)
        base = F.interpolate(low, scale_factor=factor, mode="bicubic", align_corners=False)
        return base + residual


# ------------------------------------------------------------------------------------------ card, load


def _card_json(card_path: Path) -> dict:
    """The card's JSON object, or UpscaleError saying why not (missing, unreadable, not an upscaler)."""
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise UpscaleError(f"{card_path.parent} has no {card_path.name} model card") from None
    except (OSError, ValueError) as exc:
        raise UpscaleError(f"{card_path}: unreadable model card ({exc})") from None
    kind = raw.get("kind") if isinstance(raw, dict) else None
    if kind != "upscaler":
        raise UpscaleError(f"{card_path}: a {kind!r} model card, not an upscaler's")
    return raw


def read_upscaler_card(path: str | os.PathLike) -> UpscalerCard:
    """Read and validate ``<path>/parallel_track.json`` of an upscaler; UpscaleError on anything unusable."""
    root = Path(path)
    card_path = root / registry.CARD_NAME
    raw = _card_json(card_path)
    factors, arch = raw.get("factors"), raw.get("architecture") or {}
    if not isinstance(factors, list) or not factors or not all(f in FACTORS for f in factors):
        raise UpscaleError(f"{card_path}: 'factors' must be a list drawn from {list(FACTORS)}")
    if not all(isinstance(arch.get(k), int) and arch[k] > 0 for k in ("features", "layers")):
        raise UpscaleError(f"{card_path}: 'architecture' needs positive integers 'features' and 'layers'")
    try:
        registry._check_manifest(raw.get("training_manifest"), card_path)
    except registry.ModelError as exc:
        raise UpscaleError(str(exc)) from None
    if not (root / WEIGHTS_NAME).is_file():
        raise UpscaleError(f"{root} has no {WEIGHTS_NAME}; models load only from local directories")
    return UpscalerCard(
        path=str(root.resolve()), name=str(raw.get("name") or root.name), factors=tuple(factors),
        colour_encoding=str(raw.get("colour_encoding", "ACEScct")), working_space=str(raw.get("working_space", "ACEScg")),
        features=arch["features"], layers=arch["layers"], manifest=raw["training_manifest"],
        manifest_hash=registry.manifest_hash(raw["training_manifest"]), created_by=str(raw.get("created_by", "")),
    )


def load_upscaler(path: str | os.PathLike, device: torch.device, dtype: torch.dtype) -> tuple[ShowUpscaler, UpscalerCard]:
    """``(network, card)`` from a local upscaler directory, in eval mode on ``device`` in ``dtype`` (cached)."""
    from safetensors.torch import load_file

    card = read_upscaler_card(path)

    def load() -> tuple:
        net = ShowUpscaler(card.features, card.layers, card.factors)
        try:
            net.load_state_dict({k: v.float() for k, v in load_file(str(Path(card.path) / WEIGHTS_NAME)).items()})
        except (OSError, RuntimeError) as exc:
            raise UpscaleError(f"{card.path}: weights do not fit the card's architecture ({exc})") from None
        net = net.to(device=device, dtype=dtype).eval()
        net.requires_grad_(False)
        return net, card

    stamp = registry.ModelCard(card.path, card.name, "upscaler", (0, 0), card.colour_encoding, card.manifest,
                               card.manifest_hash)
    return registry.cached_load(stamp, torch.device(device), dtype, load)


# ------------------------------------------------------------------------------------------ pixels


def read_plate_rgb(path: str | os.PathLike, *, config_name: str | None = None) -> np.ndarray:
    """A frame as float32 (H, W, 3) scene-linear ACEScg: an EXR as it is (plates are ACEScg), an 8-bit frame
    (JPEG, PNG: sRGB-encoded Rec.709) decoded through OpenImageIO and converted through OpenColorIO."""
    path = os.fspath(path)
    if path.lower().endswith(".exr"):
        rgba, _ = frames.read_rgba(path)
        return np.ascontiguousarray(np.nan_to_num(rgba[..., :3], nan=0.0, posinf=0.0, neginf=0.0))
    buf = oiio.ImageBuf(path)
    if buf.has_error or buf.nchannels < 3:
        raise frames.FrameError(path, buf.geterror() or f"{buf.nchannels} channel(s); an RGB frame is needed")
    pixels = np.asarray(buf.get_pixels(oiio.FLOAT), np.float32)[..., :3]
    return colour.convert(np.ascontiguousarray(pixels), SOURCE_SPACE_8BIT, "ACEScg", config_name=config_name)


def lanczos(pixels: np.ndarray, width: int, height: int) -> np.ndarray:
    """OpenImageIO Lanczos-3 resize of float32 (H, W, C) to (height, width, C)."""
    src = np.ascontiguousarray(pixels, np.float32)
    h, w, c = src.shape
    buf = oiio.ImageBuf(oiio.ImageSpec(w, h, c, "float"))
    buf.set_pixels(oiio.ROI(0, w, 0, h, 0, 1, 0, c), src)
    out = oiio.ImageBufAlgo.resize(buf, filtername="lanczos3", roi=oiio.ROI(0, width, 0, height, 0, 1, 0, c))
    if out.has_error:
        raise UpscaleError(f"resize failed: {out.geterror()}")
    return np.asarray(out.get_pixels(oiio.FLOAT), np.float32).reshape(height, width, c)


def encode(rgb: np.ndarray, card: UpscalerCard, config_name: str | None = None) -> np.ndarray:
    return colour.convert(np.ascontiguousarray(rgb, np.float32), card.working_space, card.colour_encoding,
                          config_name=config_name)


def decode(encoded: np.ndarray, card: UpscalerCard, config_name: str | None = None) -> np.ndarray:
    return colour.convert(np.ascontiguousarray(encoded, np.float32), card.colour_encoding, card.working_space,
                          config_name=config_name)


def upscale(
    rgb: np.ndarray,
    model_dir: str | os.PathLike,
    *,
    factor: int,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    config_name: str | None = None,
    ensemble: bool = False,
) -> np.ndarray:
    """Upscale float32 (H, W, 3) scene-linear RGB by ``factor`` (one the card lists) with the show upscaler:
    float32 (H·factor, W·factor, 3) scene-linear. ``dtype`` None: float16 on CUDA, float32 on the CPU.
    ``ensemble``: the mean of the eight flips and transposes of the input, each undone on the output (×8 the cost).
    Deterministic for a device and thread count."""
    rgb = np.asarray(rgb, np.float32)
    if rgb.ndim != 3 or rgb.shape[2] != 3:
        raise UpscaleError(f"upscale needs (H, W, 3) RGB, got {rgb.shape}")
    device = torch.device(device)
    dtype = dtype or pick_dtype(device)
    net, card = load_upscaler(model_dir, device, dtype)
    if factor not in card.factors:
        raise UpscaleError(f"{card.name} does ×{', ×'.join(map(str, card.factors))}, not ×{factor}")
    low = torch.from_numpy(encode(rgb, card, config_name).transpose(2, 0, 1).copy())[None]
    with torch.inference_mode():
        low = low.to(device=device, dtype=dtype)
        if not ensemble:
            high = net(low, factor).float().cpu()[0]
        else:
            high = sum(_undo(net(_view(low, k), factor).float(), k) for k in range(8)).cpu()[0] / 8
    return decode(high.numpy().transpose(1, 2, 0), card, config_name)


def _view(x: torch.Tensor, k: int) -> torch.Tensor:
    """The k-th of the eight flips/transposes of (B, C, H, W) (k = 0: itself)."""
    if k & 4:
        x = x.transpose(-1, -2)
    if k & 2:
        x = x.flip(-2)
    if k & 1:
        x = x.flip(-1)
    return x


def _undo(x: torch.Tensor, k: int) -> torch.Tensor:
    if k & 1:
        x = x.flip(-1)
    if k & 2:
        x = x.flip(-2)
    if k & 4:
        x = x.transpose(-1, -2)
    return x


def upscale_to(
    rgb: np.ndarray,
    width: int,
    height: int,
    model_dir: str | os.PathLike | None,
    *,
    device: torch.device | str = "cpu",
    dtype: torch.dtype | None = None,
    config_name: str | None = None,
) -> np.ndarray:
    """float32 (H, W, 3) scene-linear to (height, width, 3): the show upscaler's largest factor that does not
    overshoot, then Lanczos-3 the rest of the way (Lanczos alone without a model, or when no factor fits)."""
    rgb = np.asarray(rgb, np.float32)
    if model_dir is not None:
        card = read_upscaler_card(model_dir)
        need = min(width / rgb.shape[1], height / rgb.shape[0])
        fitting = [f for f in sorted(card.factors) if f <= need + 1e-6]
        if fitting:
            rgb = upscale(rgb, model_dir, factor=fitting[-1], device=device, dtype=dtype, config_name=config_name)
    if rgb.shape[:2] == (height, width):
        return rgb
    return lanczos(rgb, width, height)
