"""RePaint-style masked denoising with an unconditional pixel-space UNet and a DDIM scheduler."""

from __future__ import annotations

import os

# Spinning OpenMP workers collapse torch on a shared 2-core box (2.5 s vs 0.3 s per step under
# load); only effective if set before torch is first imported.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import copy
from collections.abc import Callable

import torch


class Cancelled(Exception):
    """The caller asked to stop; raised before the next denoising step or frame."""


def _check_inputs(unet, known: torch.Tensor, mask: torch.Tensor, seed: int, steps: int, strength: float) -> None:
    if not isinstance(known, torch.Tensor) or known.ndim != 4 or known.shape[:2] != (1, 3):
        raise ValueError(f"known must be a (1, 3, h, w) tensor, got {getattr(known, 'shape', known)!r}")
    h, w = known.shape[2:]
    if not isinstance(mask, torch.Tensor) or tuple(mask.shape) != (1, 1, h, w):
        raise ValueError(f"mask must be (1, 1, {h}, {w}), got {getattr(mask, 'shape', mask)!r}")
    if h < 4 or w < 4 or h % 4 or w % 4:
        raise ValueError(f"height and width must be multiples of 4, got {h}x{w}")
    if not (torch.isfinite(known).all() and torch.isfinite(mask).all()):
        raise ValueError("known and mask must be finite")
    if known.min() < -1.0 - 1e-4 or known.max() > 1.0 + 1e-4:
        raise ValueError("known must lie in [-1, 1]")
    if mask.min() < 0 or mask.max() > 1:
        raise ValueError("mask must lie in [0, 1]")
    if isinstance(seed, bool) or not isinstance(seed, int) or not 0 <= seed < 2**63:
        raise ValueError(f"seed must be an int in [0, 2**63), got {seed!r}")
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 1:
        raise ValueError(f"steps must be a positive int, got {steps!r}")
    if isinstance(strength, bool) or not isinstance(strength, (int, float)) or not 0 < strength <= 1:
        raise ValueError(f"strength must be in (0, 1], got {strength!r}")
    if int(steps * strength) < 1:
        raise ValueError(f"strength {strength} of {steps} steps runs no step: raise one or the other")
    if unet.config.in_channels != 3 or unet.config.out_channels != 3:
        raise ValueError("masked_denoise needs a 3-channel pixel-space UNet")


def masked_denoise(
    unet,
    scheduler,
    *,
    known: torch.Tensor,
    mask: torch.Tensor,
    seed: int,
    steps: int = 25,
    strength: float = 1.0,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Generate where ``mask`` is 1 and keep ``known`` elsewhere (RePaint without resampling).

    ``known`` is (1, 3, h, w) in [-1, 1], ``mask`` (1, 1, h, w) in [0, 1] with 1 = generate; h and w
    are multiples of 4. All noise comes from a CPU ``torch.Generator(seed)`` so a seed gives the same
    image on any device. After every DDIM step the known region is replaced by ``known`` noised to
    the step's timestep; the result's known region is ``known`` exactly. ``should_cancel()`` is asked
    before each step (raises :class:`Cancelled`), ``progress(i, n)`` after each.

    ``strength`` < 1 is image-to-image (SDEdit): the whole of ``known``, inside the mask too, is
    noised to the timestep ``strength`` of the way up the schedule and only the last
    ``int(steps * strength)`` = n steps run, so the region keeps its structure and takes on the
    model's look. At 1 the region starts from pure noise (inpainting).
    Returns float32 (1, 3, h, w) on the CPU, clamped to [-1, 1].
    """
    _check_inputs(unet, known, mask, seed, steps, strength)
    device, dtype = unet.device, unet.dtype
    scheduler = copy.deepcopy(scheduler)  # the cached scheduler is shared between jobs
    if steps > scheduler.config.num_train_timesteps:
        raise ValueError(f"steps must be <= {scheduler.config.num_train_timesteps}")
    scheduler.set_timesteps(steps, device=device)
    generator = torch.Generator("cpu").manual_seed(seed)

    def noise() -> torch.Tensor:
        return torch.randn(known.shape, generator=generator, dtype=torch.float32).to(device, dtype)

    known_d = known.to(device, dtype)
    mask_d = mask.to(device, dtype)
    timesteps = scheduler.timesteps
    run = min(int(steps * strength), steps)  # diffusers' img2img convention
    if run == steps:
        sample = noise() * scheduler.init_noise_sigma
    else:
        timesteps = timesteps[steps - run :]
        sample = scheduler.add_noise(known_d, noise(), timesteps[:1])
    with torch.inference_mode():
        for i, t in enumerate(timesteps):
            if should_cancel is not None and should_cancel():
                raise Cancelled(f"cancelled before denoising step {i + 1} of {run}")
            eps = unet(sample, t).sample
            sample = scheduler.step(eps, t, sample, eta=0.0).prev_sample
            if i + 1 < len(timesteps):
                known_t = scheduler.add_noise(known_d, noise(), timesteps[i + 1 : i + 2])
            else:
                known_t = known_d
            sample = mask_d * sample + (1 - mask_d) * known_t
            if progress is not None:
                progress(i + 1, run)
    out = torch.clamp(sample.float().cpu(), -1.0, 1.0)  # a normal tensor, not an inference one
    keep = (mask <= 0).expand_as(out)
    out[keep] = known.float().cpu()[keep]  # exact, whatever the dtype round trip did
    return out
