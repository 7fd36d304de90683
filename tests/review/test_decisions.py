"""Picks, sign-offs, reject-all and cancel as the lifecycle table says, and the pick/sign-off race."""

import threading
from dataclasses import replace
from types import SimpleNamespace

import pytest
from django.db import connection

from generation import services as generation
from generation.engine import task_kinds
from generation.models import GenerationRequest, RequestEvent
from portal.errors import Conflict, PortalError
from review import services as review
from review.models import Pick, SignOff
from tests.factories import request_with_done_variations


@pytest.fixture
def queued_releases(monkeypatch) -> list:
    """Releases the sign-offs queue, recorded instead of run: these requests have no files to publish."""
    sent: list = []
    monkeypatch.setattr(review.worker, "enqueue", lambda task, *args: sent.append((task, args)))
    return sent


@pytest.fixture
def in_review(compositor, shot, show_model):
    return request_with_done_variations(user=compositor, shot=shot, model=show_model, count=2)


def _status(request) -> str:
    return GenerationRequest.objects.get(pk=request.pk).status


def _types(request) -> list[str]:
    return list(RequestEvent.objects.filter(request=request).order_by("seq").values_list("type", flat=True))


def _in_thread(name: str, work, outcomes: dict) -> threading.Thread:
    def run():
        try:
            outcomes[name] = work()
        except Exception as exc:  # noqa: BLE001 - the test inspects what each writer got
            outcomes[name] = exc
        finally:
            connection.close()

    return threading.Thread(target=run, name=name)


@pytest.mark.django_db(transaction=True)
def test_a_sign_off_landing_after_a_pick_read_the_request_is_not_overwritten(director, compositor, in_review,
                                                                             queued_releases):
    """Two writers on two connections: the pick has read the request (picked) when the sign-off commits; its
    write then finds a signed-off request and is refused with a 409, and the sign-off stands."""
    first, second = in_review.variations.all()
    review.pick_make(user=director, variation=first)
    read, signed, outcomes = threading.Event(), threading.Event(), {}

    def pick():
        stale = type(second).objects.select_related("request__shot__sequence__show").get(pk=second.pk)
        assert stale.request.status == "picked"
        read.set()
        signed.wait(30)
        return review.pick_make(user=director, variation=stale)

    def sign_off():
        read.wait(30)
        try:
            return review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=in_review.pk))
        finally:
            signed.set()

    threads = [_in_thread("pick", pick, outcomes), _in_thread("signoff", sign_off, outcomes)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert isinstance(outcomes["signoff"], SignOff)
    assert isinstance(outcomes["pick"], Conflict) and outcomes["pick"].status == 409
    assert "signed off" in outcomes["pick"].message and outcomes["pick"].code == "closed"
    assert _status(in_review) == "signed_off"
    assert SignOff.objects.get().variation == first and review.current_pick(in_review.pk).variation == first
    assert _types(in_review).count("pick.made") == 1 and len(queued_releases) == 1


@pytest.mark.django_db(transaction=True)
def test_a_pick_and_a_sign_off_at_once_never_lose_the_sign_off(director, compositor, shot, show_model,
                                                              queued_releases):
    """Released together (a barrier) many times: whoever wins, the request ends signed off on the latest pick;
    a loser gets a 409, nothing else."""
    outcomes_seen = set()
    for _ in range(8):
        request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=2)
        first, second = request.variations.all()
        review.pick_make(user=director, variation=first)
        barrier, outcomes = threading.Barrier(2), {}

        def pick(second=second, barrier=barrier):
            barrier.wait(30)
            return review.pick_make(user=director, variation=second)

        def sign_off(request=request, barrier=barrier):
            barrier.wait(30)
            return review.signoff_approve(user=compositor, request=request)

        threads = [_in_thread("pick", pick, outcomes), _in_thread("signoff", sign_off, outcomes)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert isinstance(outcomes["signoff"], SignOff), outcomes
        assert isinstance(outcomes["pick"], Pick | Conflict), outcomes
        assert _status(request) == "signed_off"
        signoff = SignOff.objects.get(variation__request=request)
        assert signoff.variation == review.current_pick(request.pk).variation
        assert signoff.pick == review.current_pick(request.pk)
        outcomes_seen.add(type(outcomes["pick"]).__name__)
    assert outcomes_seen <= {"Pick", "Conflict"}


@pytest.mark.django_db
def test_a_pick_after_the_sign_off_is_a_409_on_the_api(client, director, compositor, in_review, queued_releases):
    review.pick_make(user=director, variation=in_review.variations.first())
    review.signoff_approve(user=compositor, request=in_review)
    client.force_login(director)
    answer = client.post(f"/api/variations/{in_review.variations.last().pk}/pick/", {}, content_type="application/json")
    assert answer.status_code == 409 and answer.json()["code"] == "closed"
    assert "signed off" in answer.json()["message"] and _status(in_review) == "signed_off"


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["signed_off", "released", "cancelled", "queued", "running", "failed"])
def test_reject_all_is_refused_outside_review(client, director, in_review, status):
    GenerationRequest.objects.filter(pk=in_review.pk).update(status=status)
    client.force_login(director)
    answer = client.post(f"/requests/{in_review.pk}/reject-all", {"note": "none of these"})
    assert answer.status_code == 409, answer.content
    assert _status(in_review) == status and not Pick.objects.exists() and "pick.rejected_all" not in _types(in_review)


