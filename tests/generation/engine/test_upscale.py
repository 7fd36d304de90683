"""The show upscaler: trained from plates, resumable, deterministic, refuses what it cannot do."""

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from generation.engine import frames, upscale, upscale_training
from generation.engine.training import TrainingError, TrainingStopped
from tests import realdata


def write_sintel_plates(root: Path, *, frames_per_plate: int = 2, size=(96, 128)) -> Path:
    """Two small EXR plates (ACEScg) cut from real Sintel frames: one folder per plate."""
    sources = sorted(realdata.testdata("sintel-demo").glob("*.png"))
    h, w = size
    for plate in range(2):
        folder = root / f"plate{plate}"
        folder.mkdir(parents=True)
        for i in range(frames_per_plate):
            rgb = upscale.read_plate_rgb(sources[plate * frames_per_plate + i])[100:100 + h, 300:300 + w]
            rgba = np.concatenate([rgb, np.ones((h, w, 1), np.float32)], axis=2)
            frames.write_exr(folder / f"plate.{1001 + i}.exr", rgba, display_window=frames.Window(0, 0, w, h))
    return root


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    return write_sintel_plates(tmp_path_factory.mktemp("upscale-plates"))


def _config(plates: Path, out: Path, steps: int = 4, **extra) -> upscale_training.UpscalerConfig:
    tiny = dict(batch_size=2, patch=32, features=8, layers=1, checkpoint_every=2, threads=1) | extra
    return upscale_training.UpscalerConfig(plates=[str(plates)], out_dir=str(out), steps=steps, **tiny)


@pytest.fixture(scope="module")
def model_dir(plates, tmp_path_factory) -> str:
    return upscale_training.train_upscaler(_config(plates, tmp_path_factory.mktemp("upscaler"))).path


def test_the_card_lists_every_source_frame_with_its_sha256(plates, model_dir) -> None:
    card = upscale.read_upscaler_card(model_dir)
    files = card.manifest["files"]
    assert [f["path"] for f in files] == [f"plate{p}/plate.{1001 + i}.exr" for p in range(2) for i in range(2)]
    assert all(len(f["sha256"]) == 64 and f["licence"] for f in files)
    assert card.factors == (2, 4) and card.kind == "upscaler" and len(card.manifest_hash) == 64
    raw = json.loads((Path(model_dir) / "parallel_track.json").read_text())
    assert raw["training"]["steps"] == 4 and raw["training"]["grain_profiles"] == 2


def test_upscaling_is_deterministic_and_the_size_the_factor_says(plates, model_dir) -> None:
    low = upscale.read_plate_rgb(plates / "plate0" / "plate.1001.exr")[:24, :40]
    for factor in (2, 4):
        first = upscale.upscale(low, model_dir, factor=factor)
        assert first.shape == (24 * factor, 40 * factor, 3) and first.dtype == np.float32
        assert first.tobytes() == upscale.upscale(low, model_dir, factor=factor).tobytes()
    with pytest.raises(upscale.UpscaleError, match="not ×3"):
        upscale.upscale(low, model_dir, factor=3)


def test_an_untrained_upscaler_is_exactly_its_bicubic_base() -> None:
    net = upscale.ShowUpscaler(8, 1).eval()
    low = torch.rand(1, 3, 12, 16)
    base = torch.nn.functional.interpolate(low, scale_factor=4, mode="bicubic", align_corners=False)
    assert torch.equal(net(low, 4), base)


def test_upscale_to_goes_the_rest_of_the_way_with_lanczos(plates, model_dir) -> None:
    low = upscale.read_plate_rgb(plates / "plate0" / "plate.1001.exr")[:24, :40]
    out = upscale.upscale_to(low, 200, 120, model_dir)  # ×4 by the model, then ×1.25 by Lanczos
    assert out.shape == (120, 200, 3)
    assert upscale.upscale_to(low, 60, 36, None).shape == (36, 60, 3)


def test_training_resumes_from_a_checkpoint_as_if_never_stopped(plates, model_dir, tmp_path) -> None:
    config = _config(plates, tmp_path / "stopped")
    calls = []
    with pytest.raises(TrainingStopped) as stopped:
        upscale_training.train_upscaler(config, should_stop=lambda: calls.append(1) or len(calls) > 3)
    assert stopped.value.step == 3
    resumed = []
    card = upscale_training.train_upscaler(config, on_progress=lambda step, total, loss: resumed.append(step))
    assert resumed == [4]  # only the last step was left
    weights = (Path(card.path) / upscale.WEIGHTS_NAME).read_bytes()
    assert weights == (Path(model_dir) / upscale.WEIGHTS_NAME).read_bytes()


def test_it_refuses_bad_plates_and_bad_model_directories(plates, model_dir, tmp_path) -> None:
    with pytest.raises(TrainingError, match="no frames found"):
        upscale_training.train_upscaler(_config(tmp_path / "nothing", tmp_path / "out"))
    with pytest.raises(TrainingError, match="multiple of 4"):
        upscale_training.train_upscaler(_config(plates, tmp_path / "out", patch=30))
    with pytest.raises(upscale.UpscaleError, match="no parallel_track.json"):
        upscale.read_upscaler_card(tmp_path)
    broken = tmp_path / "broken"
    broken.mkdir()
    card = json.loads((Path(model_dir) / "parallel_track.json").read_text())
    (broken / "parallel_track.json").write_text(json.dumps(card))
    with pytest.raises(upscale.UpscaleError, match="no upscaler.safetensors"):
        upscale.read_upscaler_card(broken)
    (broken / "parallel_track.json").write_text(json.dumps(card | {"kind": "show_model"}))
    with pytest.raises(upscale.UpscaleError, match="not an upscaler"):
        upscale.read_upscaler_card(broken)
