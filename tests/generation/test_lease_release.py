"""A release queued or half-staged when the embedded portal died completes exactly once at the restart's recovery.

The portal's in-process queue dies with it: here the release task is never sent (``enqueue`` does nothing while
the sign-off is made), and a dead writer's lease and staging folder are left as a SIGKILL leaves them. Recovery
(``review.tasks.recover_releases``, what ``manage.py serve`` runs first) sends it; it writes v001 once."""

from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from generation import services
from generation.models import GenerationRequest, RequestEvent, WorkLease
from portal import worker
from review import services as review
from review.models import Release
from review.publish import verify
from review.tasks import publish_pattern, recover_releases

pytestmark = pytest.mark.django_db(transaction=True)


def test_a_half_staged_release_completes_exactly_once_after_recovery(compositor, director, shot, show_model,
                                                                    monkeypatch, storage):
    request = services.request_create(user=compositor, shot=shot, model=show_model, first_frame=1001,
                                      last_frame=1003, count=1, steps=1, base_seed=2)
    worker.drain_embedded()
    review.pick_make(user=director, variation=request.variations.get())
    with monkeypatch.context() as lost_queue:
        lost_queue.setattr(worker, "enqueue", lambda *args: None)
        signoff = review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=request.pk))
    release = Release.objects.get(signoff=signoff)
    final = Path(publish_pattern(release)).parent
    dead_staging = final.parent / f".{final.name}.partial-{release.pk}.1"
    dead_staging.mkdir(parents=True)
    (dead_staging / "half.exr").write_bytes(b"half a frame")
    Release.objects.filter(pk=release.pk).update(status="writing")
    WorkLease.objects.create(kind="release", key=release.pk, owner="dead@portal:1:x", attempts=1,
                             expires_at=timezone.now() + timedelta(minutes=5))  # the killed writer's, unexpired

    assert recover_releases(every_owner_dead=True) == 1
    worker.drain_embedded()
    release.refresh_from_db()
    assert release.status == "done", release.error
    assert final.is_dir() and verify(final) == [] and not dead_staging.exists()
    assert [p.name for p in final.parent.iterdir()] == [final.name]
    lease = WorkLease.objects.get(kind="release", key=release.pk)
    assert (lease.attempts, lease.output_attempts, lease.owner) == (2, 1, "")
    assert GenerationRequest.objects.get(pk=request.pk).status == "released"
    assert recover_releases(every_owner_dead=True) == 0  # done: nothing to send again
    types = list(RequestEvent.objects.filter(request=request).values_list("type", flat=True))
    assert types.count("release.done") == 1 and "release.failed" not in types
