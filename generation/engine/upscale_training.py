"""Train the show upscaler on the show's own plates, self-supervised: degrained, downscaled plates in, the
originals out.

The recipe:

- Data: every frame given (a folder, searched recursively, a ``####`` pattern or a glob), read as scene-linear
  ACEScg (:func:`upscale.read_plate_rgb`), the grain of each plate (the frames of one folder) measured
  (:func:`grain.measure_grain`) and removed (:func:`grain.degrain`), then box-downscaled ×2 and ×4; the target is
  the original frame, all in the card's log encoding (ACEScct). The manifest lists every source frame with its
  sha256 and licence.
- Per step: ``batch_size`` random ``patch``-pixel crops (aligned to 4 so the ×2 and ×4 inputs line up; a
  ``detail_share`` of them drawn where a bicubic ×4 upscale misses most, the rest uniformly), a random flip; the
  ``loss`` (L1, or Charbonnier: a smooth L1) of the ×4 output and of the ×2 output (on ``x2_share`` of the batch)
  summed; Adam with a warm-up and a cosine decay, the gradient norm clipped to ``clip_grad`` when set; an EMA of
  the weights is kept and saved.
- Checkpoints (the show model's, :mod:`generation.engine.training`) every ``checkpoint_every`` steps; a run
  resumes from the newest automatically and continues as if never stopped (same thread count, CPU).

No Django: paths in, a model directory and an :class:`upscale.UpscalerCard` out; progress through
``on_progress(step, steps, loss)``, ``should_stop()`` polled before every step.
"""

from __future__ import annotations

import glob
import json
import math
import os
import shutil
import time
from collections import defaultdict
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from generation.engine import colour, frames, grain, registry, training
from generation.engine.device import pick_device
from generation.engine.sequence import frame_path, glob_frames
from generation.engine.training import TrainingError, TrainingStopped
from generation.engine.upscale import (
    FACTORS,
    WEIGHTS_NAME,
    ShowUpscaler,
    UpscalerCard,
    read_plate_rgb,
    read_upscaler_card,
)

FRAME_SUFFIXES = (".exr", ".png", ".jpg", ".jpeg", ".tif", ".tiff")
PROFILE_FRAMES = 4  # frames of each plate the grain is measured on
LOSSES = ("l1", "charbonnier")
CHARBONNIER_EPS = 1e-3


