"""Engine fixtures: a tiny seeded show model and a small demo plate, built once per session."""

import pytest

from generation.engine.demo_plate import render_demo_plate
from generation.engine.registry import build_tiny_show_model

SMALL_FIRST, SMALL_LAST = 1001, 1004


@pytest.fixture(scope="session")
def tiny_model_dir(tmp_path_factory) -> str:
    # 32x64 keeps every denoising step cheap; the architecture is the production tiny one.
    out = tmp_path_factory.mktemp("models") / "tiny"
    return build_tiny_show_model(out, seed=5, sample_size=(32, 64), name="tiny-test").path


@pytest.fixture(scope="session")
def small_demo_plate(tmp_path_factory) -> dict:
    out = tmp_path_factory.mktemp("plates")
    return render_demo_plate(str(out), first=SMALL_FIRST, last=SMALL_LAST, width=256, height=144)


@pytest.fixture(scope="session")
def tiny_sd_dir(tmp_path_factory) -> str:
    """A tiny SD-layout inpainting pipeline directory (9-channel UNet, VAE, CLIP text encoder, tokenizer)."""
    from generation.engine.sd_pipeline import build_tiny_sd_pipeline

    out = tmp_path_factory.mktemp("models") / "tiny-sd"
    return build_tiny_sd_pipeline(out, seed=2, sample_size=(32, 64), name="tiny-sd-test").path


@pytest.fixture(scope="session")
def depth_plate(tmp_path_factory) -> dict:
    """A small demo plate with a Z channel (buildings 400, street 400 → 20, sky 10000)."""
    out = tmp_path_factory.mktemp("depth-plate")
    return render_demo_plate(str(out), first=1, last=3, width=160, height=96, pan_px_per_frame=1.0, depth=True)
