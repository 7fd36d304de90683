"""The denoiser for a model card's kind: a show model's masked denoising or an SD directory's pipeline.

Both take ``(known, mask, progress(i, n), should_cancel)`` in the model's space (:mod:`encoding`) and
return the denoised sample, (1, 3, h, w) float32 on the CPU.
"""

from __future__ import annotations

import dataclasses

import torch

from generation.engine.device import pick_dtype
from generation.engine.inpaint import masked_denoise
from generation.engine.plan import VariationPlan
from generation.engine.registry import load_show_model


def load_denoiser(plan: VariationPlan, device: torch.device):
    """``(plan with the loaded model's card, denoise)`` for the plan's model on ``device``."""
    spec, strength = plan.spec, plan.strength
    if plan.model.kind == "show_model":
        unet, scheduler, card = load_show_model(spec.model_path, device, pick_dtype(device))

        def denoise(known, mask, progress, should_cancel):
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

    def denoise(known, mask, progress, should_cancel):
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