@dataclass
class UpscalerConfig:
    """What to train on, where, and how (defaults: a 60 k-parameter network, a few minutes on one core)."""

    plates: list[str]
    out_dir: str
    name: str = "show-upscaler"
    steps: int = 2000
    batch_size: int = 16
    patch: int = 64
    lr: float = 2e-3
    seed: int = 0
    features: int = 32
    layers: int = 4
    checkpoint_every: int = 250
    keep_checkpoints: int = 2
    ema_decay: float = 0.995
    loss: str = "l1"
    detail_share: float = 0.5
    x2_share: float = 0.25
    clip_grad: float = 0.0
    device: str = "cpu"
    threads: int = 0
    resume: bool = True
    licence: str = "show plate"
    created_by: str = "train_upscaler"
    colour_encoding: str = "ACEScct"
    config_name: str | None = None
    extra: dict = field(default_factory=dict)

    def check(self) -> None:
        for name in ("steps", "batch_size", "patch", "features", "layers", "checkpoint_every", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainingError(f"{name} must be a positive integer, got {value!r}")
        if self.patch % 4 or self.patch < 16:
            raise TrainingError(f"patch must be a multiple of 4, at least 16, not {self.patch}")
        if not self.lr > 0 or not 0 <= self.ema_decay < 1:
            raise TrainingError("lr must be > 0 and ema_decay in [0, 1)")
        if self.loss not in LOSSES:
            raise TrainingError(f"loss must be one of {', '.join(LOSSES)}, not {self.loss!r}")
        if not 0 <= self.detail_share <= 1 or not 0 < self.x2_share <= 1 or self.clip_grad < 0:
            raise TrainingError("detail_share must be in [0, 1], x2_share in (0, 1] and clip_grad >= 0")
        if not self.licence.strip():
            raise TrainingError("every training frame needs a licence or approval reference")

    def recipe(self) -> dict:
        """Everything that decides the weights (not where they are written, nor the thread count)."""
        keep = ("batch_size", "patch", "lr", "seed", "features", "layers", "ema_decay", "colour_encoding", "loss",
                "x2_share")
        recipe = {k: v for k, v in asdict(self).items() if k in keep} | {"factors": list(FACTORS)}
        for name in ("detail_share", "clip_grad"):  # absent when off: recipes (and checkpoints) from before match
            if getattr(self, name):
                recipe[name] = getattr(self, name)
        return recipe


def collect_plates(spec: str | os.PathLike) -> list[str]:
    """Frame files named by ``spec``: a folder (every frame in it and below), a ``####`` pattern or a glob.
    Sorted; TrainingError when nothing matches."""
    text = os.fspath(spec)
    if os.path.isdir(text):
        found = [str(p) for p in sorted(Path(text).rglob("*")) if p.suffix.lower() in FRAME_SUFFIXES and p.is_file()]
    elif "#" in text or "%0" in text:
        found = [frame_path(text, f) for f in glob_frames(text)]
    else:
        found = sorted(p for p in glob.glob(text, recursive=True) if p.lower().endswith(FRAME_SUFFIXES))
    if not found:
        raise TrainingError(f"no frames found for {text!r} (a folder, a #### pattern or a glob of EXR/PNG/JPEG)")
    return found


def training_manifest(paths: list[str], config: UpscalerConfig) -> dict:
    """Every source frame (path relative to their common folder, sha256, licence) and the recipe."""
    root = os.path.commonpath([os.path.dirname(os.path.abspath(p)) for p in paths])
    return {
        "files": [{"path": os.path.relpath(os.path.abspath(p), root), "sha256": training._sha256(p),
                   "licence": config.licence} for p in paths],
        "recipe": config.recipe() | {"steps": config.steps},
    }


@dataclass
class _Plates:
    high: list[torch.Tensor]  # (3, H, W) encoded originals, H and W multiples of 4
    low: dict[int, list[torch.Tensor]]  # factor -> (3, H/f, W/f) encoded, degrained
    profiles: dict[str, dict]  # plate folder -> grain profile (to_dict)
    detail: list[torch.Tensor] = field(default_factory=list)  # per frame: where the ×4 patches start, weighted


def _detail_weights(high: torch.Tensor, low: torch.Tensor, patch: int) -> torch.Tensor:
    """Flat (rows·cols) weights of the 4-aligned patch positions of a frame: the energy of what a bicubic ×4
    upscale misses inside the patch (edges and texture high, flat sky and walls near zero)."""
    base = F.interpolate(low[None].float(), scale_factor=4, mode="bicubic", align_corners=False)[0]
    energy = F.avg_pool2d(((high.float() - base) ** 2).mean(0, keepdim=True)[None], 4)  # (1, 1, H/4, W/4)
    window = patch // 4
    summed = F.avg_pool2d(energy, window, stride=1)[0, 0]  # one value per patch start (in 4-pixel steps)
    return summed.flatten().double() + 1e-12


def load_plates(paths: list[str], config: UpscalerConfig,
                on_frame: Callable[[int, int], None] | None = None) -> _Plates:
    """Read, degrain and downscale every frame (see the module docstring); float16 tensors in memory."""
    by_plate: dict[str, list[str]] = defaultdict(list)
    for p in paths:
        by_plate[os.path.dirname(os.path.abspath(p))].append(p)
    data = _Plates([], {f: [] for f in FACTORS}, {})
    done = 0
    for folder, members in by_plate.items():
        first = [read_plate_rgb(p, config_name=config.config_name) for p in members[:PROFILE_FRAMES]]
        profile = grain.measure_grain(first)
        data.profiles[folder] = profile.to_dict()
        for i, p in enumerate(members):
            rgb = first[i] if i < len(first) else read_plate_rgb(p, config_name=config.config_name)
            _add_frame(data, rgb, profile, config)
            done += 1
            if on_frame is not None:
                on_frame(done, len(paths))
    return data


def degrade(rgb: np.ndarray, profile: grain.GrainProfile, factor: int) -> np.ndarray:
    """What the upscaler learns to undo: the plate degrained, then box-downscaled by ``factor``.
    float32 (H, W, 3) with H and W multiples of ``factor`` → (H/factor, W/factor, 3), scene-linear."""
    h, w = rgb.shape[:2]
    return frames.resize(grain.degrain(rgb, profile), w // factor, h // factor)


def _add_frame(data: _Plates, rgb: np.ndarray, profile: grain.GrainProfile, config: UpscalerConfig) -> None:
    h, w = (rgb.shape[0] // 4) * 4, (rgb.shape[1] // 4) * 4
    if h < config.patch or w < config.patch:
        raise TrainingError(f"a frame of {rgb.shape[1]}x{rgb.shape[0]} is smaller than the {config.patch}-pixel patch")
    rgb = np.ascontiguousarray(rgb[:h, :w])
    clean = grain.degrain(rgb, profile)

    def encoded(pixels: np.ndarray) -> torch.Tensor:
        out = colour.convert(np.maximum(pixels, 0.0), "ACEScg", config.colour_encoding, config_name=config.config_name)
        return torch.from_numpy(np.ascontiguousarray(out.transpose(2, 0, 1))).to(torch.float16)

    data.high.append(encoded(rgb))
    for f in FACTORS:
        data.low[f].append(encoded(frames.resize(clean, w // f, h // f)))
    if config.detail_share:
        data.detail.append(_detail_weights(data.high[-1], data.low[4][-1], config.patch))


def _batch(data: _Plates, config: UpscalerConfig, g: torch.Generator) -> tuple[torch.Tensor, dict[int, torch.Tensor]]:
    n, p = len(data.high), config.patch
    picks = torch.randint(0, n, (config.batch_size,), generator=g)
    r = torch.rand((config.batch_size, 3), generator=g)
    # detail sampling: that share of the patches starts where the detail weights say (drawn only when on)
    detailed = (torch.rand(config.batch_size, generator=g) < config.detail_share).tolist() if config.detail_share \
        else [False] * config.batch_size
    high, low = [], {f: [] for f in FACTORS}
    for i, k in enumerate(picks.tolist()):
        _, hh, ww = data.high[k].shape
        y0 = int(float(r[i, 0]) * ((hh - p) // 4 + 1)) * 4
        x0 = int(float(r[i, 1]) * ((ww - p) // 4 + 1)) * 4
        if detailed[i]:
            at = int(torch.multinomial(data.detail[k], 1, generator=g))
            y0, x0 = divmod(at, (ww - p) // 4 + 1)
            y0, x0 = y0 * 4, x0 * 4
        flip = float(r[i, 2]) < 0.5
        crop = data.high[k][:, y0:y0 + p, x0:x0 + p]
        high.append(crop.flip(-1) if flip else crop)
        for f in FACTORS:
            small = data.low[f][k][:, y0 // f:(y0 + p) // f, x0 // f:(x0 + p) // f]
            low[f].append(small.flip(-1) if flip else small)
    return torch.stack(high).float(), {f: torch.stack(v).float() for f, v in low.items()}


def _per_factor(config: UpscalerConfig) -> dict[int, int]:
    """Samples of the batch each factor trains on: ×2 costs four times ×4 per sample (its input has four times
    the pixels), so it sees a quarter of the batch and both cost alike."""
    return {2: max(1, round(config.batch_size * config.x2_share)), 4: config.batch_size}


def _loss(output: torch.Tensor, target: torch.Tensor, kind: str) -> torch.Tensor:
    if kind == "charbonnier":  # a smooth L1: sqrt(d² + ε²), differentiable at zero
        return torch.sqrt((output - target) ** 2 + CHARBONNIER_EPS**2).mean()
    return F.l1_loss(output, target)


def _lr_at(step: int, config: UpscalerConfig) -> float:
    warm = min(1.0, (step + 1) / 50)
    return config.lr * warm * 0.5 * (1 + math.cos(math.pi * min(step, config.steps) / config.steps))


def train_upscaler(
    config: UpscalerConfig,
    *,
    on_progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
    on_frame: Callable[[int, int], None] | None = None,
) -> UpscalerCard:
    """Train (or resume training) the show upscaler on ``config.plates`` and save it to ``config.out_dir``.

    Returns the saved model's card. ``on_frame(done, total)`` while the plates load; ``on_progress(step, steps,
    loss)`` after every step; when ``should_stop()`` turns true a checkpoint is written and TrainingStopped raised.
    TrainingError for unusable plates, configuration or checkpoint.
    """
    config.check()
    device = pick_device(config.device)
    paths = sorted({p for spec in config.plates for p in collect_plates(spec)})
    manifest = training_manifest(paths, config)
    fingerprint = training._fingerprint(config, manifest["files"])
    Path(config.out_dir).mkdir(parents=True, exist_ok=True)
    with _torch_threads(config.threads):
        data = load_plates(paths, config, on_frame)
        state = _new_state(config, device)
        _resume_or_start(config, state, fingerprint)
        _train_loop(config, data, state, device, fingerprint, on_progress, should_stop)
        return _save_model(config, state, manifest, data, device)


@contextmanager
def _torch_threads(threads: int):
    """torch's CPU thread count set for the block (0: left alone), restored after."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


def _resume_or_start(config: UpscalerConfig, state: training._State, fingerprint: str) -> None:
    checkpoints = Path(config.out_dir) / training.CHECKPOINT_DIR
    if not config.resume:
        shutil.rmtree(checkpoints, ignore_errors=True)
    elif found := training._checkpoints(Path(config.out_dir)):
        training._load_checkpoint(found[-1][1], state, fingerprint)


def _new_state(config: UpscalerConfig, device: torch.device) -> training._State:
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(config.seed)
        net = ShowUpscaler(config.features, config.layers).to(device).train()
    ema = {k: v.detach().clone() for k, v in net.state_dict().items()}
    optimizer = torch.optim.Adam(net.parameters(), lr=config.lr)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    # training._State names the network "unet": the show model's checkpoint code saves and resumes it as it is.
    return training._State(unet=net, ema=ema, optimizer=optimizer, generator=generator)


def _train_loop(config, data, state, device, fingerprint, on_progress, should_stop) -> None:
    out_dir = Path(config.out_dir)
    while state.step < config.steps:
        if should_stop is not None and should_stop():
            raise TrainingStopped(state.step, training._save_checkpoint(out_dir, state, fingerprint,
                                                                        config.keep_checkpoints))
        started = time.perf_counter()
        high, low = _batch(data, config, state.generator)
        for group in state.optimizer.param_groups:
            group["lr"] = _lr_at(state.step, config)
        high = high.to(device)
        loss = sum(_loss(state.unet(low[f][:n].to(device), f), high[:n], config.loss)
                   for f, n in _per_factor(config).items())
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if config.clip_grad:
            torch.nn.utils.clip_grad_norm_(state.unet.parameters(), config.clip_grad)
        state.optimizer.step()
        training._update_ema(state.ema, state.unet, state.step, config.ema_decay)
        state.step, state.seconds = state.step + 1, state.seconds + time.perf_counter() - started
        state.losses.append(float(loss.detach()))
        if on_progress:
            on_progress(state.step, config.steps, state.losses[-1])
        if state.step == config.steps or not state.step % config.checkpoint_every:
            training._save_checkpoint(out_dir, state, fingerprint, config.keep_checkpoints)


def _save_model(config: UpscalerConfig, state: training._State, manifest: dict, data: _Plates,
                device: torch.device) -> UpscalerCard:
    from safetensors.torch import save_file

    out_dir = Path(config.out_dir)
    weights = {k: v.detach().to("cpu").contiguous() for k, v in state.ema.items()}
    tmp = out_dir / f".{WEIGHTS_NAME}.tmp-{os.getpid()}"
    save_file(weights, str(tmp))
    os.replace(tmp, out_dir / WEIGHTS_NAME)
    every = max(1, len(state.losses) // 100)
    card = {
        "name": config.name,
        "kind": "upscaler",
        "factors": list(FACTORS),
        "colour_encoding": config.colour_encoding,
        "working_space": "ACEScg",
        "architecture": {"features": config.features, "layers": config.layers},
        "created_by": config.created_by,
        "training_manifest": manifest,
        "training": {
            "steps": state.step,
            "seconds": round(state.seconds, 1),
            "device": str(device),
            "parameters": sum(v.numel() for v in weights.values()),
            "final_loss": round(float(np.mean(state.losses[-50:])), 5) if state.losses else None,
            "loss_curve": {"every": every, "mean_loss": [
                round(float(np.mean(state.losses[i:i + every])), 5) for i in range(0, len(state.losses), every)]},
            "grain_profiles": len(data.profiles),
        } | dict(config.extra),
    }
    (out_dir / registry.CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return read_upscaler_card(out_dir)
