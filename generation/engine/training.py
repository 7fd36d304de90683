"""Train a show model on a show's approved look-dev images: a small pixel-space UNet, our own loop.

The model learns the distribution of the look-dev set (skies, for the demo show) so that
:mod:`generation.engine.variation` can inpaint a plate's sky with it. The recipe:

- Data: every EXR of the look-dev folder, scene-linear ``source_space`` (ACEScg), converted to the
  model encoding (ACEScct) and mapped from [0, 1] to [-1, 1] -- exactly what ``variation`` feeds the
  model. Each file must be licensed/approved in a sidecar (``LICENSES.json`` or ``approvals.json``:
  ``{file name: licence or approval reference}``); the file names, sha256 and licences go into the
  model card's training manifest.
- Augmentation per sample: a random crop of 80-100 % of the image (aspect kept), a horizontal flip,
  and a small exposure / white-balance shift applied in the log encoding (a shift in ACEScct is a
  change of stops in linear light).
- Model: ``UNet2DModel`` without attention blocks (see TrainingConfig) predicting the clean image
  (x0, "sample") on a cosine schedule rescaled to zero terminal SNR, AdamW with a short warm-up, EMA
  weights for sampling. The look-dev skies are smooth and low-contrast (std ~0.16 in model space), so
  with epsilon- or v-prediction the loss is dominated by the noise and a small model learns the
  global sky (gradient, colour, cloud layout) very slowly -- after 1000 steps it still made a
  blotchy mix of every palette; x0-prediction makes coherent skies within 500 steps
  (deploy/demo-model/README.md has the comparison). Zero terminal SNR means sampling starts from pure
  noise, so a sky's overall brightness and palette are free to vary. The saved scheduler is a DDIM
  with "trailing" timesteps, which ``registry.load_show_model`` loads as it is.
- Checkpoints every ``checkpoint_every`` steps in ``<out_dir>/checkpoints/step-XXXXXX/`` (weights,
  EMA, optimizer, step, RNG state, loss history); a run resumes from the newest one automatically
  and then continues bit-identically to a run that was never interrupted (on the CPU, with the same
  thread count). The final model is ``DDIMPipeline``-shaped (safetensors) plus ``parallel_track.json``.

No Django here: paths in, a model directory and a :class:`registry.ModelCard` out; progress leaves
through ``on_progress(step, steps, loss)`` and ``should_stop()`` is polled before every step.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import NamedTuple

import numpy as np
import torch
import torch.nn.functional as F

# registry switches the Hugging Face hub off; diffusers is imported lazily, after it.
from generation.engine import colour, frames, registry
from generation.engine.device import pick_device

LICENCE_SIDECARS = ("LICENSES.json", "approvals.json")
CHECKPOINT_DIR = "checkpoints"
_CHECKPOINT_RE = re.compile(r"^step-(\d{6,})$")
_CCT_STOP = 1.0 / 17.52  # one stop of exposure in ACEScct units (log segment)


class TrainingError(ValueError):
    """The look-dev set, the configuration or a checkpoint cannot be used."""


class TrainingStopped(Exception):
    """``should_stop()`` turned true; a checkpoint at ``step`` was written, so a rerun resumes."""

    def __init__(self, step: int, checkpoint: str) -> None:
        super().__init__(f"training stopped at step {step}; checkpoint {checkpoint}")
        self.step = step
        self.checkpoint = checkpoint


@dataclass
class TrainingConfig:
    """What to train on, where, and how.

    The defaults are the demo show's sky model, chosen by measurement on two shared CPU cores (the
    figures are in deploy/demo-model/README.md): 32x64 samples, four levels (16, 32, 64, 64) with one
    ResNet layer per block and attention only in the 4x8 mid block (diffusers' default; 32 tokens,
    nearly free). The cheap 16-channel full-resolution level keeps a step at ~0.5 s for a batch of 16
    on one core, and the 1/8 bottleneck sees the whole sample, so the sky's gradient, palette and
    cloud layout are learned together. 48x96 was 2.5x slower per step and still a blur of palettes
    when 32x64 already made recognisable skies at the same wall-clock time.
    """

    lookdev_dir: str
    out_dir: str
    sample_size: tuple[int, int] = (32, 64)
    steps: int = 6000
    batch_size: int = 16
    lr: float = 1e-3
    seed: int = 0
    checkpoint_every: int = 250
    device: str = "cpu"
    name: str = "show-model"
    block_out_channels: tuple[int, ...] = (16, 32, 64, 64)
    layers_per_block: int = 1
    warmup_steps: int = 100
    ema_decay: float = 0.999
    weight_decay: float = 0.01
    beta_schedule: str = "squaredcos_cap_v2"
    prediction_type: str = "sample"
    crop_min: float = 0.8
    exposure_jitter_stops: float = 0.25
    white_balance_jitter_stops: float = 0.05
    source_space: str = "ACEScg"
    colour_encoding: str = "ACEScct"
    config_name: str | None = None
    save_fp16: bool = False
    threads: int = 0  # 0: leave torch's setting alone
    resume: bool = True
    keep_checkpoints: int = 2
    created_by: str = "train_show_model"
    extra: dict = field(default_factory=dict)
    init_from: str = ""  # a show model directory whose weights start the run (fine-tuning); "" starts from scratch

    def check(self) -> None:
        h, w = self.sample_size
        factor = 2 ** (len(self.block_out_channels) - 1)
        if h <= 0 or w <= 0 or h % max(factor, 4) or w % max(factor, 4):
            raise TrainingError(f"sample_size {h}x{w} must be positive multiples of {max(factor, 4)}")
        for name in ("steps", "batch_size", "checkpoint_every", "layers_per_block", "keep_checkpoints"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise TrainingError(f"{name} must be a positive integer, got {value!r}")
        if not self.lr > 0 or not 0 <= self.ema_decay < 1 or not 0 < self.crop_min <= 1:
            raise TrainingError("lr must be > 0, ema_decay in [0, 1) and crop_min in (0, 1]")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or not 0 <= self.seed < 2**63:
            raise TrainingError(f"seed must be an integer in [0, 2**63), got {self.seed!r}")
        if self.prediction_type not in ("sample", "v_prediction"):
            # epsilon cannot be predicted at zero terminal SNR: the last timestep holds no image.
            raise TrainingError(f"prediction_type must be 'sample' or 'v_prediction', not {self.prediction_type!r}")
        if any(c % 8 for c in self.block_out_channels):
            raise TrainingError(f"block_out_channels {self.block_out_channels} must be multiples of 8")

    def recipe(self) -> dict:
        """Everything that decides the weights (not where they are written, nor the thread count)."""
        keep = ("sample_size", "batch_size", "lr", "seed", "block_out_channels", "layers_per_block", "beta_schedule",
                "prediction_type",
                "warmup_steps", "ema_decay", "weight_decay", "crop_min", "exposure_jitter_stops",
                "white_balance_jitter_stops", "source_space", "colour_encoding")
        recipe = {k: v for k, v in asdict(self).items() if k in keep}
        recipe["sample_size"] = list(self.sample_size)
        recipe["block_out_channels"] = list(self.block_out_channels)
        recipe["zero_terminal_snr"] = True
        if self.init_from:  # the starting weights are part of what decides the result
            recipe["init_from_manifest_sha256"] = registry.read_model_card(self.init_from).manifest_hash
        return recipe


class LookdevImage(NamedTuple):
    path: str
    sha256: str
    licence: str


def _sha256(path: str) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


def _licence_sidecar(root: Path) -> tuple[Path, dict[str, str]]:
    for name in LICENCE_SIDECARS:
        path = root / name
        if path.is_file():
            try:
                licences = json.loads(path.read_text(encoding="utf-8"))
            except (OSError, ValueError) as exc:
                raise TrainingError(f"{path}: unreadable licence sidecar ({exc})") from exc
            if not isinstance(licences, dict) or not all(
                isinstance(k, str) and isinstance(v, str) and v.strip() for k, v in licences.items()
            ):
                raise TrainingError(f"{path}: must map each file name to a non-empty licence string")
            return path, licences
    raise TrainingError(
        f"{root} has no {' or '.join(LICENCE_SIDECARS)}: every training image needs a licence or an "
        "approval reference, so nothing is trained on unapproved material"
    )


def collect_lookdev(lookdev_dir: str | os.PathLike) -> list[LookdevImage]:
    """The look-dev set: every ``*.exr`` directly in ``lookdev_dir``, sorted by name, with its sha256
    and the licence its sidecar gives it. TrainingError when the folder is empty, has no sidecar, or
    an image has no licence entry (named in the message)."""
    root = Path(lookdev_dir)
    if not root.is_dir():
        raise TrainingError(f"look-dev folder {root} does not exist")
    _, licences = _licence_sidecar(root)
    paths = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".exr")
    if not paths:
        raise TrainingError(f"{root} holds no .exr look-dev images")
    unlicensed = [p.name for p in paths if p.name not in licences]
    if unlicensed:
        shown = ", ".join(unlicensed[:5]) + (" …" if len(unlicensed) > 5 else "")
        raise TrainingError(f"{len(unlicensed)} look-dev image(s) have no licence entry: {shown}")
    return [LookdevImage(str(p), _sha256(str(p)), licences[p.name]) for p in paths]


def training_manifest(lookdev_dir: str | os.PathLike, images: list[LookdevImage], config: TrainingConfig) -> dict:
    """The card's training manifest: every file (name relative to the look-dev folder, sha256,
    licence), the licence sidecar's hash and the training recipe. Location-independent, so the same
    set trained the same way has the same manifest hash on any machine."""
    root = Path(lookdev_dir)
    sidecar, _ = _licence_sidecar(root)
    return {
        "files": [
            {"path": os.path.relpath(img.path, root), "sha256": img.sha256, "licence": img.licence}
            for img in images
        ],
        "licence_sidecar": {"path": sidecar.name, "sha256": _sha256(str(sidecar))},
        "recipe": config.recipe() | {"steps": config.steps},
    }


def _base_size(config: TrainingConfig) -> tuple[int, int]:
    """Images are kept in memory at the size whose smallest crop is still the sample size."""
    h, w = config.sample_size
    return round(h / config.crop_min), round(w / config.crop_min)


def load_lookdev_tensor(images: list[LookdevImage], config: TrainingConfig) -> torch.Tensor:
    """float32 (N, 3, H, W) in [-1, 1], the model encoding, at the in-memory base size (resized in
    linear light with an area filter, before the encoding)."""
    bh, bw = _base_size(config)
    out = torch.empty((len(images), 3, bh, bw), dtype=torch.float32)
    for i, img in enumerate(images):
        rgba, _ = frames.read_rgba(img.path)
        rgb = np.nan_to_num(rgba[..., :3], nan=0.0, posinf=0.0, neginf=0.0)
        small = frames.resize(np.maximum(rgb, 0.0), bw, bh)
        encoded = colour.convert(small, config.source_space, config.colour_encoding,
                                 config_name=config.config_name)
        model_space = np.clip(encoded * 2.0 - 1.0, -1.0, 1.0)
        out[i] = torch.from_numpy(np.ascontiguousarray(model_space.transpose(2, 0, 1)))
    return out


# ------------------------------------------------------------------------------------- model parts


def build_unet(config: TrainingConfig):
    from diffusers import UNet2DModel

    with torch.random.fork_rng(devices=[]):  # diffusers initialises from the global generator
        torch.manual_seed(config.seed)
        levels = len(config.block_out_channels)
        return UNet2DModel(
            sample_size=tuple(config.sample_size),
            in_channels=3,
            out_channels=3,
            layers_per_block=config.layers_per_block,
            block_out_channels=tuple(config.block_out_channels),
            down_block_types=("DownBlock2D",) * levels,
            up_block_types=("UpBlock2D",) * levels,
            norm_num_groups=8,
        )


def _schedule_kwargs(config: TrainingConfig) -> dict:
    return dict(num_train_timesteps=1000, beta_schedule=config.beta_schedule,
                prediction_type=config.prediction_type, rescale_betas_zero_snr=True,
                timestep_spacing="trailing", clip_sample=True)


def training_scheduler(config: TrainingConfig):
    from diffusers import DDPMScheduler

    return DDPMScheduler(**_schedule_kwargs(config))


def sampling_scheduler(config: TrainingConfig):
    from diffusers import DDIMScheduler

    return DDIMScheduler(**_schedule_kwargs(config), set_alpha_to_one=True)


def augment(batch: torch.Tensor, config: TrainingConfig, generator: torch.Generator) -> torch.Tensor:
    """Random crop (aspect kept) resized to the sample size, horizontal flip, exposure and white-
    balance shift in the log encoding. ``batch`` (B, 3, H, W) at the base size; all randomness from
    ``generator``."""
    h, w = config.sample_size
    bh, bw = batch.shape[2:]
    n = batch.shape[0]
    r = torch.rand((n, 5), generator=generator)
    wb = torch.randn((n, 3), generator=generator)
    out = torch.empty((n, 3, h, w), dtype=batch.dtype)
    for i in range(n):
        scale = config.crop_min + (1.0 - config.crop_min) * float(r[i, 0])
        ch, cw = max(h, round(bh * scale)), max(w, round(bw * scale))
        y0, x0 = int(float(r[i, 1]) * (bh - ch + 1)), int(float(r[i, 2]) * (bw - cw + 1))
        crop = batch[i : i + 1, :, y0 : y0 + ch, x0 : x0 + cw]
        if (ch, cw) != (h, w):
            crop = F.interpolate(crop, size=(h, w), mode="bilinear", antialias=True, align_corners=False)
        out[i] = crop[0].flip(-1) if float(r[i, 3]) < 0.5 else crop[0]
    stops = (2 * r[:, 4] - 1) * config.exposure_jitter_stops
    shift = (stops[:, None] + wb * config.white_balance_jitter_stops) * (2 * _CCT_STOP)
    return (out + shift[:, :, None, None]).clamp(-1.0, 1.0)


# ------------------------------------------------------------------------------------- checkpoints


def _checkpoints(out_dir: Path) -> list[tuple[int, Path]]:
    root = out_dir / CHECKPOINT_DIR
    if not root.is_dir():
        return []
    found = []
    for path in root.iterdir():
        match = _CHECKPOINT_RE.match(path.name)
        if match and (path / "state.pt").is_file():
            found.append((int(match.group(1)), path))
    return sorted(found)


def _fingerprint(config: TrainingConfig, manifest_files: list[dict]) -> str:
    data = {"recipe": config.recipe(), "files": manifest_files}
    return registry.manifest_hash(data)


@dataclass
class _State:
    unet: torch.nn.Module
    ema: dict[str, torch.Tensor]
    optimizer: torch.optim.Optimizer
    generator: torch.Generator
    step: int = 0
    losses: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _save_checkpoint(out_dir: Path, state: _State, fingerprint: str, keep: int) -> str:
    from safetensors.torch import save_file

    root = out_dir / CHECKPOINT_DIR
    root.mkdir(parents=True, exist_ok=True)
    final = root / f"step-{state.step:06d}"
    tmp = root / f".{final.name}.tmp-{os.getpid()}"
    shutil.rmtree(tmp, ignore_errors=True)
    tmp.mkdir()
    save_file({k: v.detach().contiguous() for k, v in state.unet.state_dict().items()},
              str(tmp / "unet.safetensors"))
    save_file({k: v.contiguous() for k, v in state.ema.items()}, str(tmp / "ema.safetensors"))
    torch.save({
        "step": state.step,
        "optimizer": state.optimizer.state_dict(),
        "generator": state.generator.get_state(),
        "losses": list(state.losses),
        "seconds": state.seconds,
        "fingerprint": fingerprint,
    }, tmp / "state.pt")
    if final.exists():
        shutil.rmtree(final)
    os.replace(tmp, final)  # a checkpoint is there complete or not at all
    for _, old in _checkpoints(out_dir)[:-keep]:
        shutil.rmtree(old, ignore_errors=True)
    return str(final)


def _load_checkpoint(path: Path, state: _State, fingerprint: str) -> None:
    from safetensors.torch import load_file

    saved = torch.load(path / "state.pt", map_location="cpu", weights_only=True)
    if saved.get("fingerprint") != fingerprint:
        raise TrainingError(
            f"checkpoint {path} was made from another look-dev set or recipe; train into another "
            "folder or start over without resuming"
        )
    state.unet.load_state_dict(load_file(str(path / "unet.safetensors")))
    ema = load_file(str(path / "ema.safetensors"))
    for name, tensor in state.ema.items():
        tensor.copy_(ema[name])
    state.optimizer.load_state_dict(saved["optimizer"])
    state.generator.set_state(saved["generator"])
    state.step = int(saved["step"])
    state.losses = [float(v) for v in saved["losses"]]
    state.seconds = float(saved["seconds"])


# ---------------------------------------------------------------------------------------- training


def _lr_at(step: int, config: TrainingConfig) -> float:
    return config.lr * min(1.0, (step + 1) / max(1, config.warmup_steps))


def _update_ema(ema: dict[str, torch.Tensor], unet: torch.nn.Module, step: int, decay: float) -> None:
    d = min(decay, (1.0 + step) / (10.0 + step))
    with torch.no_grad():
        for name, param in unet.state_dict().items():
            if param.dtype.is_floating_point:
                ema[name].lerp_(param.detach(), 1.0 - d)
            else:
                ema[name].copy_(param)


def train_show_model(
    config: TrainingConfig,
    *,
    on_progress: Callable[[int, int, float], None] | None = None,
    should_stop: Callable[[], bool] | None = None,
) -> registry.ModelCard:
    """Train (or resume training) a show model on ``config.lookdev_dir`` and save it to ``config.out_dir``.

    Returns the card of the saved model (``registry.read_model_card``). ``on_progress(step, steps,
    loss)`` after every step; ``should_stop()`` before every step -- when it is true a checkpoint is
    written and :class:`TrainingStopped` raised. Raises TrainingError for an unusable look-dev set,
    configuration or checkpoint. Deterministic for a given config on the CPU (same thread count).
    """
    config.check()
    device = pick_device(config.device)
    images = collect_lookdev(config.lookdev_dir)
    manifest = training_manifest(config.lookdev_dir, images, config)
    fingerprint = _fingerprint(config, manifest["files"])
    out_dir = Path(config.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    previous_threads = torch.get_num_threads()
    if config.threads:
        torch.set_num_threads(config.threads)
    try:
        data = load_lookdev_tensor(images, config)
        state = _new_state(config, device)
        if not config.resume:
            shutil.rmtree(out_dir / CHECKPOINT_DIR, ignore_errors=True)
        elif found := _checkpoints(out_dir):
            _load_checkpoint(found[-1][1], state, fingerprint)
        _train_loop(config, data, state, device, fingerprint, on_progress, should_stop)
        return _save_model(config, state, manifest, device)
    finally:
        torch.set_num_threads(previous_threads)


def _new_state(config: TrainingConfig, device: torch.device) -> _State:
    unet = build_unet(config)
    if config.init_from:
        _load_initial_weights(unet, config.init_from)
    unet = unet.to(device).train()
    ema = {k: v.detach().clone() for k, v in unet.state_dict().items()}
    optimizer = torch.optim.AdamW(unet.parameters(), lr=config.lr, weight_decay=config.weight_decay)
    generator = torch.Generator("cpu").manual_seed(config.seed)
    return _State(unet=unet, ema=ema, optimizer=optimizer, generator=generator)


def _load_initial_weights(unet: torch.nn.Module, model_dir: str) -> None:
    """Start from a show model's weights (its architecture must be the config's)."""
    from safetensors.torch import load_file

    weights = Path(model_dir) / "unet" / "diffusion_pytorch_model.safetensors"
    try:
        unet.load_state_dict({k: v.float() for k, v in load_file(str(weights)).items()})
    except (OSError, RuntimeError) as exc:
        raise TrainingError(f"cannot start from {model_dir}: {exc}") from None


def _train_loop(config, data, state, device, fingerprint, on_progress, should_stop) -> None:
    scheduler = training_scheduler(config)
    alphas = scheduler.alphas_cumprod.to(torch.float32)
    out_dir = Path(config.out_dir)
    n = data.shape[0]
    while state.step < config.steps:
        if should_stop is not None and should_stop():
            raise TrainingStopped(state.step, _save_checkpoint(out_dir, state, fingerprint, config.keep_checkpoints))
        started = time.perf_counter()
        g = state.generator
        index = torch.randint(0, n, (config.batch_size,), generator=g)
        clean = augment(data[index], config, g)
        noise = torch.randn(clean.shape, generator=g)
        t = torch.randint(0, scheduler.config.num_train_timesteps, (config.batch_size,), generator=g)
        a = alphas[t].sqrt()[:, None, None, None]
        s = (1 - alphas[t]).sqrt()[:, None, None, None]
        noisy = a * clean + s * noise
        target = clean if config.prediction_type == "sample" else a * noise - s * clean  # x0 or v
        for group in state.optimizer.param_groups:
            group["lr"] = _lr_at(state.step, config)
        pred = state.unet(noisy.to(device), t.to(device)).sample
        loss = F.mse_loss(pred.float(), target.to(device))
        state.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(state.unet.parameters(), 1.0)
        state.optimizer.step()
        _update_ema(state.ema, state.unet, state.step, config.ema_decay)
        state.step += 1
        state.losses.append(float(loss.detach()))
        state.seconds += time.perf_counter() - started
        if on_progress is not None:
            on_progress(state.step, config.steps, state.losses[-1])
        if state.step % config.checkpoint_every == 0 or state.step == config.steps:
            _save_checkpoint(out_dir, state, fingerprint, config.keep_checkpoints)


def _save_model(config: TrainingConfig, state: _State, manifest: dict, device: torch.device) -> registry.ModelCard:
    from diffusers import DDIMPipeline

    unet = build_unet(config)
    unet.load_state_dict({k: v.to("cpu") for k, v in state.ema.items()})
    if config.save_fp16:
        unet = unet.to(torch.float16)
    out_dir = Path(config.out_dir)
    DDIMPipeline(unet=unet.eval(), scheduler=sampling_scheduler(config)).save_pretrained(
        out_dir, safe_serialization=True)
    every = max(1, len(state.losses) // 100)
    card = {
        "name": config.name,
        "kind": "show_model",
        "sample_size": list(config.sample_size),
        "colour_encoding": config.colour_encoding,
        "created_by": config.created_by,
        "training_manifest": manifest,
        "training": {
            "steps": state.step,
            "seconds": round(state.seconds, 1),
            "steps_per_second": round(state.step / state.seconds, 3) if state.seconds else None,
            "device": str(device),
            "parameters": sum(p.numel() for p in unet.parameters()),
            "weights_dtype": "float16" if config.save_fp16 else "float32",
            "final_loss": round(float(np.mean(state.losses[-50:])), 5) if state.losses else None,
            "loss_curve": {"every": every, "mean_loss": [
                round(float(np.mean(state.losses[i : i + every])), 5) for i in range(0, len(state.losses), every)
            ]},
        } | dict(config.extra),
    }
    (out_dir / registry.CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return registry.read_model_card(out_dir)


# ---------------------------------------------------------------------------------------- sampling


def sample_skies(model_dir: str, *, count: int, seed: int, steps: int = 25,
                 working_space: str = "ACEScg", config_name: str | None = None) -> np.ndarray:
    """``count`` unconditional samples of a show model, decoded to scene-linear ``working_space``:
    float32 (count, h, w, 3). Sample i uses the seed ``seed + i`` (as inpaint.masked_denoise would)."""
    from generation.engine.inpaint import masked_denoise

    unet, scheduler, card = registry.load_show_model(model_dir, torch.device("cpu"), torch.float32)
    h, w = card.sample_size
    known, mask = torch.zeros((1, 3, h, w)), torch.ones((1, 1, h, w))
    out = np.empty((count, h, w, 3), np.float32)
    for i in range(count):
        sample = masked_denoise(unet, scheduler, known=known, mask=mask, seed=seed + i, steps=steps)
        encoded = (sample[0].numpy().transpose(1, 2, 0) + 1.0) / 2.0
        out[i] = colour.convert(np.ascontiguousarray(encoded), card.colour_encoding, working_space,
                                config_name=config_name)
    return out
