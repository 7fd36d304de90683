"""The denoiser for a model card's kind: a show model's masked denoising or an SD directory's pipeline.

Both take ``(known, mask, progress(i, n), should_cancel)`` in the model's space (:mod:`encoding`) and
return the denoised sample, (1, 3, h, w) float32 on the CPU.

A small model (under :data:`SMALL_MODEL_PARAMETERS`, like the demo's 1 M-parameter sky model) denoises
on one torch thread (:func:`denoise_threads`): its kernels are too small for intra-op threads to gain
much, and on a busy machine (other processes, or this one's frame pool making another variation's
frames) torch's threads wait on each other: 15 s instead of 0.9 s for the demo model's 25 steps at load 7
on 2 cores. One thread also makes its bytes the same whatever the machine's core count.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from contextlib import contextmanager

import torch

from generation.engine.device import pick_dtype
from generation.engine.inpaint import masked_denoise
from generation.engine.plan import VariationPlan
from generation.engine.registry import load_show_model

SMALL_MODEL_PARAMETERS = 10_000_000


def warm() -> None:
    """Import the model code a denoiser loads (diffusers: seconds, more on a busy machine), so a worker that
    calls this when it starts does not make the first Generate wait for it."""
    import diffusers  # noqa: F401
    from diffusers import DDIMScheduler, UNet2DModel  # noqa: F401 - diffusers imports these lazily


def denoise_threads(model: torch.nn.Module) -> int | None:
    """Torch threads to denoise with ``model``: 1 for a small model, None (torch's own) otherwise."""
    return 1 if sum(p.numel() for p in model.parameters()) < SMALL_MODEL_PARAMETERS else None


@contextmanager
def torch_threads(threads: int | None) -> Iterator[None]:
    """Torch's intra-op threads set to ``threads`` (None: unchanged) for the block."""
    if threads is None:
        yield
        return
    before = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(before)


def load_denoiser(plan: VariationPlan, device: torch.device):
    """``(plan with the loaded model's card, denoise)`` for the plan's model on ``device``."""
    spec, strength = plan.spec, plan.strength
    if plan.model.kind == "show_model":
        unet, scheduler, card = load_show_model(spec.model_path, device, pick_dtype(device))
        threads = denoise_threads(unet)

        def denoise(known, mask, progress, should_cancel):
            with torch_threads(threads):
                return masked_denoise(
                    unet,
                    scheduler,
                    known=known,
                    mask=mask,
                    seed=spec.seed,
                    steps=spec.steps,
                    strength=strength,
                    progress=progress,
                    should_cancel=should_cancel,
                )

        return dataclasses.replace(plan, model=card), denoise
    from generation.engine.sd_pipeline import load_sd_pipeline, sd_denoise

    pipe, card = load_sd_pipeline(spec.model_path, device, pick_dtype(device))
    threads = denoise_threads(pipe.unet)

    def denoise(known, mask, progress, should_cancel):
        with torch_threads(threads):
            return sd_denoise(
                pipe,
                known=known,
                mask=mask,
                prompt=spec.prompt,
                seed=spec.seed,
                steps=spec.steps,
                strength=strength,
                guidance_scale=spec.guidance_scale,
                progress=progress,
                should_cancel=should_cancel,
            )

    return dataclasses.replace(plan, model=card), denoise
