"""Model approval is scoped: a supervisor sees and approves only models made for their own shows (the shows the
model's card names), never another show's, never a model whose card changed, and retired is final."""

import json
from pathlib import Path

import pytest

from generation import services
from generation.engine.registry import CARD_NAME, build_tiny_show_model
from generation.models import GenerationModel, ModelStatus
from portal.errors import Conflict, Forbidden, NotFound
from portal.models import Membership, Show

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def model_dirs(tmp_path_factory) -> dict[str, str]:
    """Two tiny models: one whose card names show tst, one trained for show oth."""
    root = tmp_path_factory.mktemp("scoped-models")
    return {code: build_tiny_show_model(str(root / code), seed=1, sample_size=(16, 32), name=f"{code}-sky",
                                        shows=(code,)).path for code in ("tst", "oth")}


@pytest.fixture
def other_show(django_user_model):
    show = Show.objects.create(code="oth", name="Other Show")
    sue = django_user_model.objects.create_user("sue", password="sue-pw")
    Membership.objects.create(user=sue, show=show, role="supervisor")
    return show


def _register(path: str) -> GenerationModel:
    card = json.loads((Path(path) / CARD_NAME).read_text())
    from generation.engine.registry import read_model_card

    return services.model_register(name=card["name"], kind="show_model", path=path,
                                   manifest_hash=read_model_card(path).manifest_hash)


def test_a_supervisor_sees_and_approves_only_models_made_for_their_show(client, shot, supervisor, other_show,
                                                                       model_dirs) -> None:
    ours, theirs = _register(model_dirs["tst"]), _register(model_dirs["oth"])
    client.force_login(supervisor)
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert "tst-sky" in page and "oth-sky" not in page  # another show's pending model is not shown

    # Approving another show's model through this show's shot: the same 404 as a missing id.
    assert client.post(f"/shots/{shot.pk}/models/{theirs.pk}/approve").status_code == 404
    assert client.post(f"/shots/{shot.pk}/models/999999/approve").status_code == 404
    with pytest.raises(Forbidden, match="not made for show tst"):
        services.model_approve(user=supervisor, model=theirs, show_id=shot.show.pk)
    with pytest.raises(NotFound):  # sam is not on show oth
        services.model_approve(user=supervisor, model=theirs, show_id=other_show.pk)
    theirs.refresh_from_db()
    assert theirs.status == ModelStatus.PENDING and not theirs.approved_shows.exists()

    assert client.post(f"/shots/{shot.pk}/models/{ours.pk}/approve").status_code == 302
    ours.refresh_from_db()
    assert ours.status == ModelStatus.APPROVED and list(ours.approved_shows.all()) == [shot.show]
    assert "tst-sky" not in _pending_section(client.get(f"/shots/{shot.pk}/").content.decode())


def _pending_section(page: str) -> str:
    return page.split("Models waiting for approval")[1].split("</section>")[0] if "waiting for approval" in page else ""


def test_retired_is_final(shot, supervisor, model_dirs) -> None:
    model = _register(model_dirs["tst"])
    services.model_approve(user=supervisor, model=model, show_id=shot.show.pk)
    GenerationModel.objects.filter(pk=model.pk).update(status=ModelStatus.RETIRED)  # as the admin retires it
    model.refresh_from_db()
    with pytest.raises(Conflict, match="retired"):
        services.model_approve(user=supervisor, model=model, show_id=shot.show.pk)
    with pytest.raises(Conflict, match="retired"):  # re-registering the name does not revive it either
        _register(model_dirs["tst"])
    model.refresh_from_db()
    assert model.status == ModelStatus.RETIRED
    with pytest.raises(Forbidden, match="retired"):
        services.model_check_usable(model=model, show_id=shot.show.pk)


def test_a_model_whose_card_changed_after_registering_is_not_approved(shot, supervisor, model_dirs,
                                                                       tmp_path) -> None:
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(model_dirs["tst"], copy)
    model = _register(str(copy))
    card = json.loads((copy / CARD_NAME).read_text())
    card["training_manifest"]["files"].append({"path": "x.exr", "sha256": "0" * 64, "licence": "someone else's"})
    (copy / CARD_NAME).write_text(json.dumps(card))
    with pytest.raises(Conflict, match="changed since it was registered"):
        services.model_approve(user=supervisor, model=model, show_id=shot.show.pk)


def test_a_card_that_names_no_show_is_approvable_for_none(shot, supervisor, tmp_path) -> None:
    path = build_tiny_show_model(str(tmp_path / "anon"), seed=1, sample_size=(16, 32), name="anon-sky").path
    model = _register(path)
    with pytest.raises(Forbidden, match="names no show"):
        services.model_approve(user=supervisor, model=model, show_id=shot.show.pk)
