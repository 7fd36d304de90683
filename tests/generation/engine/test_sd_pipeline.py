"""The second backend: a real diffusers StableDiffusionInpaintPipeline directory, tiny, built in code."""

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.engine import frames
from generation.engine.inpaint import Cancelled
from generation.engine.registry import CARD_NAME, ModelError, read_model_card
from generation.engine.sd_pipeline import build_tiny_sd_pipeline, load_sd_pipeline
from generation.engine.sequence import frame_path
from generation.engine.variation import VariationSpec, generate_variation

from .conftest import SMALL_FIRST, SMALL_LAST
from .test_variation import _spec as variation_spec

FRAMES = list(range(SMALL_FIRST, SMALL_LAST + 1))


def _spec(plate, model, out_dir, **changes) -> VariationSpec:
    base = {"seed": 7, "task": "set_extension", "prompt": "brick warehouses", "guidance_scale": 2.0, "proxy_width": 96}
    return variation_spec(plate, model, out_dir, **{**base, **changes})


@pytest.fixture(scope="module")
def sd_run(small_demo_plate, tiny_sd_dir, tmp_path_factory):
    events = []
    result = generate_variation(
        _spec(small_demo_plate, tiny_sd_dir, tmp_path_factory.mktemp("sd") / "one"),
        on_progress=lambda *e: events.append(e),
    )
    return result, events


def test_the_directory_is_a_diffusers_inpainting_pipeline_with_our_card(tiny_sd_dir):
    from diffusers import StableDiffusionInpaintPipeline

    card = read_model_card(tiny_sd_dir)
    assert card.kind == "inpainting" and len(card.manifest_hash) == 64
    index = json.loads((Path(tiny_sd_dir) / "model_index.json").read_text())
    assert index["_class_name"] == "StableDiffusionInpaintPipeline"
    assert index["text_encoder"] == ["transformers", "CLIPTextModel"]
    assert index["tokenizer"] == ["transformers", "CLIPTokenizer"]
    pipe, _ = load_sd_pipeline(tiny_sd_dir, torch.device("cpu"), torch.float32)
    assert isinstance(pipe, StableDiffusionInpaintPipeline)
    assert pipe.unet.config.in_channels == 9 and pipe.unet.dtype == torch.float32


def test_it_generates_with_progress_on_every_step(sd_run):
    result, events = sd_run
    assert [e for e in events if e[0] == "denoise"] == [("denoise", i, 3) for i in (1, 2, 3)]
    assert ("frames", len(FRAMES), len(FRAMES)) in events
    assert result.compute_seconds > 0 and np.isfinite(result.flicker_ratio)


def test_pixels_outside_the_matte_are_exactly_the_plate(sd_run, small_demo_plate):
    result, _ = sd_run
    for frame in FRAMES:
        plate = frames.read_channels(frame_path(small_demo_plate["plate"], frame), ("R", "G", "B"))
        matte = frames.read_matte(frame_path(small_demo_plate["matte"], frame))
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, frame))
        outside = matte == 0
        assert np.all(element[outside] == 0)
        over = element[..., :3] + plate * (1 - element[..., 3:])
        assert np.array_equal(over[outside], plate[outside])
        assert np.array_equal(element[..., 3], matte)


def test_it_is_deterministic_and_the_prompt_and_seed_matter(sd_run, small_demo_plate, tiny_sd_dir, tmp_path):
    result, _ = sd_run
    again = generate_variation(_spec(small_demo_plate, tiny_sd_dir, tmp_path / "again"))
    for frame in FRAMES:
        a, b = frame_path(result.exr_pattern, frame), frame_path(again.exr_pattern, frame)
        assert Path(a).read_bytes() == Path(b).read_bytes()
    first, _ = frames.read_rgba(frame_path(result.exr_pattern, SMALL_FIRST))
    for changes in ({"seed": 8}, {"prompt": "pine forest"}):
        other = generate_variation(_spec(small_demo_plate, tiny_sd_dir, tmp_path / str(changes), steps=1, **changes))
        assert not np.array_equal(first, frames.read_rgba(frame_path(other.exr_pattern, SMALL_FIRST))[0])


