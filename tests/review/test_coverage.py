"""Coverage per variation: stored from the engine's result by the worker, announced in `variation.done`, and a
variation whose element leaves holes in its matte (coverage below 1.0) is picked only with an explicit override,
which the pick event and the audit trail record."""

import csv
import dataclasses
import io

import pytest

from generation import tasks
from generation.models import COVERAGE_TOLERANCE, GenerationRequest, RequestEvent, Variation, coverage_flagged
from generation.services import request_create
from portal import worker
from portal.errors import Conflict
from review import services as review
from review.models import Pick
from tests.factories import request_with_done_variations


def _done_event(variation: Variation) -> dict:
    return RequestEvent.objects.get(request_id=variation.request_id, type="variation.done",
                                    payload__variation=variation.pk).payload


def _run_one(compositor, shot, show_model) -> Variation:
    request = request_create(user=compositor, shot=shot, model=show_model, first_frame=1001, last_frame=1002,
                             count=1, steps=1, base_seed=3)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "done", variation.error
    return variation


@pytest.mark.django_db(transaction=True)
def test_the_worker_stores_the_engines_coverage_and_announces_it(compositor, shot, show_model):
    variation = _run_one(compositor, shot, show_model)
    # A static matte on a static plate: covered, up to the float32 sampling of the engine's generated mask.
    assert variation.coverage == pytest.approx(1.0, abs=COVERAGE_TOLERANCE) and not variation.coverage_flagged
    done = _done_event(variation)
    assert done["coverage"] == 1.0 and done["coverage_flagged"] is False


@pytest.mark.django_db(transaction=True)
def test_a_coverage_below_one_from_the_engine_is_stored_and_flagged(compositor, shot, show_model, monkeypatch):
    """The real runner, its result's coverage changed on the way out: the loop carries what the engine says."""
    real = tasks.runner

    def holed(task):
        run = real(task)
        return lambda *args, **kwargs: dataclasses.replace(run(*args, **kwargs), coverage=0.99996)

    monkeypatch.setattr(tasks, "runner", holed)
    variation = _run_one(compositor, shot, show_model)
    assert variation.coverage == pytest.approx(0.99996) and variation.coverage_flagged
    done = _done_event(variation)
    # Rounded for the event, the figure reads 1.0; the flag is on the raw figure, so the hole still shows.
    assert done["coverage"] == 1.0 and done["coverage_flagged"] is True


@pytest.fixture
def holed(compositor, shot, show_model) -> Variation:
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=2)
    Variation.objects.filter(request=request, index=0).update(coverage=0.874)
    Variation.objects.filter(request=request, index=1).update(coverage=1.0)
    return request.variations.get(index=0)


def _pick_events(variation: Variation) -> list[dict]:
    return [e.payload for e in RequestEvent.objects.filter(request_id=variation.request_id, type="pick.made")]


@pytest.mark.django_db
def test_a_holed_variation_is_refused_without_the_override(director, holed):
    with pytest.raises(Conflict) as refused:
        review.pick_make(user=director, variation=holed)
    assert refused.value.code == "coverage" and "87.40%" in refused.value.message
    assert not Pick.objects.exists() and not _pick_events(holed)
    assert GenerationRequest.objects.get(pk=holed.request_id).status == "review"


@pytest.mark.django_db
def test_the_api_answers_409_without_the_override_and_records_it_with(client, director, holed):
    client.force_login(director)
    url = f"/api/variations/{holed.pk}/pick/"
    refused = client.post(url, {"note": "the sky"}, content_type="application/json")
    assert refused.status_code == 409 and refused.json()["code"] == "coverage", refused.content
    assert "coverage override" in refused.json()["message"] and not Pick.objects.exists()

    picked = client.post(url, {"note": "the sky", "override_coverage": True}, content_type="application/json")
    assert picked.status_code == 201, picked.content
    assert Pick.objects.get().variation == holed
    (event,) = _pick_events(holed)
    assert event["override_coverage"] is True and event["coverage"] == 0.874 and event["by"] == director.username

    audit = list(csv.DictReader(io.StringIO(client.get(f"/requests/{holed.request_id}/audit.csv").content.decode())))
    (row,) = [r for r in audit if r["event"] == "pick.made"]
    assert row["detail"] == "coverage override (87.40%)" and row["variation"] == "v01"


@pytest.mark.django_db
def test_a_full_coverage_pick_needs_no_override_and_records_none(client, director, holed):
    full = holed.request.variations.get(index=1)
    client.force_login(director)
    assert client.post(f"/api/variations/{full.pk}/pick/", {}, content_type="application/json").status_code == 201
    (event,) = _pick_events(full)
    assert "override_coverage" not in event


@pytest.mark.django_db
def test_the_page_pick_takes_the_override_from_its_confirm(client, director, holed):
    client.force_login(director)
    url = f"/variations/{holed.pk}/pick"
    assert client.post(url, {}, headers={"X-Requested-With": "fetch"}).status_code == 409
    assert client.post(url, {"override_coverage": "1"}, headers={"X-Requested-With": "fetch"}).status_code == 204
    assert _pick_events(holed)[0]["override_coverage"] is True


@pytest.mark.django_db
def test_the_api_shows_coverage_and_its_flag(client, director, holed):
    client.force_login(director)
    body = client.get(f"/api/requests/{holed.request_id}/").json()
    figures = {v["index"]: (v["coverage"], v["coverage_flagged"]) for v in body["variations"]}
    assert figures == {0: (0.874, True), 1: (1.0, False)}


@pytest.mark.django_db
def test_a_variation_made_before_coverage_was_stored_is_not_flagged(director, compositor, shot, show_model):
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
    old = request.variations.get()
    assert old.coverage is None and not old.coverage_flagged
    assert review.pick_make(user=director, variation=old).variation == old


def test_only_float32_noise_passes_as_full_coverage():
    assert not coverage_flagged(1.0) and not coverage_flagged(1.0 - 1e-8) and not coverage_flagged(None)
    one_pixel_in_eight_frames_of_200_by_120 = 1.0 - 1 / (200 * 120 * 8)
    assert coverage_flagged(one_pixel_in_eight_frames_of_200_by_120) and coverage_flagged(0.0)


@pytest.mark.django_db
def test_a_hole_that_rounds_to_100_percent_never_reads_as_100(director, holed):
    Variation.objects.filter(pk=holed.pk).update(coverage=0.99996)
    holed.refresh_from_db()
    with pytest.raises(Conflict) as refused:
        review.pick_make(user=director, variation=holed)
    assert "covers only 99.99%" in refused.value.message
