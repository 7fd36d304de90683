"""The second backend: a Stable-Diffusion-style pipeline directory, what a studio fine-tunes.

An ``inpainting`` model directory is diffusers' ``StableDiffusionInpaintPipeline`` layout (``unet/``
a 9-input-channel ``UNet2DConditionModel``: 4 latent + 1 mask + 4 masked-image latent; ``vae/``
``AutoencoderKL``; ``text_encoder/`` ``CLIPTextModel``; ``tokenizer/`` ``CLIPTokenizer``;
``scheduler/``; ``model_index.json``) plus our ``parallel_track.json`` card. An ``img2img`` directory
is the same with a 4-channel UNet (``StableDiffusionImg2ImgPipeline``). Cards of these models use a
display-referred ``colour_encoding`` such as ``sRGB - Texture``.

Loads only from a local directory (``HF_HUB_OFFLINE`` is set by :mod:`registry`, and every load passes
``local_files_only=True``); fp16 on CUDA, fp32 on CPU (:mod:`device`). No safety checker: it is a
separate download and these are the show's own elements.
"""

from __future__ import annotations

import inspect
import json
import os
from collections.abc import Callable
from pathlib import Path

import torch

from generation.engine.inpaint import Cancelled
from generation.engine.registry import CARD_NAME, ModelCard, ModelError, _check_manifest, cached_load, read_model_card

SD_KINDS = ("inpainting", "img2img")
SD_ENCODING = "sRGB - Texture"  # its name in every built-in ACES config (an alias from v2.2.0 on)
COMPONENTS = ("unet", "vae", "text_encoder", "tokenizer", "scheduler")


def _pipeline_class(kind: str):
    from diffusers import StableDiffusionImg2ImgPipeline, StableDiffusionInpaintPipeline

    return StableDiffusionInpaintPipeline if kind == "inpainting" else StableDiffusionImg2ImgPipeline


def check_local(root: Path) -> None:
    """Every component must be on disk: anything missing would be fetched from a hub."""
    index = root / "model_index.json"
    if not index.is_file():
        raise ModelError(f"{root} has no model_index.json; models load only from local directories")
    missing = [name for name in COMPONENTS if not (root / name).is_dir()]
    if missing:
        raise ModelError(
            f"{root} lacks {', '.join(missing)}: loading it would need the network, "
            "and models load only from local directories"
        )


def load_sd_pipeline(path: str | os.PathLike, device: torch.device, dtype: torch.dtype):
    """``(pipeline, card)`` from a local inpainting / img2img directory, on ``device`` in ``dtype``.

    Cached with the show models (the last two loads). Callers must not change the pipeline's
    scheduler configuration; every call gets its own scheduler copy in :func:`sd_denoise`.
    """
    card = read_model_card(path)
    if card.kind not in SD_KINDS:
        raise ModelError(f"{card.path} is a {card.kind!r} model, not one of {SD_KINDS}")
    root = Path(card.path)
    check_local(root)

    def load() -> tuple:
        try:
            pipe = _pipeline_class(card.kind).from_pretrained(
                root,
                local_files_only=True,
                dtype=dtype,
                safety_checker=None,
                feature_extractor=None,
                requires_safety_checker=False,
            )
        except (OSError, ValueError, TypeError) as exc:
            raise ModelError(f"{root}: cannot load the {card.kind} pipeline offline ({exc})") from exc
        expected = 9 if card.kind == "inpainting" else 4
        if pipe.unet.config.in_channels != expected:
            raise ModelError(
                f"{root}: a {card.kind} UNet takes {expected} input channels, this one {pipe.unet.config.in_channels}"
            )
        factor = pipe.vae_scale_factor
        if any(v % factor for v in card.sample_size):
            raise ModelError(f"{root}: sample_size {list(card.sample_size)} is not a multiple of the VAE's {factor}")
        pipe = pipe.to(device)
        pipe.set_progress_bar_config(disable=True)
        for module in (pipe.unet, pipe.vae, pipe.text_encoder):
            module.eval().requires_grad_(False)
        return pipe, card

    return cached_load(card, torch.device(device), dtype, load)


