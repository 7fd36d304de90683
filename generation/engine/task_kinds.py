"""What each generation task does, which model kinds may do it, and the parameters it takes.

Free of torch so the portal (forms, API, services) can check a request without loading the engine.

Two modes:

- ``inpaint``: the matte region is generated from noise, conditioned on the plate around it
  (masked denoising with a show model, the 9-channel UNet's plate + mask input with an SD
  inpainting pipeline). ``strength`` is 1: nothing of the region's own pixels survives.
- ``img2img``: the region's own pixels are noised to ``strength`` (0 keeps the plate, 1 is pure noise)
  and denoised (SDEdit, Meng et al. 2022), so structure stays and palette and light change.

A show model is unconditional (it ignores the prompt), so it cannot be steered towards a time of day:
``time_of_day`` needs a prompt-driven model (an SD inpainting or image-to-image directory).

Adding a task (roto, upscale, ...): a row in :data:`TASKS`. Its ``runner`` names the engine function
that makes a variation of it, ``"module:function"`` with the call signature and result of
:func:`generation.engine.variation.generate_variation` (the contract is in :mod:`generation.engine.spec`;
the shared frame loop, outputs cleanup and provenance are in :mod:`generation.engine.frame_writer`).
A task whose card is an element, haze or grade keeps the default runner and names its ``look``.
The request, review, release and metrics code reads only these fields; :func:`load_runner` finds the
runner by name, importing its module only when asked (this module stays free of torch).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass

# Model kinds a show may register, in the order a page lists them.
MODEL_KINDS: dict[str, str] = {
    "show_model": "Show model",
    "inpainting": "Inpainting",
    "img2img": "Image-to-image",
    "upscaler": "Upscaler",
}


@dataclass(frozen=True)
class TaskInfo:
    """What a task needs and makes. The request, review, release and metrics code reads these fields and
    knows no task by name: a new task plugs in with its engine module and a row in :data:`TASKS`."""

    label: str
    kinds: tuple[str, ...]  # model kinds that may do it, preferred first (empty: the task needs no model)
    mode: str  # "inpaint" or "img2img" for generation tasks; the task's own word otherwise
    strength: float  # default; inpaint tasks are always 1.0
    strength_range: tuple[float, float]
    anchor: str  # where the card sits on the matte's box: "bottom" (skies: horizon at the bottom) or "centre"
    context: float  # plate margin around the matte's box in the card, as a fraction of its larger side
    uses_depth: bool  # a depth channel (Z, depth.Z, depth) weights the result when the plate has one
    look: str = "element"  # what a frame makes of the card: "element", "haze" (atmosphere), "grade" (time of day)
    element: str = "rgba"  # what a variation delivers: "rgba" (premultiplied over the plate) or "matte" (A only)
    needs_pick: bool = True  # a director's pick comes before sign-off (False: a compositor signs off directly)
    region: str = "matte"  # what says where: "matte" (a matte sequence or a rect), "keyframes", "element"
    runner: str = "generation.engine.variation:generate_variation"  # "module:function" the worker calls
    refusals: tuple[tuple[str, str], ...] = ()  # (model kind, why it cannot do this task), said when refused
    # Whether a variation's seed changes what it makes. False (roto: the same key frames give the same matte):
    # ``count > 1`` would make identical variations, so a request for more than one is refused.
    seed_varies: bool = True

    @property
    def needs_model(self) -> bool:
        return bool(self.kinds)


TASKS: dict[str, TaskInfo] = {
    "sky_replacement": TaskInfo(
        "Sky replacement", ("show_model", "inpainting"), "inpaint", 1.0, (1.0, 1.0), "bottom", 0.03, False
    ),
    "set_extension": TaskInfo(
        "Set extension", ("inpainting", "show_model"), "inpaint", 1.0, (1.0, 1.0), "centre", 0.15, False
    ),
    "background_fill": TaskInfo(
        "Foliage / background fill", ("inpainting", "show_model"), "inpaint", 1.0, (1.0, 1.0), "centre", 0.15, False
    ),
    "atmosphere": TaskInfo(
        "Atmosphere",
        ("show_model", "inpainting", "img2img"),
        "img2img",
        0.5,
        (0.1, 0.9),
        "centre",
        0.05,
        True,
        look="haze",
    ),
    "time_of_day": TaskInfo(
        "Time of day",
        ("inpainting", "img2img"),
        "img2img",
        0.45,
        (0.2, 0.8),
        "centre",
        0.05,
        False,
        look="grade",
        refusals=(("show_model", "a show model ignores prompts, so it cannot be steered to a time of day"),),
    ),
    # An element (params["element"]) brought to the plate's resolution by the show upscaler, regrained with the
    # plate's grain: one result per seed, so a compositor signs it off without a director's pick.
    "upscale": TaskInfo(
        "Show-grain upscale", ("upscaler",), "upscale", 1.0, (1.0, 1.0), "centre", 0.0, False, look="upscale",
        needs_pick=False, region="element", runner="generation.engine.upscale_task:upscale_element",
        refusals=tuple((kind, "only the show upscaler upscales") for kind in ("show_model", "inpainting", "img2img")),
    ),
    # Roto needs no model: the shot's own (flow, colour) is learned from the key frames in the matte sequence.
    "roto": TaskInfo(
        "Roto",
        (),
        "roto",
        1.0,
        (1.0, 1.0),
        "centre",
        0.0,
        False,
        element="matte",
        needs_pick=False,
        region="keyframes",
        runner="generation.engine.roto_runner:roto_variation",
        seed_varies=False,
    ),
    # Cleanup: what the matte covers is removed, filled from the plate's own frames where they reveal it; the
    # never-revealed rest is generated by the model, once, and carried (generation/engine/cleanup.py).
    "cleanup": TaskInfo(
        "Cleanup / rig removal",
        ("show_model", "inpainting"),
        "inpaint",
        1.0,
        (1.0, 1.0),
        "centre",
        0.0,
        False,
        runner="generation.engine.cleanup_runner:cleanup_variation",
    ),
}
DEPTH_CHANNELS = ("Z", "depth.Z", "depth")  # looked for in this order


class TaskError(ValueError):
    """An unknown task, a model kind that cannot do it, or a parameter out of range."""


def task_info(task: str) -> TaskInfo:
    if task not in TASKS:
        raise TaskError(f"unknown task {task!r}; known: {', '.join(TASKS)}")
    return TASKS[task]


def check_model_kind(task: str, kind: str, model_name: str = "the model") -> None:
    """Refuse a model kind that cannot do ``task``, saying which kinds can."""
    info = task_info(task)
    if kind not in info.kinds:
        why = next((f" ({reason})" for refused, reason in info.refusals if refused == kind), "")
        raise TaskError(
            f"{model_name} is a {kind} model and cannot do {info.label.lower()}{why}; "
            f"that needs a model of kind {' or '.join(info.kinds)}"
        )


def resolve_strength(task: str, strength: float | None) -> float:
    """``strength`` checked against the task's range, or the task's default when None."""
    info = task_info(task)
    if strength is None:
        return info.strength
    if isinstance(strength, bool) or not isinstance(strength, (int, float)):
        raise TaskError(f"strength must be a number, got {strength!r}")
    low, high = info.strength_range
    if not low <= float(strength) <= high:
        if low == high:
            raise TaskError(f"{info.label.lower()} generates the whole region: strength is {low}, not {strength}")
        raise TaskError(f"strength for {info.label.lower()} must be {low}–{high}, got {strength}")
    return float(strength)


def load_runner(task: str) -> Callable:
    """The engine function that makes a variation of ``task`` (its row's ``runner``), imported on first use."""
    info = task_info(task)
    module_name, _, function = info.runner.partition(":")
    try:
        return getattr(importlib.import_module(module_name), function)
    except (ImportError, AttributeError) as exc:
        raise TaskError(f"{info.label.lower()}: runner {info.runner!r} cannot be loaded ({exc})") from exc
