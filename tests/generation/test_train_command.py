"""train_show_model registers a pending model; only a supervisor of the show can approve it."""

from pathlib import Path

import pytest
from django.core.management import CommandError, call_command

from generation import services
from generation.engine.demo_plate import render_lookdev_skies
from generation.engine.registry import read_model_card
from generation.models import GenerationModel, ModelStatus
from portal.errors import Forbidden
from portal.models import Show

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def lookdev(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("lookdev")
    render_lookdev_skies(root, count=4, size=(10, 20), seed=2)
    return root


def _train(lookdev: Path, out: Path, steps: int = 2, **extra) -> str:
    call_command("train_show_model", lookdev=str(lookdev), out=str(out), name="tst-sky", show="tst",
                 steps=steps, batch_size=2, sample_size="8x16", threads=1, **extra)
    return str(out)


def test_the_trained_model_is_registered_pending_with_its_manifest_hash(show, lookdev, tmp_path, capsys) -> None:
    path = _train(lookdev, tmp_path / "model")
    model = GenerationModel.objects.get(name="tst-sky")
    card = read_model_card(path)
    assert model.status == ModelStatus.PENDING and not model.approved_shows.exists()
    assert model.manifest_hash == card.manifest_hash and model.path == card.path
    assert len(card.manifest["files"]) == 4
    assert "approve_model --model tst-sky --show tst" in capsys.readouterr().out
    with pytest.raises(Forbidden, match="not approved"):
        services.model_check_usable(model=model, show_id=show.pk)


def test_only_a_supervisor_of_the_show_can_approve_it(show, supervisor, compositor, director, lookdev,
                                                       tmp_path) -> None:
    _train(lookdev, tmp_path / "model")
    model = GenerationModel.objects.get(name="tst-sky")
    for user in (compositor, director):
        with pytest.raises(Forbidden, match="cannot approve models"):
            services.model_approve(user=user, model=model, show_id=show.pk)
    with pytest.raises(CommandError, match="cannot approve models"):
        call_command("approve_model", model="tst-sky", show="tst", by=compositor.username)
    model.refresh_from_db()
    assert model.status == ModelStatus.PENDING

    call_command("approve_model", model="tst-sky", show="tst", by=supervisor.username)
    model.refresh_from_db()
    assert model.status == ModelStatus.APPROVED and model.approved_by == supervisor
    services.model_check_usable(model=model, show_id=show.pk)
    other = Show.objects.create(code="oth", name="Other Show")
    with pytest.raises(Forbidden, match="not approved for this show"):
        services.model_check_usable(model=model, show_id=other.pk)


def test_retraining_resumes_and_needs_a_new_approval(show, supervisor, lookdev, tmp_path) -> None:
    out = tmp_path / "model"
    _train(lookdev, out, steps=2)
    model = GenerationModel.objects.get(name="tst-sky")
    services.model_approve(user=supervisor, model=model, show_id=show.pk)
    first_hash = model.manifest_hash

    _train(lookdev, out, steps=3)  # resumes from the step-2 checkpoint
    assert sorted(p.name for p in (out / "checkpoints").iterdir()) == ["step-000002", "step-000003"]
    model.refresh_from_db()
    assert model.status == ModelStatus.PENDING and not model.approved_shows.exists()
    assert model.manifest_hash != first_hash  # the recipe's step count is part of the provenance


def test_it_refuses_an_unknown_show_or_a_bad_sample_size(show, lookdev, tmp_path) -> None:
    with pytest.raises(CommandError, match="no show 'nope'"):
        call_command("train_show_model", lookdev=str(lookdev), out=str(tmp_path), name="x", show="nope")
    with pytest.raises(CommandError, match="HEIGHTxWIDTH"):
        call_command("train_show_model", lookdev=str(lookdev), out=str(tmp_path), name="x", show="tst",
                     sample_size="big")
    with pytest.raises(CommandError, match="multiples of 8"):
        call_command("train_show_model", lookdev=str(lookdev), out=str(tmp_path), name="x", show="tst",
                     sample_size="12x20", steps=1)


def test_a_supervisor_approves_from_the_shot_page(client, shot, supervisor, compositor, lookdev, tmp_path) -> None:
    _train(lookdev, tmp_path / "model", steps=1)
    model = GenerationModel.objects.get(name="tst-sky")
    url = f"/shots/{shot.pk}/models/{model.pk}/approve"
    client.force_login(supervisor)
    assert b"Models waiting for approval" in client.get(f"/shots/{shot.pk}/").content
    client.force_login(compositor)
    assert b"Models waiting for approval" not in client.get(f"/shots/{shot.pk}/").content
    assert client.post(url).status_code == 403
    client.force_login(supervisor)
    assert client.post(url).status_code == 302
    model.refresh_from_db()
    assert model.status == ModelStatus.APPROVED and list(model.approved_shows.all()) == [shot.sequence.show]
