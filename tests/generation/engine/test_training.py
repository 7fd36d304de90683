"""Training a show model: the look-dev manifest, the saved model, and resumable checkpoints (no Django)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from generation.engine import registry
from generation.engine.demo_plate import APPROVAL_NOTE, render_lookdev_skies
from generation.engine.training import (
    TrainingConfig,
    TrainingError,
    TrainingStopped,
    collect_lookdev,
    sample_skies,
    train_show_model,
)


@pytest.fixture(scope="module")
def lookdev(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("lookdev")
    render_lookdev_skies(root, count=6, size=(20, 40), seed=3)
    return root


def _config(lookdev: Path, out: Path, **changes) -> TrainingConfig:
    """A model small enough to train a few steps in well under a second each."""
    config = TrainingConfig(lookdev_dir=str(lookdev), out_dir=str(out), sample_size=(16, 32), steps=6,
                            batch_size=2, block_out_channels=(8, 16), checkpoint_every=2, warmup_steps=2,
                            threads=1, name="tiny-trained")
    return replace(config, **changes)


def _train(config: TrainingConfig, stop_after: int | None = None,
           seen: list | None = None) -> tuple[list[tuple[int, float]], registry.ModelCard]:
    """Train, recording (step, loss); with ``stop_after``, ask to stop once that many steps ran."""
    seen = [] if seen is None else seen
    card = train_show_model(config, on_progress=lambda step, total, loss: seen.append((step, loss)),
                            should_stop=(lambda: len(seen) >= stop_after) if stop_after else None)
    return seen, card


def test_collect_lookdev_lists_every_exr_with_its_sha256_and_licence(lookdev: Path) -> None:
    images = collect_lookdev(lookdev)
    assert [Path(img.path).name for img in images] == sorted(p.name for p in lookdev.glob("*.exr"))
    assert len(images) == 6
    for img in images:
        assert img.sha256 == hashlib.sha256(Path(img.path).read_bytes()).hexdigest()
        assert img.licence == APPROVAL_NOTE


def test_it_refuses_look_dev_without_a_licence(lookdev: Path, tmp_path: Path) -> None:
    for exr in lookdev.glob("*.exr"):
        (tmp_path / exr.name).write_bytes(exr.read_bytes())
    with pytest.raises(TrainingError, match="approvals.json"):
        collect_lookdev(tmp_path)
    approvals = json.loads((lookdev / "approvals.json").read_text())
    missing = sorted(approvals)[2]
    del approvals[missing]
    (tmp_path / "LICENSES.json").write_text(json.dumps(approvals))
    with pytest.raises(TrainingError, match=f"1 look-dev image.*{missing}"):
        collect_lookdev(tmp_path)


def test_it_trains_a_loadable_model_whose_card_lists_every_source_file(lookdev: Path, tmp_path: Path) -> None:
    losses, card = _train(_config(lookdev, tmp_path / "model", steps=3))
    assert [step for step, _ in losses] == [1, 2, 3] and all(np.isfinite(loss) for _, loss in losses)
    assert card == registry.read_model_card(tmp_path / "model")
    files = {entry["path"]: entry for entry in card.manifest["files"]}
    assert sorted(files) == sorted(p.name for p in lookdev.glob("*.exr"))
    for name, entry in files.items():
        assert entry["sha256"] == hashlib.sha256((lookdev / name).read_bytes()).hexdigest()
        assert entry["licence"] == APPROVAL_NOTE
    assert card.manifest["recipe"]["seed"] == 0 and card.manifest["recipe"]["steps"] == 3
    assert card.manifest_hash == registry.manifest_hash(card.manifest)
    assert (card.kind, card.sample_size, card.colour_encoding) == ("show_model", (16, 32), "ACEScct")
    unet, scheduler, _ = registry.load_show_model(card.path, torch.device("cpu"), torch.float32)
    assert scheduler.config.prediction_type == "sample" and scheduler.config.rescale_betas_zero_snr
    assert scheduler.config.timestep_spacing == "trailing"
    skies = sample_skies(card.path, count=2, seed=5, steps=3)
    assert skies.shape == (2, 16, 32, 3) and np.isfinite(skies).all()


def test_the_same_look_dev_and_recipe_give_the_same_manifest_hash(lookdev: Path, tmp_path: Path) -> None:
    _, first = _train(_config(lookdev, tmp_path / "a", steps=1))
    _, second = _train(_config(lookdev, tmp_path / "b", steps=1))
    _, other = _train(_config(lookdev, tmp_path / "c", steps=1, seed=1))
    assert first.manifest_hash == second.manifest_hash != other.manifest_hash


def test_a_stopped_run_resumes_and_ends_bit_identical_to_an_uninterrupted_one(lookdev: Path, tmp_path: Path) -> None:
    whole, card = _train(_config(lookdev, tmp_path / "whole"))

    before: list[tuple[int, float]] = []
    with pytest.raises(TrainingStopped) as stopped:
        _train(_config(lookdev, tmp_path / "parts"), stop_after=3, seen=before)
    assert stopped.value.step == 3
    assert Path(stopped.value.checkpoint).name == "step-000003"
    after, resumed = _train(_config(lookdev, tmp_path / "parts"))

    assert [step for step, _ in after] == [4, 5, 6]  # continued from the checkpoint, not from scratch
    assert before + after == whole  # the same loss at every step, exactly
    weights = "unet/diffusion_pytorch_model.safetensors"
    a, b = load_file(str(Path(card.path) / weights)), load_file(str(Path(resumed.path) / weights))
    assert a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    assert resumed.manifest_hash == card.manifest_hash


def test_it_keeps_only_the_newest_checkpoints(lookdev: Path, tmp_path: Path) -> None:
    _train(_config(lookdev, tmp_path / "m", steps=5, checkpoint_every=1, keep_checkpoints=2))
    assert sorted(p.name for p in (tmp_path / "m" / "checkpoints").iterdir()) == ["step-000004", "step-000005"]


def test_it_refuses_to_resume_a_checkpoint_of_another_recipe(lookdev: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingStopped):
        _train(_config(lookdev, tmp_path / "m"), stop_after=2)
    with pytest.raises(TrainingError, match="another look-dev set or recipe"):
        _train(_config(lookdev, tmp_path / "m", lr=5e-4))
    losses, _ = _train(_config(lookdev, tmp_path / "m", lr=5e-4, resume=False, steps=2))
    assert [step for step, _ in losses] == [1, 2]


def test_fp16_weights_load_as_float32(lookdev: Path, tmp_path: Path) -> None:
    _, card = _train(_config(lookdev, tmp_path / "m", steps=1, save_fp16=True))
    stored = load_file(str(Path(card.path) / "unet" / "diffusion_pytorch_model.safetensors"))
    assert {t.dtype for t in stored.values()} == {torch.float16}
    unet, _, _ = registry.load_show_model(card.path, torch.device("cpu"), torch.float32)
    assert unet.dtype == torch.float32


def test_it_checks_the_config(lookdev: Path, tmp_path: Path) -> None:
    with pytest.raises(TrainingError, match="multiples of 4"):
        train_show_model(_config(lookdev, tmp_path, sample_size=(18, 32)))
    with pytest.raises(TrainingError, match="steps"):
        train_show_model(_config(lookdev, tmp_path, steps=0))
    with pytest.raises(TrainingError, match="prediction_type"):
        train_show_model(_config(lookdev, tmp_path, prediction_type="epsilon"))


def test_a_run_can_start_from_a_show_models_weights_and_its_recipe_names_them(lookdev: Path, tmp_path: Path) -> None:
    _, base = _train(_config(lookdev, tmp_path / "base", steps=2))
    config = _config(lookdev, tmp_path / "tuned", steps=2, init_from=base.path)
    assert config.recipe()["init_from_manifest_sha256"] == base.manifest_hash
    assert "init_from_manifest_sha256" not in _config(lookdev, tmp_path / "x").recipe()  # old recipes unchanged
    losses_from_base, tuned = _train(config)
    losses_from_scratch, _ = _train(_config(lookdev, tmp_path / "scratch", steps=2))
    assert losses_from_base[0][1] != losses_from_scratch[0][1]  # the same batch, other starting weights
    assert tuned.manifest["recipe"]["init_from_manifest_sha256"] == base.manifest_hash
    with pytest.raises(TrainingError, match="cannot start from"):
        train_show_model(_config(lookdev, tmp_path / "bad", block_out_channels=(8, 24), init_from=base.path))
