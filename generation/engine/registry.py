"""Local model directories: diffusers-format weights plus a Parallel Track model card.

A model directory holds ``unet/``, ``scheduler/``, ``model_index.json`` (so it also loads as a
``DDIMPipeline``) and ``parallel_track.json``::

    {"name": "...", "kind": "show_model", "sample_size": [h, w], "colour_encoding": "ACEScct",
     "created_by": "...", "training_manifest": {"files": [{"path", "sha256", "licence"}]}}

Models load only from local directories: the Hugging Face hub is switched off before diffusers is
imported, and every ``from_pretrained`` passes ``local_files_only=True``.
"""

from __future__ import annotations

import os

os.environ["HF_HUB_OFFLINE"] = "1"  # before any diffusers / huggingface_hub import
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")  # see device.py; before torch

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import torch

from generation.engine import frame_cache
from generation.engine.model_cards import CARD_NAME, card_manifest_hash, card_shows, manifest_hash  # noqa: F401

if TYPE_CHECKING:
    from diffusers import DDIMScheduler, UNet2DModel

KINDS = ("show_model", "inpainting", "img2img", "upscaler")
_CACHE_SIZE = 2
_cache = frame_cache.Lru(_CACHE_SIZE)  # loaded models: (unet, scheduler, card) or a pipeline, by path and weights


class ModelError(ValueError):
    """A model directory that is missing, malformed or not loadable offline."""


@dataclass(frozen=True)
class ModelCard:
    path: str
    name: str
    kind: str
    sample_size: tuple[int, int]
    colour_encoding: str
    manifest: dict
    manifest_hash: str
    created_by: str = ""


def _check_manifest(manifest: Any, where: Path) -> None:
    if not isinstance(manifest, dict) or not isinstance(manifest.get("files"), list):
        raise ModelError(f"{where}: training_manifest must be an object with a 'files' list")
    for entry in manifest["files"]:
        if not isinstance(entry, dict) or not all(
            isinstance(entry.get(k), str) and entry[k] for k in ("path", "sha256", "licence")
        ):
            raise ModelError(f"{where}: each manifest file needs non-empty path, sha256 and licence")