@pytest.mark.django_db
@pytest.mark.parametrize("picked", [False, True])
def test_reject_all_sends_a_request_in_review_or_picked_back_to_review(director, in_review, picked):
    if picked:
        review.pick_make(user=director, variation=in_review.variations.first())
    review.pick_reject_all(user=director, request=in_review, note="the sky reads as day")
    assert _status(in_review) == "review" and review.current_pick(in_review.pk).rejected_all
    assert _types(in_review)[-1] == "pick.rejected_all"


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["queued", "running", "review", "picked", "failed"])
def test_cancel_before_sign_off_cancels_and_says_so(client, compositor, in_review, status):
    GenerationRequest.objects.filter(pk=in_review.pk).update(status=status)
    client.force_login(compositor)
    answer = client.post(f"/api/requests/{in_review.pk}/cancel/")
    assert answer.status_code == 200 and answer.json()["status"] == "cancelled"
    assert _types(in_review)[-1] == "request.cancelled"
    assert RequestEvent.objects.filter(request=in_review).last().actor == compositor


@pytest.mark.django_db
@pytest.mark.parametrize("status", ["signed_off", "released", "cancelled"])
def test_cancel_after_sign_off_is_a_409_that_changes_nothing(client, compositor, in_review, status):
    GenerationRequest.objects.filter(pk=in_review.pk).update(status=status)
    before = _types(in_review)
    client.force_login(compositor)
    answer = client.post(f"/api/requests/{in_review.pk}/cancel/")
    assert answer.status_code == 409 and answer.json()["code"] == "state"
    assert _status(in_review) == status and _types(in_review) == before
    assert client.post(f"/requests/{in_review.pk}/cancel").status_code == 409


@pytest.mark.django_db
def test_a_cancelled_picked_request_can_no_longer_be_signed_off(director, compositor, in_review, queued_releases):
    review.pick_make(user=director, variation=in_review.variations.first())
    generation.request_cancel(user=compositor, request=in_review)
    with pytest.raises(Conflict, match="cancelled"):
        review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=in_review.pk))
    assert not SignOff.objects.exists() and not queued_releases


@pytest.mark.django_db
@pytest.mark.parametrize("data", [{}, {"note": "looks good"}, {"decision": ""}, {"decision": "yes"}])
def test_a_page_sign_off_without_a_decision_approves_nothing(client, director, compositor, in_review,
                                                            queued_releases, data):
    review.pick_make(user=director, variation=in_review.variations.first())
    client.force_login(compositor)
    answer = client.post(f"/requests/{in_review.pk}/signoff", data)
    assert answer.status_code == 400 and b"decision" in answer.content
    assert _status(in_review) == "picked" and not SignOff.objects.exists() and not queued_releases


