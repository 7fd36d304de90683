"""The show upscaler in the loop: the finishing stage of a generation, and the upscale task on a variation."""

from pathlib import Path

import OpenImageIO as oiio
import pytest

from generation import services
from generation.engine import grain, upscale_training
from generation.engine.sequence import frame_path
from generation.engine.upscale import read_upscaler_card
from generation.models import GenerationRequest, ModelKind
from portal import worker
from portal.errors import Forbidden, PortalError
from review import services as review
from review.models import Release
from tests.generation.engine.test_upscale import write_sintel_plates

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(scope="module")
def upscaler_dir(tmp_path_factory) -> str:
    plates = write_sintel_plates(tmp_path_factory.mktemp("up-plates"))
    config = upscale_training.UpscalerConfig(plates=[str(plates)], out_dir=str(tmp_path_factory.mktemp("up")),
                                             steps=2, batch_size=2, patch=32, features=8, layers=1, threads=1,
                                             extra={"show": "tst"})
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
    assert _header(before).getattribute("parallel_track:grain_profile_sha256") is None  # nothing upscaled: no grain
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    after = _sky(compositor, shot, show_model)
    assert shot.plates.get().grain_profile is not None  # measured on first use, kept with the plate
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
    signoff = review.signoff_approve(user=compositor, request=request, variation=variation)  # no pick needed
    worker.drain_embedded()
    release = Release.objects.get(signoff=signoff)
    assert release.status == "done", release.error
    released = oiio.ImageInput.open(frame_path(release.path_pattern, 1001)).spec()
    assert released.getattribute("parallel_track:upscaler_manifest_sha256") == upscaler.manifest_hash
    assert len(released.getattribute("parallel_track:grain_profile_sha256")) == 64


def test_an_upscale_of_a_path_or_of_nothing_is_refused(compositor, supervisor, shot, upscaler):
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    upscaler.refresh_from_db()
    for params in ({"element": "/etc/passwd.####.exr"}, {}, {"variation": 999999}, {"variation": "1"}):
        with pytest.raises(PortalError, match="a finished variation of this shot"):
            services.request_create(user=compositor, shot=shot, model=upscaler, first_frame=1001, last_frame=1002,
                                    count=1, task="upscale", params=params)
    assert not GenerationRequest.objects.exists()


def test_an_upscale_with_a_bad_multi_frame_radius_is_refused(compositor, supervisor, shot, show_model, upscaler):
    source = _sky(compositor, shot, show_model)
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    upscaler.refresh_from_db()
    before = GenerationRequest.objects.count()
    for radius in (-1, 9, "3", 1.5):
        with pytest.raises(PortalError, match="multi_frame"):
            services.request_create(user=compositor, shot=shot, model=upscaler, first_frame=1001, last_frame=1002,
                                    count=1, task="upscale", params={"variation": source.pk, "multi_frame": radius})
    assert GenerationRequest.objects.count() == before
    services.request_create(user=compositor, shot=shot, model=upscaler, first_frame=1001, last_frame=1002, count=1,
                            task="upscale", params={"variation": source.pk, "multi_frame": True})
    assert GenerationRequest.objects.count() == before + 1


def test_the_shot_page_charts_the_plates_grain(client, compositor, shot, show_model):
    client.force_login(compositor)
    assert b"measured at the first generation" in client.get(f"/shots/{shot.pk}/").content
    plate = shot.plates.get()
    services.plate_grain_record(plate=plate, profile=grain.EMPTY.to_dict())
    assert b"none measurable" in client.get(f"/shots/{shot.pk}/").content
    levels = (0.05, 0.2, 0.8)
    channel = grain.ChannelGrain(levels, tuple(0.02 * v for v in levels), (1.0,) * grain.RADIAL_BINS)
    profile = grain.GrainProfile((channel,) * 3, ((1, 0, 0), (0, 1, 0), (0, 0, 1)))
    services.plate_grain_record(plate=plate, profile=profile.to_dict())
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert page.count("<polyline") == 6 and "2.0 % of the level" in page


def test_the_crop_view_shows_plate_and_element_at_full_resolution(client, compositor, outsider, shot, show_model):
    variation = _sky(compositor, shot, show_model)
    client.force_login(compositor)
    page = client.get(f"/variations/{variation.pk}/crop?size=128")
    assert page.status_code == 200 and b'width="128"' in page.content
    for which in ("plate", "incontext"):
        image = client.get(f"/media/variations/{variation.pk}/crop/{which}/1001.jpg?x=0&y=0&size=128")
        assert image.status_code == 200
        data = b"".join(image.streaming_content)
        tmp = Path(variation.work_dir) / f"check-{which}.jpg"
        tmp.write_bytes(data)
        buf = oiio.ImageBuf(str(tmp))
        assert (buf.spec().width, buf.spec().height) == (128, 128)
    assert client.get(f"/variations/{variation.pk}/crop?size=100").status_code == 400
    client.force_login(outsider)
    assert client.get(f"/variations/{variation.pk}/crop").status_code == 404


def test_the_shot_page_chooses_the_upscale_source_among_the_shots_finished_elements(client, compositor, supervisor,
                                                                                    shot, show_model, upscaler):
    source = _sky(compositor, shot, show_model)
    services.model_approve(user=supervisor, model=upscaler, show_id=shot.sequence.show_id)
    client.force_login(compositor)
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert 'data-element-tasks="upscale"' in page
    assert f'<option value="{source.pk}">request {source.request_id} · Sky replacement · v01</option>' in page
    form = {"task": "upscale", "model": upscaler.pk, "first_frame": 1001, "last_frame": 1002, "count": 1,
            "steps": 25, "prompt": ""}
    refused = client.post(f"/shots/{shot.pk}/requests/new", form)  # no source chosen
    assert refused.status_code == 400 and b"choose the element to start from" in refused.content
    assert client.post(f"/shots/{shot.pk}/requests/new", form | {"source": "999999"}).status_code == 400
    made = client.post(f"/shots/{shot.pk}/requests/new", form | {"source": str(source.pk)})
    assert made.status_code == 302
    request = GenerationRequest.objects.get(task="upscale")
    assert request.params == {"variation": source.pk}
    worker.drain_embedded()
    assert request.variations.get().status == "done"


def test_an_unapproved_upscaler_is_refused_by_the_page_the_api_and_the_finishing_stage(client, compositor, shot,
                                                                                       show_model, upscaler):
    source = _sky(compositor, shot, show_model)  # the finishing stage left it alone: the upscaler is pending
    assert _header(source).getattribute("parallel_track:upscaler") is None
    client.force_login(compositor)
    page = client.get(f"/shots/{shot.pk}/").content.decode()
    assert f'<option value="{upscaler.pk}">' not in page  # not offered
    form = {"task": "upscale", "model": upscaler.pk, "first_frame": 1001, "last_frame": 1002, "count": 1,
            "steps": 25, "source": str(source.pk)}
    by_page = client.post(f"/shots/{shot.pk}/requests/new", form)
    assert by_page.status_code == 403 and b"not approved" in by_page.content
    body = {"shot": shot.pk, "model": upscaler.pk, "first_frame": 1001, "last_frame": 1002, "count": 1,
            "task": "upscale", "params": {"variation": source.pk}}
    by_api = client.post("/api/requests/", body, content_type="application/json")
    assert by_api.status_code == 403 and "not approved" in by_api.content.decode()
    assert not GenerationRequest.objects.filter(task="upscale").exists()
