"""train_upscaler registers a pending upscaler (nobody can use it before a supervisor approves it) and resumes."""

import os
import signal
from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation import services
from generation.engine.upscale import read_upscaler_card
from generation.management.commands import train_upscaler as command
from generation.models import GenerationModel, ModelKind, ModelStatus
from portal.errors import Forbidden
from tests.generation.engine.test_upscale import write_sintel_plates

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def plates(tmp_path_factory) -> Path:
    return write_sintel_plates(tmp_path_factory.mktemp("plates"))


def _train(plates: Path, out: Path, steps: int = 2, **extra) -> None:
    call_command("train_upscaler", plates=[str(plates)], out=str(out), name="tst-upscaler", show="tst", steps=steps,
                 batch_size=2, patch=32, features=8, layers=1, checkpoint_every=2, threads=1, **extra)


def test_the_upscaler_is_registered_pending_and_refused_until_approved(show, supervisor, plates, tmp_path,
                                                                        capsys) -> None:
    _train(plates, tmp_path / "up")
    model = GenerationModel.objects.get(name="tst-upscaler")
    card = read_upscaler_card(tmp_path / "up")
    assert model.kind == ModelKind.UPSCALER and model.status == ModelStatus.PENDING
    assert model.manifest_hash == card.manifest_hash and model.path == card.path
    assert all(f["licence"] == "plate of show tst" for f in card.manifest["files"])
    assert "approve_model --model tst-upscaler --show tst" in capsys.readouterr().out
    with pytest.raises(Forbidden, match="not approved"):
        services.model_check_usable(model=model, show_id=show.pk)
    call_command("approve_model", model="tst-upscaler", show="tst", by=supervisor.username)
    model.refresh_from_db()
    services.model_check_usable(model=model, show_id=show.pk)


def test_ctrl_c_checkpoints_and_the_same_command_resumes(show, supervisor, plates, tmp_path, monkeypatch) -> None:
    real = command.train_upscaler
    seen: list[int] = []

    def interrupted(config, *, on_progress, **kwargs):
        def progress(step, total, loss):
            seen.append(step)
            on_progress(step, total, loss)
            if step == 3 and len(seen) == 3:
                os.kill(os.getpid(), signal.SIGINT)  # what Ctrl-C sends

        return real(config, on_progress=progress, **kwargs)

    monkeypatch.setattr(command, "train_upscaler", interrupted)
    with pytest.raises(CommandError, match="stopped at step 3; run the same command again"):
        _train(plates, tmp_path / "up", steps=5)
    assert not GenerationModel.objects.filter(name="tst-upscaler").exists()
    _train(plates, tmp_path / "up", steps=5)
    assert seen == [1, 2, 3, 4, 5]  # the second run started from the step-3 checkpoint
    model = GenerationModel.objects.get(name="tst-upscaler")
    services.model_approve(user=supervisor, model=model, show_id=show.pk)
    _train(plates, tmp_path / "up", steps=6)  # retrained weights are new provenance: pending again
    model.refresh_from_db()
    assert model.status == ModelStatus.PENDING and not model.approved_shows.exists()


def test_it_refuses_an_unknown_show_and_missing_plates(show, tmp_path) -> None:
    with pytest.raises(CommandError, match="no show 'nope'"):
        call_command("train_upscaler", plates=[str(tmp_path)], out=str(tmp_path / "o"), name="x", show="nope")
    with pytest.raises(CommandError, match="no frames found"):
        call_command("train_upscaler", plates=[str(tmp_path / "none")], out=str(tmp_path / "o"), name="x",
                     show="tst")
