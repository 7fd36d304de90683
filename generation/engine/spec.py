"""What a task runner is given and what it gives back: the contract every generation task keeps.

A task's row in :data:`task_kinds.TASKS` names its runner (``TaskInfo.runner``, ``"module:function"``).
Every runner has the signature of :func:`variation.generate_variation`::

    run(spec: VariationSpec, *, on_progress=None, on_frame=None, should_cancel=None) -> VariationResult

- ``spec``: plate, region (matte or rect), frame range, model, seed, colour and ``out_dir``; a task reads
  the fields it needs and refuses bad ones before writing anything.
- ``on_progress(stage, done, total)``: any stages the runner has ("track", "denoise", "frames", ...).
- ``on_frame(frame, exr_path, proxy_path)``: once both of a frame's files exist, in frame order.
- ``should_cancel()``: asked often; the runner raises :class:`inpaint.Cancelled` when it says yes.
- On cancel or any error the runner removes every file and directory it created
  (:class:`frame_writer.Outputs`) and re-raises.
- It returns a :class:`VariationResult` (or anything with the same fields): the request, review,
  release and metrics code reads only those.

:mod:`frame_writer` is the shared part a runner reuses rather than copies: the outputs it cleans up on
failure, the provenance attributes every EXR carries, and the frame loop that reads ahead and writes
the EXR and its proxy behind.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

ProgressFn = Callable[[str, int, int], None]  # (stage, done, total)
FrameFn = Callable[[int, str, str], None]  # (frame, exr_path, proxy_path)
CancelFn = Callable[[], bool]


@dataclass
class VariationSpec:
    """One variation to make. Plates are scene-linear EXRs in ``working_space``; colour names are OCIO's."""

    plate_pattern: str
    matte_pattern: str | None
    rect: tuple[int, int, int, int] | None  # x, y, width, height relative to the display window
    first: int
    last: int
    model_path: str
    seed: int
    steps: int
    out_dir: str
    task: str = "sky_replacement"
    prompt: str = ""
    working_space: str = "ACEScg"
    config_name: str | None = None
    plate_colourspace: str | None = None  # the plate's, converted to working_space at read; None: already it
    pixel_aspect: float = 1.0  # the plate's PixelAspectRatio: proxies are desqueezed by it
    display: str | None = None
    view: str | None = None
    proxy_width: int = 960
    device: str = ""
    attributes: dict[str, str] = field(default_factory=dict)
    strength: float | None = None  # img2img tasks; None = the task's default (task_kinds.TASKS)
    guidance_scale: float = 7.5  # SD backends only (classifier-free guidance; 1 switches it off)

    def plate_colour(self) -> dict:
        """What :func:`frames.read_channels` needs to read the plate's R, G, B into the working space."""
        return {
            "colourspace": self.plate_colourspace,
            "working_space": self.working_space,
            "config_name": self.config_name,
        }


@dataclass
class VariationResult:
    """What a runner made: its frames, the EXR and proxy patterns (``####``), its QC figures."""

    frames: list[int]
    exr_pattern: str
    proxy_pattern: str
    compute_seconds: float
    flicker_ratio: float
    element_window: dict  # the union of the frames' data windows (Window.as_dict), {} if none
    timings: dict[str, float] = field(default_factory=dict)