def read_model_card(path: str | os.PathLike) -> ModelCard:
    """Read and validate ``<path>/parallel_track.json``; ModelError on anything unusable."""
    root = Path(path)
    if not root.is_dir():
        raise ModelError(f"model directory {root} does not exist")
    card_path = root / CARD_NAME
    if not card_path.is_file():
        raise ModelError(f"{root} has no {CARD_NAME} model card")
    try:
        raw = json.loads(card_path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise ModelError(f"{card_path}: unreadable model card ({exc})") from exc
    if not isinstance(raw, dict):
        raise ModelError(f"{card_path}: model card must be a JSON object")
    name, kind, encoding = raw.get("name"), raw.get("kind"), raw.get("colour_encoding")
    if not isinstance(name, str) or not name:
        raise ModelError(f"{card_path}: 'name' must be a non-empty string")
    if kind not in KINDS:
        raise ModelError(f"{card_path}: 'kind' must be one of {KINDS}, not {kind!r}")
    if not isinstance(encoding, str) or not encoding:
        raise ModelError(f"{card_path}: 'colour_encoding' must be a colour space name")
    size = raw.get("sample_size")
    if (
        not isinstance(size, list)
        or len(size) != 2
        or not all(isinstance(v, int) and not isinstance(v, bool) and v > 0 and v % 4 == 0 for v in size)
    ):
        raise ModelError(f"{card_path}: 'sample_size' must be [h, w], positive multiples of 4")
    created_by = raw.get("created_by", "")
    if not isinstance(created_by, str):
        raise ModelError(f"{card_path}: 'created_by' must be a string")
    manifest = raw.get("training_manifest")
    _check_manifest(manifest, card_path)
    if not (root / "unet" / "config.json").is_file():
        hint = ""
        index = root / "model_index.json"
        if index.is_file():
            hint = " (model_index.json without local weights would need the network)"
        raise ModelError(f"{root} has no unet/config.json{hint}; models load only from local directories")
    return ModelCard(
        path=str(root.resolve()),
        name=name,
        kind=kind,
        sample_size=(size[0], size[1]),
        colour_encoding=encoding,
        manifest=manifest,
        manifest_hash=manifest_hash(manifest),
        created_by=created_by,
    )


def _weights_stamp(root: Path) -> tuple:
    # Rebuilding a model in place must not hand back stale weights from the cache.
    return tuple(
        (p.name, p.stat().st_mtime_ns, p.stat().st_size) for p in sorted((root / "unet").glob("*")) if p.is_file()
    )


def load_show_model(
    path: str | os.PathLike, device: torch.device, dtype: torch.dtype
) -> tuple[UNet2DModel, DDIMScheduler, ModelCard]:
    """Load ``(unet, scheduler, card)`` from a local show-model directory, in eval mode.

    The UNet's weights are cast to ``dtype`` on ``device`` whatever precision they were stored in.
    The last two loads are cached by (path, device, dtype); callers must not mutate the returned
    scheduler (step a deep copy).
    """
    card = read_model_card(path)
    if card.kind != "show_model":
        raise ModelError(f"{card.path} is a {card.kind!r} model, not a show_model")
    root = Path(card.path)

    def load() -> tuple:
        from diffusers import DDIMScheduler, UNet2DModel

        try:
            unet = UNet2DModel.from_pretrained(
                root, subfolder="unet", local_files_only=True, torch_dtype=dtype, low_cpu_mem_usage=False
            )
            scheduler = DDIMScheduler.from_pretrained(root, subfolder="scheduler", local_files_only=True)
        except (OSError, ValueError) as exc:
            raise ModelError(f"{root}: cannot load the show model offline ({exc})") from exc
        unet = (unet.to(device) if unet.dtype == dtype else unet.to(device=device, dtype=dtype)).eval()
        unet.requires_grad_(False)
        return unet, scheduler, card

    return cached_load(card, torch.device(device), dtype, load)


def cached_load(card: ModelCard, device: torch.device, dtype: torch.dtype, load) -> tuple:
    """``load()``'s result, cached (the last two) by model path, device, dtype and weight files."""
    key = (card.path, str(device), str(dtype), _weights_stamp(Path(card.path)))
    return _cache.get_or_make(key, load)


def clear_model_cache() -> None:
    _cache.clear()


def build_tiny_show_model(
    out_dir: str | os.PathLike,
    *,
    seed: int = 0,
    sample_size: tuple[int, int] = (64, 128),
    name: str = "tiny-show-model",
    manifest: dict | None = None,
    created_by: str = "build_tiny_show_model",
    shows: tuple[str, ...] = (),
) -> ModelCard:
    """Write a seeded, randomly initialised ~1.06 M-parameter pixel-space show model to ``out_dir``.

    For tests and development: it makes structured noise, not skies. Loads with
    :func:`load_show_model` and as a diffusers ``DDIMPipeline``.
    """
    from diffusers import DDIMPipeline, DDIMScheduler, UNet2DModel

    manifest = {"files": []} if manifest is None else manifest
    _check_manifest(manifest, Path(out_dir))
    with torch.random.fork_rng(devices=[]):  # diffusers initialises from the global generator
        torch.manual_seed(seed)
        unet = UNet2DModel(
            sample_size=tuple(sample_size),
            in_channels=3,
            out_channels=3,
            layers_per_block=1,
            block_out_channels=(32, 64, 64),
            down_block_types=("DownBlock2D",) * 3,
            up_block_types=("UpBlock2D",) * 3,
        )
    scheduler = DDIMScheduler(num_train_timesteps=1000)
    root = Path(out_dir)
    root.mkdir(parents=True, exist_ok=True)
    DDIMPipeline(unet=unet, scheduler=scheduler).save_pretrained(root, safe_serialization=True)
    card = {
        "name": name,
        "kind": "show_model",
        "sample_size": [int(sample_size[0]), int(sample_size[1])],
        "colour_encoding": "ACEScct",
        "created_by": created_by,
        "training_manifest": manifest,
    } | ({"shows": list(shows)} if shows else {})
    (root / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return read_model_card(root)
