"""Leases: a second delivery while the lease lives does nothing; an expired lease is taken over; only the holder
moves its staging folder into place; attempts that wrote output are counted (more than one is a duplicate run).

The tests use the plain ``db`` fixture, so request_create's tickets are never sent (on_commit never fires):
each test delivers its tickets itself, one at a time, on the test's thread, through the real Celery task.
"""

import errno
import shutil
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.conf import settings
from django.utils import timezone

from generation import leases, services, tasks
from generation.models import GenerationRequest, RequestEvent, Variation
from generation.tasks import generate_variation
from portal import worker
from tests.conftest import inside
from tests.factories import request_with_done_variations

pytestmark = pytest.mark.django_db


def _request(user, shot, model, count=1, *, clean=True):
    request = services.request_create(user=user, shot=shot, model=model, first_frame=1001, last_frame=1002,
                                      count=count, steps=1, base_seed=3)
    if not clean:  # its tickets are running already (a transaction test)
        return request
    # The database is emptied between tests and ids start again: an earlier test's request folder goes too.
    folder = Path(request.variations.first().work_dir).parent
    shutil.rmtree(inside(folder, settings.WORK_ROOT), ignore_errors=True)
    return request


def _deliver(variation_id=None):
    result = generate_variation.apply(args=(variation_id,))
    assert not result.failed(), result.result


def _events(request_id):
    return list(RequestEvent.objects.filter(request_id=request_id).order_by("seq").values_list("type", flat=True))


def test_a_redelivered_ticket_whose_lease_is_alive_does_nothing(compositor, shot, show_model):
    variation = _request(compositor, shot, show_model).variations.get()
    first = services.variation_claim(variation_id=variation.pk, worker_name="first@farm")
    assert first is not None and first.attempts == 1
    before = _events(variation.request_id)
    _deliver(variation.pk)  # the broker redelivers while the first worker still runs it
    again = Variation.objects.get(pk=variation.pk)
    assert (again.status, again.lease_owner, again.attempts, again.output_attempts) == (
        "running", first.lease_owner, 1, 0)
    assert _events(variation.request_id) == before
    assert services.variation_attempt_folders(again) == [] and not Path(again.work_dir).exists()
    assert services.variation_claim(variation_id=variation.pk, worker_name="second@farm") is None


