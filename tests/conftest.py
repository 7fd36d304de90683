"""Shared fixtures: storage folders, a small real plate, a tiny seeded model, and the cast.

The cast is the same everywhere: dana (director), sam (supervisor), cora (compositor), pete (producer)
on the show, and otto, who is on no show.
"""

import os
import shutil
import sys
from pathlib import Path

import pytest

os.environ.setdefault("HF_HUB_OFFLINE", "1")

REPO = Path(__file__).resolve().parents[1]
SHARED_TESTDATA = REPO / "tests" / "data" / "openexr-images"
# oiiotool ships in OpenImageIO's wheel, beside this interpreter.
OIIOTOOL = str(Path(sys.executable).parent / "oiiotool")

PLATE_FIRST = 1001
PLATE_LAST = 1006
PLATE_SIZE = (320, 180)


def inside(path, root) -> Path:
    """`path`, resolved, after checking it lies strictly inside `root`: guards every rmtree in tests."""
    path, root = Path(path).resolve(), Path(root).resolve()
    assert root in path.parents, f"{path} is not inside {root}"
    return path


@pytest.fixture(scope="session")
def storage() -> Path:
    """The test run's storage (settings.VAR_DIR, var/test by default), emptied at the start of the run."""
    from django.conf import settings

    root = Path(settings.VAR_DIR).resolve()
    assert root.name == "test" or "pytest" in str(root), f"refusing to empty {root}"
    for sub in ("plates", "work", "publish", "models"):
        shutil.rmtree(inside(root / sub, root), ignore_errors=True)
        (root / sub).mkdir(parents=True)
    return root


@pytest.fixture(autouse=True)
def _empty_publish_area(request):
    """Each test starts on an emptied database, so its releases start at v001 again: so must the publish area."""
    if "storage" in request.fixturenames:
        publish = request.getfixturevalue("storage") / "publish"
        shutil.rmtree(inside(publish, publish.parent), ignore_errors=True)
        publish.mkdir()


@pytest.fixture(scope="session")
def small_plate(storage) -> dict:
    from generation.engine.demo_plate import render_demo_plate

    return render_demo_plate(str(storage / "plates" / "small"), first=PLATE_FIRST, last=PLATE_LAST,
                             width=PLATE_SIZE[0], height=PLATE_SIZE[1], pan_px_per_frame=1.5)


@pytest.fixture(scope="session")
def tiny_show_model_dir(storage) -> str:
    from generation.engine.registry import build_tiny_show_model

    return build_tiny_show_model(str(storage / "models" / "tiny"), seed=3, name="tiny-sky").path


@pytest.fixture
def show(db):
    from portal.models import Show

    return Show.objects.create(code="tst", name="Test Show")


def _member(django_user_model, show, username, role):
    from portal.models import Membership

    user = django_user_model.objects.create_user(username, password=f"{username}-pw")
    if role:
        Membership.objects.create(user=user, show=show, role=role)
    return user


@pytest.fixture
def director(django_user_model, show):
    return _member(django_user_model, show, "dana", "director")


@pytest.fixture
def supervisor(django_user_model, show):
    return _member(django_user_model, show, "sam", "supervisor")


@pytest.fixture
def compositor(django_user_model, show):
    return _member(django_user_model, show, "cora", "compositor")


@pytest.fixture
def producer(django_user_model, show):
    return _member(django_user_model, show, "pete", "producer")


@pytest.fixture
def outsider(django_user_model, show):
    return _member(django_user_model, show, "otto", None)


@pytest.fixture
def plate(show, small_plate):
    from portal.services import plate_ingest

    return plate_ingest(show=show, sequence_code="sq010", shot_code="sh010", pattern=small_plate["plate"],
                        matte_pattern=small_plate["matte"])


@pytest.fixture
def shot(plate):
    return plate.shot


@pytest.fixture
def show_model(show, tiny_show_model_dir):
    from generation.engine.registry import read_model_card
    from generation.models import GenerationModel

    card = read_model_card(tiny_show_model_dir)
    model = GenerationModel.objects.create(name=card.name, kind="show_model", path=card.path, status="approved",
                                           manifest_hash=card.manifest_hash)
    model.approved_shows.add(show)
    return model


@pytest.fixture(scope="session")
def tiny_sd_inpainting_dir(storage) -> str:
    """A tiny SD-layout inpainting pipeline (diffusers StableDiffusionInpaintPipeline: 9-channel UNet, VAE,
    CLIP text encoder, tokenizer, scheduler) with our model card, built in code: no download."""
    from generation.engine.sd_pipeline import build_tiny_sd_pipeline

    return build_tiny_sd_pipeline(str(storage / "models" / "tiny-sd"), seed=3, name="tiny-sd-inpainting").path


@pytest.fixture
def sd_inpainting_model(show, tiny_sd_inpainting_dir):
    from generation.engine.registry import read_model_card
    from generation.models import GenerationModel

    card = read_model_card(tiny_sd_inpainting_dir)
    model = GenerationModel.objects.create(name=card.name, kind=card.kind, path=card.path, status="approved",
                                           manifest_hash=card.manifest_hash)
    model.approved_shows.add(show)
    return model