@pytest.mark.django_db
def test_the_page_decisions_still_sign_off_and_send_back(client, director, compositor, in_review, queued_releases):
    review.pick_make(user=director, variation=in_review.variations.first())
    client.force_login(compositor)
    assert client.post(f"/requests/{in_review.pk}/signoff", {"decision": "send_back", "note": "edge"}).status_code == 302
    assert _status(in_review) == "review"
    review.pick_make(user=director, variation=in_review.variations.last())
    assert client.post(f"/requests/{in_review.pk}/signoff", {"decision": "approve"}).status_code == 302
    assert _status(in_review) == "signed_off" and queued_releases == [
        ("review.tasks.release_element", (SignOff.objects.get(decision="approved").release.pk,))]


@pytest.fixture
def no_pick_task(monkeypatch):
    """A task signed off without a pick and needing no model (as roto will be), known only by its TaskInfo."""
    info = replace(task_kinds.TASKS["sky_replacement"], label="Pickless", kinds=(), needs_pick=False,
                   runner="tests.review.test_decisions:fake_runner")
    monkeypatch.setitem(task_kinds.TASKS, "pickless", info)
    return "pickless"


def fake_runner(spec, *, on_progress, on_frame, should_cancel, params):
    """The runner the no-pick task names: records what the worker gave it."""
    fake_runner.calls.append((spec, params))
    on_frame(spec.first, "", "")
    return SimpleNamespace(exr_pattern=f"{spec.out_dir}/x.####.exr", proxy_pattern="", compute_seconds=0.5,
                           flicker_ratio=1.0, element_window={})


fake_runner.calls = []


@pytest.mark.django_db
def test_a_task_without_a_pick_is_signed_off_from_review(compositor, director, shot, no_pick_task, queued_releases):
    request = request_with_done_variations(user=compositor, shot=shot, model=None, task=no_pick_task)
    chosen = request.variations.last()
    with pytest.raises(PortalError, match="name the variation"):
        review.signoff_approve(user=compositor, request=request)
    signoff = review.signoff_approve(user=compositor, request=request, variation=chosen)
    assert _status(request) == "signed_off" and signoff.pick is None and signoff.variation == chosen
    assert _types(request)[-1] == "signoff.approved" and len(queued_releases) == 1


@pytest.mark.django_db
def test_a_task_without_a_pick_is_sent_back_on_the_api(client, compositor, shot, no_pick_task):
    request = request_with_done_variations(user=compositor, shot=shot, model=None, task=no_pick_task)
    client.force_login(compositor)
    answer = client.post(f"/api/requests/{request.pk}/send-back/",
                         {"note": "matte chatters", "variation": request.variations.first().pk},
                         content_type="application/json")
    assert answer.status_code == 201 and answer.json()["decision"] == "sent_back" and _status(request) == "review"


@pytest.mark.django_db(transaction=True)
def test_a_new_task_runs_through_its_runner_with_its_params(compositor, shot, show_model, no_pick_task):
    """Its TaskInfo is all a task needs: the worker calls its runner, a model is refused (it needs none)."""
    from portal import worker

    fake_runner.calls.clear()
    with pytest.raises(PortalError, match="needs no generation model"):
        generation.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001, last_frame=1002,
                                  count=1, task=no_pick_task)
    request = generation.request_create(user=compositor, shot=shot, model=None, first_frame=1001, last_frame=1002,
                                        count=1, task=no_pick_task, params={"keyframes": [1001]})
    worker.drain_embedded()
    assert _status(request) == "review" and request.variations.get().status == "done"
    (spec, params), = fake_runner.calls
    assert params == {"keyframes": [1001]} and spec.model_path == "" and spec.first == 1001
    assert _types(request)[:3] == ["request.created", "variation.started", "request.started"]
