"""Tasks from the portal: the page, the API and the worker all refuse a model kind that cannot do the task."""

import shutil
from io import StringIO

import OpenImageIO as oiio
import pytest
from django.core.management import CommandError, call_command

from generation import services
from generation.engine.sequence import frame_path
from generation.models import GenerationModel, GenerationRequest
from portal import worker
from portal.errors import PortalError
from tests.factories import assert_outside_matte_is_the_plate


def test_the_service_refuses_a_show_model_a_time_of_day(compositor, shot, show_model):
    with pytest.raises(PortalError, match="ignores prompts") as refused:
        services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001, last_frame=1002,
                                count=1, task="time_of_day")
    assert refused.value.code == "model_kind"
    assert not GenerationRequest.objects.exists()


def test_the_api_refuses_it_too_and_says_which_tasks_a_model_can_do(client, compositor, shot, show_model,
                                                                    sd_inpainting_model):
    client.force_login(compositor)
    body = {"shot": shot.pk, "model": show_model.pk, "first_frame": 1001, "last_frame": 1002, "count": 1,
            "task": "time_of_day"}
    refused = client.post("/api/requests/", body, content_type="application/json")
    assert refused.status_code == 400 and "cannot do time of day" in refused.content.decode()
    models = {m["name"]: m["tasks"] for m in client.get("/api/models/").json()["results"]}
    assert "time_of_day" not in models[show_model.name] and "atmosphere" in models[show_model.name]
    assert "time_of_day" in models[sd_inpainting_model.name]
    body.update(model=sd_inpainting_model.pk, task="set_extension", prompt="brick warehouses")
    accepted = client.post("/api/requests/", body, content_type="application/json")
    assert accepted.status_code == 201 and accepted.json()["task"] == "set_extension"


def test_the_request_page_refuses_it_with_the_reason(client, compositor, shot, show_model):
    client.force_login(compositor)
    response = client.post(f"/shots/{shot.pk}/requests/new", {
        "model": show_model.pk, "first_frame": 1001, "last_frame": 1002, "count": 1, "task": "time_of_day"})
    assert response.status_code == 400 and "ignores prompts" in response.content.decode()
    assert not GenerationRequest.objects.exists()


@pytest.mark.django_db(transaction=True)
def test_a_time_of_day_runs_through_the_worker_on_the_sd_pipeline(compositor, shot, sd_inpainting_model,
                                                                  small_plate):
    request = services.request_create(user=compositor, shot=shot, model=sd_inpainting_model, first_frame=1001,
                                      last_frame=1003, count=1, steps=3, task="time_of_day", prompt="golden hour",
                                      base_seed=5)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    header = oiio.ImageInput.open(frame_path(variation.exr_pattern, 1001)).spec()
    assert header.getattribute("parallel_track:task") == "time_of_day"
    assert header.getattribute("parallel_track:strength") == "0.45"  # the task's default
    assert header.getattribute("parallel_track:prompt") == "golden hour"
    assert_outside_matte_is_the_plate(variation.exr_pattern, small_plate["plate"], (1001, 1003))


@pytest.mark.django_db(transaction=True)
def test_the_worker_refuses_a_model_whose_kind_changed_under_the_request(compositor, shot, sd_inpainting_model):
    request = services.request_create(user=compositor, shot=shot, model=sd_inpainting_model, first_frame=1001,
                                      last_frame=1002, count=1, steps=2, task="time_of_day")
    GenerationModel.objects.filter(pk=sd_inpainting_model.pk).update(kind="show_model")
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "failed" and "cannot do time of day" in variation.error
    assert not variation.exr_pattern


def test_register_model_registers_an_sd_directory_pending_and_refuses_an_incomplete_one(db, tmp_path,
                                                                                       tiny_sd_inpainting_dir):
    out = StringIO()
    call_command("register_model", str(tmp_path / "fresh"), "--build-tiny-sd", "--name", "sd-dev", "--load",
                 stdout=out)
    model = GenerationModel.objects.get(name="sd-dev")
    assert model.kind == "inpainting" and model.status == "pending" and len(model.manifest_hash) == 64
    assert "pending approval" in out.getvalue()
    partial = tmp_path / "partial"
    shutil.copytree(tiny_sd_inpainting_dir, partial, ignore=shutil.ignore_patterns("text_encoder"))
    (partial / "parallel_track.json").write_text(
        (partial / "parallel_track.json").read_text().replace("tiny-sd-inpainting", "partial"))
    with pytest.raises(CommandError, match="need the network"):
        call_command("register_model", str(partial))
    assert not GenerationModel.objects.filter(name="partial").exists()


def test_a_request_carries_its_own_strength_checked_against_the_task(client, compositor, shot, show_model,
                                                                     sd_inpainting_model):
    with pytest.raises(PortalError, match="must be 0.2–0.8") as refused:
        services.request_create(user=compositor, shot=shot, model=sd_inpainting_model, first_frame=1001,
                                last_frame=1002, count=1, task="time_of_day", strength=0.95)
    assert refused.value.code == "strength"
    with pytest.raises(PortalError, match="generates the whole region"):
        services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001, last_frame=1002,
                                count=1, task="sky_replacement", strength=0.5)
    assert not GenerationRequest.objects.exists()
    client.force_login(compositor)
    body = {"shot": shot.pk, "model": sd_inpainting_model.pk, "first_frame": 1001, "last_frame": 1002, "count": 1,
            "task": "time_of_day", "strength": 0.3}
    created = client.post("/api/requests/", body, content_type="application/json")
    assert created.status_code == 201 and created.json()["strength"] == 0.3
    page = client.post(f"/shots/{shot.pk}/requests/new", {
        "model": show_model.pk, "first_frame": 1001, "last_frame": 1002, "count": 1, "task": "atmosphere",
        "strength": "0.7"})
    assert page.status_code == 302
    assert GenerationRequest.objects.order_by("-pk").first().strength == 0.7
    bad = client.post(f"/shots/{shot.pk}/requests/new", {
        "model": show_model.pk, "first_frame": 1001, "last_frame": 1002, "count": 1, "task": "atmosphere",
        "strength": "lots"})
    assert bad.status_code == 400 and "strength must be a number" in bad.content.decode()


@pytest.mark.django_db(transaction=True)
def test_the_worker_uses_the_requests_strength(compositor, shot, show_model, small_plate):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1001, count=1, steps=4, task="atmosphere", strength=0.25,
                                      base_seed=3)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    header = oiio.ImageInput.open(frame_path(variation.exr_pattern, 1001)).spec()
    assert header.getattribute("parallel_track:strength") == "0.25"