def sd_denoise(
    pipe,
    *,
    known: torch.Tensor,
    mask: torch.Tensor,
    prompt: str,
    seed: int,
    steps: int,
    strength: float = 1.0,
    guidance_scale: float = 7.5,
    progress: Callable[[int, int], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
) -> torch.Tensor:
    """Run the pipeline on a card; same contract as :func:`inpaint.masked_denoise`.

    ``known`` (1, 3, h, w) in [-1, 1] in the card's encoding, ``mask`` (1, 1, h, w), 1 = generate.
    Noise comes from a CPU generator seeded with ``seed``; ``should_cancel()`` is asked before the
    first step and after every step (through ``callback_on_step_end``), ``progress(i, n)`` after each.
    The VAE round trip changes every pixel, so the known region is put back exactly afterwards.
    Returns float32 (1, 3, h, w) on the CPU in [-1, 1].
    """
    h, w = known.shape[2:]
    if should_cancel is not None and should_cancel():
        raise Cancelled(f"cancelled before denoising step 1 of {steps}")

    def on_step_end(pipeline, i, t, callback_kwargs):
        if progress is not None:
            progress(i + 1, getattr(pipeline, "num_timesteps", steps))
        if should_cancel is not None and should_cancel():
            raise Cancelled(f"cancelled after denoising step {i + 1}")
        return callback_kwargs

    device, dtype = pipe.unet.device, pipe.unet.dtype
    image = ((known.float() + 1.0) / 2.0).clamp(0.0, 1.0).to(device, dtype)
    kwargs = dict(
        prompt=prompt,
        image=image,
        height=h,
        width=w,
        num_inference_steps=steps,
        strength=strength,
        guidance_scale=guidance_scale,
        generator=torch.Generator("cpu").manual_seed(seed),
        output_type="pt",
        callback_on_step_end=on_step_end,
        mask_image=mask.to(device, dtype),
    )
    accepted = _call_parameters(pipe)  # the img2img pipeline takes no mask, height or width
    with torch.inference_mode():
        out = pipe(**{k: v for k, v in kwargs.items() if k in accepted}).images
    out = (out.float().cpu() * 2.0 - 1.0).clamp(-1.0, 1.0)
    keep = (mask <= 0).expand_as(out)
    out[keep] = known.float().cpu()[keep]
    return out


def _call_parameters(pipe) -> set[str]:
    return set(inspect.signature(type(pipe).__call__).parameters)


def _tiny_tokenizer(folder: Path):
    """A CLIPTokenizer over letters only, written from a generated vocab.json and merges.txt."""
    from transformers import CLIPTokenizer

    vocab = {"<|startoftext|>": 0, "<|endoftext|>": 1}
    for ch in "abcdefghijklmnopqrstuvwxyz0123456789":
        vocab[ch] = len(vocab)
        vocab[ch + "</w>"] = len(vocab)
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "vocab.json").write_text(json.dumps(vocab), encoding="utf-8")
    (folder / "merges.txt").write_text("#version: 0.2\n", encoding="utf-8")
    return CLIPTokenizer(
        vocab_file=str(folder / "vocab.json"), merges_file=str(folder / "merges.txt"), model_max_length=16
    ), len(vocab)


def build_tiny_sd_pipeline(
    out_dir: str | os.PathLike,
    *,
    kind: str = "inpainting",
    seed: int = 0,
    sample_size: tuple[int, int] = (32, 64),
    name: str = "tiny-sd-inpainting",
    manifest: dict | None = None,
    created_by: str = "build_tiny_sd_pipeline",
) -> ModelCard:
    """Write a seeded, randomly initialised, ~1 M-parameter SD-layout pipeline and its card to ``out_dir``.

    Same layout and classes as a studio's fine-tuned Stable Diffusion inpainting (or img2img)
    directory, at toy size: a 2-level UNet with cross-attention, a 2-level VAE (scale factor 2), a
    2-layer CLIP text encoder and a letters-only tokenizer. For tests and development: it makes noise.
    """
    from diffusers import AutoencoderKL, DDIMScheduler, UNet2DConditionModel
    from transformers import CLIPTextConfig, CLIPTextModel

    if kind not in SD_KINDS:
        raise ValueError(f"kind must be one of {SD_KINDS}, not {kind!r}")
    manifest = {"files": []} if manifest is None else manifest
    root = Path(out_dir)
    _check_manifest(manifest, root)
    root.mkdir(parents=True, exist_ok=True)
    scratch = root / ".tokenizer-source"
    tokenizer, vocab_size = _tiny_tokenizer(scratch)
    with torch.random.fork_rng(devices=[]):  # the modules initialise from the global generator
        torch.manual_seed(seed)
        unet = UNet2DConditionModel(
            sample_size=max(sample_size) // 2,  # a default only: every call passes height and width
            in_channels=9 if kind == "inpainting" else 4,
            out_channels=4,
            layers_per_block=1,
            block_out_channels=(32, 64),
            down_block_types=("CrossAttnDownBlock2D", "DownBlock2D"),
            up_block_types=("UpBlock2D", "CrossAttnUpBlock2D"),
            cross_attention_dim=32,
            attention_head_dim=4,
            norm_num_groups=8,
        )
        vae = AutoencoderKL(
            in_channels=3,
            out_channels=3,
            down_block_types=("DownEncoderBlock2D",) * 2,
            up_block_types=("UpDecoderBlock2D",) * 2,
            block_out_channels=(16, 32),
            latent_channels=4,
            layers_per_block=1,
            norm_num_groups=8,
            sample_size=max(sample_size),
        )
        text_encoder = CLIPTextModel(
            CLIPTextConfig(
                vocab_size=vocab_size,
                hidden_size=32,
                intermediate_size=64,
                num_hidden_layers=2,
                num_attention_heads=4,
                max_position_embeddings=16,
                bos_token_id=0,
                eos_token_id=1,
                pad_token_id=1,
                projection_dim=32,
            )
        )
    scheduler = DDIMScheduler(
        num_train_timesteps=1000,
        beta_schedule="scaled_linear",
        beta_start=0.00085,
        beta_end=0.012,
        clip_sample=False,
        set_alpha_to_one=False,
        steps_offset=1,
    )
    pipe = _pipeline_class(kind)(
        unet=unet,
        vae=vae,
        text_encoder=text_encoder,
        tokenizer=tokenizer,
        scheduler=scheduler,
        safety_checker=None,
        feature_extractor=None,
        requires_safety_checker=False,
    )
    pipe.save_pretrained(root, safe_serialization=True)
    for leftover in sorted(scratch.iterdir()):
        leftover.unlink()
    scratch.rmdir()
    card = {
        "name": name,
        "kind": kind,
        "sample_size": [int(sample_size[0]), int(sample_size[1])],
        "colour_encoding": SD_ENCODING,
        "created_by": created_by,
        "training_manifest": manifest,
    }
    (root / CARD_NAME).write_text(json.dumps(card, indent=2) + "\n", encoding="utf-8")
    return read_model_card(root)
