"""The model's space: a card's pixels as the denoiser sees them and back.

The model works at its sample size on ``[-1, 1]`` values in its card's ``colour_encoding`` (an OCIO
name); plates and elements are scene-linear in the spec's working space. Tensors are float32, NCHW, CPU.
"""

from __future__ import annotations

import numpy as np
import torch

from generation.engine import colour, frames
from generation.engine.card import Card, crop, crop_edge
from generation.engine.plan import VariationPlan


def known_and_mask(
    plate0: np.ndarray, matte0: np.ndarray, card: Card, plan: VariationPlan
) -> tuple[torch.Tensor, torch.Tensor]:
    """Model-size known pixels ((1, 3, h, w), [-1, 1] in the model's colour encoding) and mask ((1, 1, h, w),
    1 = generate) from the first frame's plate (H, W, 3) and matte (H, W).

    Inpainting (``plan.info.mode`` "inpaint") knows nothing under the matte or outside the frame;
    image-to-image starts from the whole card (the region's own pixels, the frame's edge repeated beyond
    it) and changes the matte."""
    img2img = plan.info.mode == "img2img"
    if img2img:
        rgb, inside = crop_edge(plate0, card), np.ones((card.height, card.width), np.float32)
    else:
        rgb, inside = crop(plate0, card)
    matte, _ = crop(matte0, card)
    rgb = frames.resize(rgb, card.model_w, card.model_h)
    inside = frames.resize(inside, card.model_w, card.model_h)
    matte = frames.resize(matte, card.model_w, card.model_h)
    encoded = to_model(rgb, plan)
    generate = (matte > 1e-4) | (inside < 0.999)
    dilated = _dilate(generate)
    known = np.clip(encoded * 2.0 - 1.0, -1.0, 1.0)
    if not img2img:
        known = np.where(dilated[..., None], 0.0, known)
    known_t = torch.from_numpy(np.ascontiguousarray(known.transpose(2, 0, 1)[None], np.float32))
    mask_t = torch.from_numpy(dilated[None, None].astype(np.float32))
    return known_t, mask_t


def _dilate(generate: np.ndarray) -> np.ndarray:
    """One pixel of 3x3 growth, so the model also redraws the seam it blends into."""
    padded = np.pad(generate, 1, mode="edge")
    h, w = generate.shape
    dilated = np.zeros_like(generate)
    for dy in range(3):
        for dx in range(3):
            dilated |= padded[dy : dy + h, dx : dx + w]
    return dilated


def decode(sample: torch.Tensor, plan: VariationPlan) -> np.ndarray:
    """The denoised sample ((1, 3, h, w), [-1, 1] model encoding) as (h, w, 3) float32 working-space pixels."""
    encoded = (sample[0].numpy().transpose(1, 2, 0) + 1.0) / 2.0
    return from_model(np.ascontiguousarray(encoded, np.float32), plan)


def to_model(rgb: np.ndarray, plan: VariationPlan) -> np.ndarray:
    """Working-space RGB in the model's colour encoding ([0, 1] nominal)."""
    return colour.convert(rgb, plan.spec.working_space, plan.model.colour_encoding, config_name=plan.spec.config_name)


def from_model(encoded: np.ndarray, plan: VariationPlan) -> np.ndarray:
    """The model's colour encoding back in the working space."""
    return colour.convert(
        encoded, plan.model.colour_encoding, plan.spec.working_space, config_name=plan.spec.config_name
    )