@pytest.mark.parametrize("k", [0, 1])
def test_cancelling_stops_within_one_step_and_leaves_no_files(small_demo_plate, tiny_sd_dir, tmp_path, k):
    denoised = []

    def on_progress(stage, i, n):
        if stage == "denoise":
            denoised.append(i)

    with pytest.raises(Cancelled):
        generate_variation(
            _spec(small_demo_plate, tiny_sd_dir, tmp_path / "cancelled", steps=4),
            on_progress=on_progress,
            should_cancel=lambda: len(denoised) >= k,
        )
    assert denoised == list(range(1, k + 1))
    assert not (tmp_path / "cancelled").exists()


@pytest.mark.parametrize("missing", ["text_encoder", "tokenizer"])
def test_a_directory_that_would_need_the_network_is_refused(tiny_sd_dir, tmp_path, missing):
    model = tmp_path / "partial"
    shutil.copytree(tiny_sd_dir, model, ignore=shutil.ignore_patterns(missing))
    with pytest.raises(ModelError, match="need the network"):
        load_sd_pipeline(model, torch.device("cpu"), torch.float32)


def test_a_card_whose_unet_does_not_fit_its_kind_is_refused(tiny_sd_dir, tmp_path):
    model = tmp_path / "mislabelled"
    shutil.copytree(tiny_sd_dir, model)
    card = json.loads((model / CARD_NAME).read_text())
    (model / CARD_NAME).write_text(json.dumps({**card, "kind": "img2img"}))
    with pytest.raises(ModelError):
        load_sd_pipeline(model, torch.device("cpu"), torch.float32)


def test_an_img2img_directory_does_a_time_of_day(small_demo_plate, tmp_path):
    model = build_tiny_sd_pipeline(tmp_path / "img2img", kind="img2img", seed=4, name="tiny-img2img").path
    spec = _spec(
        small_demo_plate,
        model,
        tmp_path / "tod",
        task="time_of_day",
        strength=0.5,
        steps=2,
        matte_pattern=None,
        rect=(40, 20, 120, 60),
        prompt="golden hour",
    )
    result = generate_variation(spec)
    plate = frames.read_channels(frame_path(small_demo_plate["plate"], SMALL_LAST), ("R", "G", "B"))
    element, _ = frames.read_rgba(frame_path(result.exr_pattern, SMALL_LAST))
    inside = element[..., 3] == 1
    assert inside.sum() == 120 * 60 and not np.array_equal(element[inside][:, :3], plate[inside])
    assert np.all(element[~inside] == 0)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_runs_in_fp16_on_cuda_and_keeps_the_plate(small_demo_plate, tiny_sd_dir, tmp_path):
    pipe, _ = load_sd_pipeline(tiny_sd_dir, torch.device("cuda"), torch.float16)
    assert pipe.unet.dtype == torch.float16 and pipe.vae.dtype == torch.float16
    result = generate_variation(_spec(small_demo_plate, tiny_sd_dir, tmp_path / "cuda", device="cuda"))
    again = generate_variation(_spec(small_demo_plate, tiny_sd_dir, tmp_path / "cuda-again", device="cuda"))
    for frame in FRAMES:
        plate = frames.read_channels(frame_path(small_demo_plate["plate"], frame), ("R", "G", "B"))
        element, _ = frames.read_rgba(frame_path(result.exr_pattern, frame))
        outside = frames.read_matte(frame_path(small_demo_plate["matte"], frame)) == 0
        over = element[..., :3] + plate * (1 - element[..., 3:])
        assert np.array_equal(over[outside], plate[outside]) and np.isfinite(element).all()
        a, b = frame_path(result.exr_pattern, frame), frame_path(again.exr_pattern, frame)
        assert Path(a).read_bytes() == Path(b).read_bytes()
