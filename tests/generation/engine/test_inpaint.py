import copy

import pytest
import torch

from generation.engine.inpaint import Cancelled, masked_denoise
from generation.engine.registry import load_show_model


@pytest.fixture(scope="module")
def model(tiny_model_dir):
    unet, scheduler, _ = load_show_model(tiny_model_dir, torch.device("cpu"), torch.float32)
    return unet, scheduler


@pytest.fixture
def inputs():
    generator = torch.Generator().manual_seed(0)
    known = torch.rand(1, 3, 32, 64, generator=generator) * 2 - 1
    mask = torch.zeros(1, 1, 32, 64)
    mask[..., :16, :] = 1
    return known, mask


def test_it_is_deterministic_and_keeps_the_known_region_exactly(model, inputs):
    unet, scheduler = model
    known, mask = inputs
    before = copy.deepcopy(scheduler.config)
    a = masked_denoise(unet, scheduler, known=known, mask=mask, seed=11, steps=3)
    b = masked_denoise(unet, scheduler, known=known, mask=mask, seed=11, steps=3)
    c = masked_denoise(unet, scheduler, known=known, mask=mask, seed=12, steps=3)
    assert a.shape == (1, 3, 32, 64) and a.dtype == torch.float32
    assert torch.equal(a, b)
    assert not torch.equal(a, c)
    assert torch.equal(a[..., 16:, :], known[..., 16:, :])
    assert scheduler.num_inference_steps is None and scheduler.config == before


def test_it_stops_within_one_step(model, inputs):
    unet, scheduler = model
    known, mask = inputs
    steps_run, reported = [], []
    hook = unet.register_forward_hook(lambda *args: steps_run.append(1))
    try:
        with pytest.raises(Cancelled):
            masked_denoise(
                unet,
                scheduler,
                known=known,
                mask=mask,
                seed=1,
                steps=5,
                progress=lambda i, n: reported.append((i, n)),
                should_cancel=lambda: len(reported) >= 2,
            )
    finally:
        hook.remove()
    assert len(steps_run) == 2
    assert reported == [(1, 5), (2, 5)]


@pytest.mark.parametrize(
    "known_shape, mask_shape, message",
    [
        ((1, 3, 30, 64), (1, 1, 30, 64), "multiples of 4"),
        ((1, 3, 32, 64), (1, 1, 32, 60), "mask"),
        ((3, 32, 64), (1, 1, 32, 64), "known"),
    ],
)
def test_it_rejects_bad_shapes(model, known_shape, mask_shape, message):
    unet, scheduler = model
    with pytest.raises(ValueError, match=message):
        masked_denoise(unet, scheduler, known=torch.zeros(known_shape), mask=torch.zeros(mask_shape), seed=0)


def test_it_rejects_known_outside_minus_one_to_one(model, inputs):
    unet, scheduler = model
    known, mask = inputs
    with pytest.raises(ValueError, match=r"\[-1, 1\]"):
        masked_denoise(unet, scheduler, known=known * 3, mask=mask, seed=0, steps=1)


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_it_runs_in_float16_on_cuda_with_the_cpu_seed(tiny_model_dir, inputs):
    unet, scheduler, _ = load_show_model(tiny_model_dir, torch.device("cuda"), torch.float16)
    known, mask = inputs
    out = masked_denoise(unet, scheduler, known=known, mask=mask, seed=3, steps=3)
    assert out.device.type == "cpu" and torch.isfinite(out).all()
    assert torch.equal(out[..., 16:, :], known[..., 16:, :])


def test_strength_runs_only_the_last_steps_from_the_noised_known_image(model, inputs):
    unet, scheduler = model
    known, mask = inputs
    seen = []
    light = masked_denoise(
        unet,
        scheduler,
        known=known,
        mask=mask,
        seed=5,
        steps=8,
        strength=0.25,
        progress=lambda i, n: seen.append((i, n)),
    )
    heavy = masked_denoise(unet, scheduler, known=known, mask=mask, seed=5, steps=8, strength=0.75)
    assert seen == [(1, 2), (2, 2)]
    assert torch.equal(light[..., 16:, :], known[..., 16:, :]) and torch.equal(heavy[..., 16:, :], known[..., 16:, :])
    # Image-to-image keeps the region's structure: less strength, closer to what was there.
    region = (..., slice(0, 16), slice(None))
    assert (light[region] - known[region]).abs().mean() < (heavy[region] - known[region]).abs().mean()


@pytest.mark.parametrize("strength", [0.0, 1.5, 0.1])
def test_it_rejects_a_strength_that_runs_no_step(model, inputs, strength):
    unet, scheduler = model
    known, mask = inputs
    with pytest.raises(ValueError, match="strength"):
        masked_denoise(unet, scheduler, known=known, mask=mask, seed=0, steps=5, strength=strength)
