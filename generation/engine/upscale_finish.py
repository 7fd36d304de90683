"""The finishing stage of a generation: the card made at the model's size upscaled by the show upscaler, then
carried (the card's bicubic sampling goes the rest of the way to frame pixels), then regrained per frame with the
plate's grain profile.

It applies to the ``element`` look (sky replacement, set extension, background fill), whose card is the new
element. Haze and grade keep the plate's own pixels, and with them its grain, so they are left as they are.
``VariationSpec.upscaler_path`` ("" = no upscaler: the card is carried as it is) and
``VariationSpec.grain_profile`` (None or the empty profile: no grain) switch the two halves on; the portal sets
them when the show has an approved upscaler and the plate a measured profile.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np

from generation.engine import grain, upscale
from generation.engine.card import Card
from generation.engine.looks import Element, Look


class Finishing:
    """What the stage does to one variation: the upscaled card, the grain, and the provenance they add."""

    def __init__(self, upscaler_path: str, grain_profile: dict | None, seed: int, device: str = "cpu") -> None:
        self.upscaler = upscale.read_upscaler_card(upscaler_path) if upscaler_path else None
        self.profile = grain.GrainProfile.from_dict(grain_profile) if grain_profile else grain.EMPTY
        self.seed, self.device = seed, device

    def card(self, look: Look) -> Look:
        """An element look with its card upscaled by the upscaler's largest factor (other looks unchanged)."""
        if self.upscaler is None or not isinstance(look, Element):
            return look
        factor = max(self.upscaler.factors)
        rgb = upscale.upscale(np.ascontiguousarray(look.rgb, np.float32), self.upscaler.path, factor=factor,
                              device=self.device)
        card: Card = replace(look.card, model_h=rgb.shape[0], model_w=rgb.shape[1])
        return Element(card, rgb)

    def regrains(self, look: Look) -> bool:
        """Whether :meth:`regrain` changes ``look``'s regions (it draws grain over a frame's whole matte box)."""
        return not self.profile.is_empty and isinstance(look, Element)

    def regrain(self, look: Look, region: np.ndarray, frame: int, box_origin: tuple[int, int]) -> np.ndarray:
        """A frame's element region (h, w, 3) before the matte, regrained with the plate's profile: seeded by the
        variation's seed and the frame (and the box's place, so a moving box draws its own grain)."""
        if self.profile.is_empty or not isinstance(look, Element):
            return region
        seed = (self.seed * 1_000_003 + box_origin[0] * 65_537 + box_origin[1]) % 2**63
        return grain.apply_grain(region, self.profile, seed=seed, frame=frame)

    def attributes(self) -> dict[str, str]:
        """Provenance: the upscaler and its training manifest's hash, the grain profile's hash."""
        out: dict[str, str] = {}
        if self.upscaler is not None:
            out["parallel_track:upscaler"] = self.upscaler.name
            out["parallel_track:upscaler_manifest_sha256"] = self.upscaler.manifest_hash
        if not self.profile.is_empty:
            out["parallel_track:grain_profile_sha256"] = self.profile.sha256()
        return out
