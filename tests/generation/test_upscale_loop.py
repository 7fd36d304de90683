"""The show upscaler in the loop: the finishing stage of a generation, and the upscale task on a variation."""

import OpenImageIO as oiio
import pytest

from generation import services
from generation.engine import upscale_training
from generation.engine.sequence import frame_path
from generation.engine.upscale import read_upscaler_card
from generation.models import ModelKind
from portal import worker
from portal.errors import Forbidden
from tests.generation.engine.test_upscale import write_sintel_plates

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def upscaler_dir(tmp_path_factory) -> str:
    plates = write_sintel_plates(tmp_path_factory.mktemp("up-plates"))
    config = upscale_training.UpscalerConfig(plates=[str(plates)], out_dir=str(tmp_path_factory.mktemp("up")),
                                             steps=2, batch_size=2, patch=32, features=8, layers=1, threads=1)
    return upscale_training.train_upscaler(config).path


@pytest.fixture
def upscaler(show, upscaler_dir):
    card = read_upscaler_card(upscaler_dir)
    return services.model_register(name=card.name, kind=ModelKind.UPSCALER, path=card.path,
                                   manifest_hash=card.manifest_hash)


def _header(variation, frame=1001):
    return oiio.ImageInput.open(frame_path(variation.exr_pattern, frame)).spec()


def _sky(compositor, shot, show_model):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1002, count=1, steps=2, base_seed=3)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    return variation


def test_the_finishing_stage_is_on_once_the_show_has_an_approved_upscaler(compositor, supervisor, shot,
                                                                          show_model, upscaler):
    before = _sky(compositor, shot, show_model)  # pending: not used
    assert _header(before).getattribute("parallel_track:upscaler") is None
    shot.plates.get().refresh_from_db()
    assert shot.plates.get().grain_profile is not None  # measured on first use, kept with the plate
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    after = _sky(compositor, shot, show_model)
    header = _header(after)
    assert header.getattribute("parallel_track:upscaler") == upscaler.name == "show-upscaler"
    assert header.getattribute("parallel_track:upscaler_manifest_sha256") == upscaler.manifest_hash


def test_the_upscale_task_finishes_a_variation_and_an_unapproved_upscaler_is_refused(compositor, supervisor, shot,
                                                                                     show_model, upscaler):
    source = _sky(compositor, shot, show_model)
    ask = dict(user=compositor, shot=shot, model=upscaler, first_frame=1001, last_frame=1002, count=1,
               task="upscale", params={"variation": source.pk})
    with pytest.raises(Forbidden, match="not approved"):
        services.request_create(**ask)
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    upscaler.refresh_from_db()
    request = services.request_create(**ask)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    header = _header(variation)
    assert header.getattribute("parallel_track:task") == "upscale"
    assert header.getattribute("parallel_track:source_element") == "element.####.exr"


def test_an_upscale_of_a_path_instead_of_a_variation_fails_clearly(compositor, supervisor, shot, upscaler):
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    upscaler.refresh_from_db()
    request = services.request_create(user=compositor, shot=shot, model=upscaler, first_frame=1001,
                                      last_frame=1002, count=1, task="upscale",
                                      params={"element": "/etc/passwd.####.exr"})
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "failed" and "finished variation of the same shot" in variation.error
