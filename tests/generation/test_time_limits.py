"""Soft and hard time limits that hold on any pool (generation.time_limits): the soft limit checked between steps,
frames and files, the hard one by a watchdog. The solo pool's end of the worker process is in the production tier
(tests/production/test_faults.py, a variation stuck reading a plate that never answers)."""

import threading
import time
from pathlib import Path

import pytest

from generation import services, tasks
from generation.models import GenerationRequest, RequestEvent, WorkLease
from generation.time_limits import Deadline, TimeLimit
from portal import worker
from review import services as review
from review.models import Release
from review.tasks import publish_pattern


def test_the_soft_limit_is_met_at_the_first_check_after_it():
    with Deadline(0.15, grace_s=60, on_hard=lambda: None, what="the task") as deadline:
        deadline.check()  # in time
        time.sleep(0.2)
        with pytest.raises(TimeLimit, match="the task ran past its time limit of 0.15 s"):
            deadline.check()


def test_the_hard_limit_records_then_ends_the_process_only_when_the_block_overruns():
    calls: list[str] = []
    with Deadline(0.05, grace_s=0.05, on_hard=lambda: calls.append("recorded"), what="the task",
                  end_process=lambda: calls.append("ended")) as stuck:
        time.sleep(0.4)  # stuck where nothing checks
    assert calls == ["recorded", "ended"] and stuck.hard_reached

    calls.clear()
    with Deadline(0.05, grace_s=0.1, on_hard=lambda: calls.append("recorded"), what="the task",
                  end_process=lambda: calls.append("ended")) as quick:
        pass
    time.sleep(0.3)  # past where the limit would have been
    assert calls == [] and not quick.hard_reached


def test_a_recording_that_fails_still_ends_the_process():
    ended = threading.Event()

    def fails():
        raise RuntimeError("the database is down")

    with Deadline(0.01, grace_s=0.01, on_hard=fails, what="the task", end_process=ended.set):
        assert ended.wait(2)


@pytest.mark.django_db(transaction=True)
def test_a_generation_past_its_soft_limit_fails_and_leaves_no_files(compositor, shot, show_model, settings):
    settings.PT_GENERATE_SOFT_LIMIT_S = 0
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1002, count=1, steps=2, base_seed=3)
    worker.drain_embedded()
    variation = request.variations.get()
    assert variation.status == "failed" and "ran past its time limit of 0 s" in variation.error
    assert not Path(variation.work_dir).exists() and services.variation_attempt_folders(variation) == []
    assert GenerationRequest.objects.get(pk=request.pk).status == "failed"


@pytest.mark.django_db(transaction=True)
def test_a_generation_stuck_past_its_hard_limit_is_failed_by_the_watchdog(compositor, shot, show_model, settings,
                                                                          monkeypatch):
    """Stuck where it never checks (a plate read that never returns): the watchdog fails it and removes its staging
    folder. The embedded worker lives in the portal, which is not ended: its thread is left (then let go here)."""
    settings.PT_GENERATE_SOFT_LIMIT_S, settings.PT_HARD_LIMIT_GRACE_S = 0, 1
    let_go, staged = threading.Event(), []

    def stuck(spec, **_):
        Path(spec.out_dir).mkdir(parents=True)
        staged.append(spec.out_dir)
        let_go.wait(30)
        raise OSError("the read came back at last")

    monkeypatch.setattr(tasks, "runner", lambda task: stuck)
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1002, count=1, steps=2, base_seed=3)
    variation = request.variations.get()
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and request.variations.get().status != "failed":
        time.sleep(0.1)
    failed = request.variations.get()
    assert failed.status == "failed" and "hard time limit of 1 s" in failed.error, failed.error
    assert staged and not Path(staged[0]).exists()
    assert GenerationRequest.objects.get(pk=request.pk).status == "failed"
    let_go.set()
    worker.drain_embedded()
    assert request.variations.get().status == "failed"  # the late return changes nothing
    types = list(RequestEvent.objects.filter(request=request).values_list("type", flat=True))
    assert types.count("variation.failed") == 1 and "variation.requeued" not in types, types
    assert variation.pk == failed.pk


@pytest.mark.django_db(transaction=True)
def test_a_release_past_its_soft_limit_fails_between_files_and_leaves_nothing(compositor, director, shot,
                                                                              show_model, settings):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1003, count=1, steps=1, base_seed=2)
    worker.drain_embedded()
    review.pick_make(user=director, variation=request.variations.get())
    settings.PT_RELEASE_SOFT_LIMIT_S = 0
    signoff = review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=request.pk))
    worker.drain_embedded()
    release = Release.objects.get(signoff=signoff)
    assert release.status == "failed" and "the release ran past its time limit of 0 s" in release.error
    folder = Path(publish_pattern(release)).parent
    assert not folder.exists() and not any(folder.parent.glob(f".{folder.name}.partial-*"))
    lease = WorkLease.objects.get(kind="release", key=release.pk)
    assert (lease.owner, lease.output_attempts) == ("", 0)
    types = list(RequestEvent.objects.filter(request=request).values_list("type", flat=True))
    assert types.count("release.failed") == 1 and "release.done" not in types