def test_an_expired_lease_is_taken_over_and_the_dead_attempts_folder_goes(compositor, shot, show_model):
    variation = _request(compositor, shot, show_model).variations.get()
    dead = services.variation_claim(variation_id=variation.pk, worker_name="dead@farm")
    dead_staging = Path(dead.output_dir)
    (dead_staging / "exr").mkdir(parents=True)
    (dead_staging / "exr" / "element.1001.exr").write_bytes(b"half a frame")  # what the killed worker left
    Variation.objects.filter(pk=variation.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    _deliver(variation.pk)
    done = Variation.objects.get(pk=variation.pk)
    assert done.status == "done", done.error
    assert (done.attempts, done.output_attempts, done.lease_owner) == (2, 1, "")
    assert done.exr_pattern.startswith(done.work_dir + "/")
    assert sorted(p.name for p in (Path(done.work_dir) / "exr").iterdir()) == ["element.1001.exr",
                                                                              "element.1002.exr"]
    assert (Path(done.work_dir) / "exr" / "element.1001.exr").stat().st_size > 100
    assert services.variation_attempt_folders(done) == [] and not dead_staging.exists()
    types = _events(variation.request_id)
    assert types.count("variation.started") == 2 and types.count("variation.done") == 1
    assert types[-1] == "request.settled"


def test_an_attempt_that_lost_its_lease_moves_nothing_into_place(compositor, shot, show_model):
    variation = _request(compositor, shot, show_model).variations.get()
    slow = services.variation_claim(variation_id=variation.pk, worker_name="slow@farm")
    Variation.objects.filter(pk=variation.pk).update(lease_expires_at=timezone.now() - timedelta(seconds=1))
    fast = services.variation_claim(variation_id=variation.pk, worker_name="fast@farm")
    assert fast is not None and fast.attempts == 2
    assert not services.variation_lease_renew(variation=slow) and services.variation_lease_renew(variation=fast)
    for attempt in (slow, fast):
        (Path(attempt.output_dir) / "exr").mkdir(parents=True)
        (Path(attempt.output_dir) / "exr" / "element.1001.exr").write_text(attempt.lease_owner)
    figures = dict(proxy_pattern="", compute_seconds=1.0, flicker_ratio=0.1, element_window={}, coverage=None)
    assert not services.variation_finish(variation=slow, staging=slow.output_dir,
                                         exr_pattern=f"{slow.output_dir}/exr/element.####.exr", **figures)
    assert not Path(slow.output_dir).exists() and not Path(variation.work_dir).exists()
    assert services.variation_finish(variation=fast, staging=fast.output_dir,
                                     exr_pattern=f"{fast.output_dir}/exr/element.####.exr", **figures)
    done = Variation.objects.get(pk=variation.pk)
    assert (done.status, done.output_attempts) == ("done", 1)
    assert (Path(done.work_dir) / "exr" / "element.1001.exr").read_text() == fast.lease_owner


@pytest.mark.django_db(transaction=True)  # the heartbeat's own thread and connection must see the row
def test_the_heartbeat_renews_a_live_lease_and_notices_a_lost_one(compositor, shot, show_model, settings):
    settings.PT_LEASE_SECONDS = 0.6
    request = request_with_done_variations(user=compositor, shot=shot, model=show_model, count=1)
    GenerationRequest.objects.filter(pk=request.pk).update(status="queued")
    variation = request.variations.get()
    Variation.objects.filter(pk=variation.pk).update(status="queued")
    claimed = services.variation_claim(variation_id=variation.pk, worker_name="beating@farm")
    with leases.Heartbeat(lambda: services.variation_lease_renew(variation=claimed), interval=0.1) as beat:
        time.sleep(1.0)  # longer than the lease: only the heartbeat keeps it
        assert not beat.lost
        assert services.variation_claim(variation_id=variation.pk, worker_name="thief@farm") is None
        Variation.objects.filter(pk=variation.pk).update(lease_owner="someone-else")
        time.sleep(0.4)
        assert beat.lost


def test_queued_variations_of_a_cancelled_request_never_start(compositor, shot, show_model):
    request = _request(compositor, shot, show_model, count=2)
    services.request_cancel(user=compositor, request=request)
    _deliver(request.variations.first().pk)
    assert set(request.variations.values_list("status", "attempts")) == {("cancelled", 0)}
    assert "variation.started" not in _events(request.pk)


def _wait(condition, what, timeout=240.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"no {what} within {timeout:.0f} s"
        time.sleep(0.1)


@pytest.mark.django_db(transaction=True)
def test_cancel_removes_the_files_of_every_cancelled_variation_and_the_queued_never_start(compositor, shot,
                                                                                       show_model, settings):
    settings.PT_FAULT_FRAME_DELAY_S = 0.3  # a slow work area: the cancel lands part-way through the frames
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1006, count=2, steps=12, base_seed=9)
    first, second = request.variations.order_by("index")
    _wait(lambda: Variation.objects.filter(request=request, status="running", frames_done__gte=1).exists(),
          "variation part-way through its frames")
    running = Variation.objects.get(request=request, status="running")
    assert list(Path(running.output_dir).glob("exr/*.exr")), "the running attempt writes into its staging folder"
    services.request_cancel(user=compositor, request=request)
    worker.drain_embedded()
    for variation in Variation.objects.filter(request=request):
        assert variation.status == "cancelled" and variation.lease_owner == ""
        assert not Path(variation.work_dir).exists(), "the README says cancel removes a variation's files"
        assert services.variation_attempt_folders(variation) == []
    assert GenerationRequest.objects.get(pk=request.pk).status == "cancelled"
    types = _events(request.pk)
    assert types.count("request.cancelled") == 1 and types.count("variation.cancelled") == 2
    assert "variation.done" not in types and types.count("variation.started") == 1
    assert Variation.objects.get(pk=second.pk if running.pk == first.pk else first.pk).attempts == 0
    assert types[-1] == "request.cancelled", "the stopped attempt announced nothing after the cancel"


def _flaky(monkeypatch, error):
    """The real runner, but its first attempt writes a frame and then fails with ``error``."""
    real, calls = tasks.runner, []

    def runner(task):
        run = real(task)

        def attempt(spec, **kwargs):
            calls.append(spec.out_dir)
            if len(calls) == 1:
                Path(spec.out_dir, "exr").mkdir(parents=True, exist_ok=True)
                Path(spec.out_dir, "exr", "element.1001.exr").write_bytes(b"half")
                raise error
            return run(spec, **kwargs)

        return attempt

    monkeypatch.setattr(tasks, "runner", runner)
    return calls


@pytest.mark.django_db(transaction=True)
def test_a_transient_error_is_retried_after_a_back_off_and_runs_once(compositor, shot, show_model, monkeypatch,
                                                                     settings):
    settings.PT_RETRY_BACKOFF_S = 1
    calls = _flaky(monkeypatch, OSError(errno.ENOSPC, "No space left on device"))
    request = _request(compositor, shot, show_model, clean=False)
    _wait(lambda: GenerationRequest.objects.get(pk=request.pk).status == "review", "request settled")
    variation = request.variations.get()
    assert (variation.status, variation.attempts, variation.output_attempts) == ("done", 2, 1)
    assert len(calls) == 2 and calls[0] != calls[1] and not Path(calls[0]).exists()
    requeued = RequestEvent.objects.get(request=request, type="variation.requeued").payload
    assert requeued["retry_in_s"] == 1.0 and "No space left" in requeued["error"]


@pytest.mark.django_db(transaction=True)
def test_bad_input_is_not_retried(compositor, shot, show_model, monkeypatch):
    calls = _flaky(monkeypatch, ValueError("the matte has no pixels"))
    request = _request(compositor, shot, show_model, clean=False)
    _wait(lambda: GenerationRequest.objects.get(pk=request.pk).status == "failed", "request failed")
    variation = request.variations.get()
    assert (variation.attempts, variation.output_attempts, len(calls)) == (1, 0, 1)
    assert "no pixels" in variation.error and "variation.requeued" not in _events(request.pk)
    assert not Path(calls[0]).exists()


def test_which_errors_are_transient():
    assert leases.transient(OSError(errno.ENOSPC, "full")) and leases.transient(ConnectionError())
    assert not leases.transient(FileNotFoundError("plate")) and not leases.transient(ValueError("bad"))


def _started_order(*requests):
    ids = {r.pk for r in requests}
    rows = Variation.objects.filter(request_id__in=ids).order_by("started_at")
    return [(v.request_id, v.index) for v in rows]


def test_a_large_request_does_not_delay_another_users_small_one_by_more_than_one_variation(
        compositor, supervisor, shot, show_model):
    large = _request(compositor, shot, show_model, count=3)
    small = services.request_create(user=supervisor, shot=shot, model=show_model, first_frame=1001,
                                    last_frame=1002, count=1, steps=1, base_seed=4)
    for _ in range(4):  # one worker: the tickets one after another, in the order they were queued
        _deliver()
    assert _started_order(large, small) == [(large.pk, 0), (small.pk, 0), (large.pk, 1), (large.pk, 2)]
    first = large.variations.get(index=0)
    waited = small.variations.get().started_at - first.started_at
    one_variation = first.finished_at - first.started_at
    assert waited <= one_variation * 1.5, (waited, one_variation)


def test_a_higher_priority_runs_first_and_equal_ones_take_turns(compositor, supervisor, shot, show_model):
    a = _request(compositor, shot, show_model, count=2)
    b = services.request_create(user=supervisor, shot=shot, model=show_model, first_frame=1001, last_frame=1002,
                                count=2, steps=1, base_seed=4)
    urgent = services.request_create(user=supervisor, shot=shot, model=show_model, first_frame=1001,
                                     last_frame=1002, count=1, steps=1, base_seed=5, priority=2)
    for _ in range(5):
        _deliver()
    # The urgent one first; then turns, the compositor first (the supervisor was served last, by the urgent one).
    assert _started_order(a, b, urgent) == [(urgent.pk, 0), (a.pk, 0), (b.pk, 0), (a.pk, 1), (b.pk, 1)]


def test_the_tasks_carry_late_acks_time_limits_and_no_broker_retry_for_bad_input(settings):
    from review.tasks import release_element

    for task in (generate_variation, release_element):
        assert task.acks_late and task.reject_on_worker_lost
        assert 0 < task.soft_time_limit < task.time_limit
    assert settings.CELERY_WORKER_CANCEL_LONG_RUNNING_TASKS_ON_CONNECTION_LOSS
    assert settings.CELERY_WORKER_PREFETCH_MULTIPLIER == 1
