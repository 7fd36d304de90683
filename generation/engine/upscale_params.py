"""The ``upscale`` task's request parameters, checked without the heavy imports (the web process checks them)."""

from __future__ import annotations

MULTI_FRAME_RADIUS = 7  # neighbours each side, the multi-frame recipe's (upscale_video.MultiFrameConfig)
MAX_MULTI_FRAME_RADIUS = 8


def multi_frame_radius(params: dict) -> int:
    """``params['multi_frame']``: neighbours each side used by the multi-frame upscale (0 or absent: single-frame;
    ``true``: the recipe's radius). ValueError for anything else."""
    value = params.get("multi_frame", 0)
    if value is True:
        return MULTI_FRAME_RADIUS
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= MAX_MULTI_FRAME_RADIUS:
        raise ValueError(f"params['multi_frame'] must be true or a radius from 0 to {MAX_MULTI_FRAME_RADIUS} frames, "
                         f"not {value!r}")
    return value
