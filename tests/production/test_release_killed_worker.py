"""A release whose Celery worker is SIGKILLed while it writes frames: nothing half-written becomes visible in
the publish area, and the redelivered task completes the same version (v001, not v002) on a new worker; websocket
viewers of the request see its whole event log, in order. Its figures go to the fault bench (``tests.bench.faults``,
"worker_sigkill_release")."""

import os
import shutil
import time
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command

from generation.engine.frames import Window, write_exr
from generation.engine.sequence import frame_path
from generation.models import GenerationRequest, RequestEvent, Variation, WorkLease
from portal.models import Plate
from review import services as review
from review.models import Release
from review.publish import MANIFEST, verify
from review.tasks import publish_pattern
from tests.conftest import inside
from tests.production.test_faults import _record
from tests.production.test_production_loop import wait_for

pytestmark = [pytest.mark.production, pytest.mark.django_db(transaction=True)]

FRAMES = range(1001, 1151)  # 150 2K frames, ~3.3 MB each: about 500 MB to copy, hash and sync
WIDTH, HEIGHT = 2048, 1080


def _sizeable_element(folder: Path) -> str:
    """A finished variation's element: one grainy 2K RGBA half frame, hard-linked under every frame number.

    The release still reads, copies, hashes and syncs every frame: real work, on a source that costs the
    test one frame's encoding and 3 MB of disk.
    """
    folder.mkdir(parents=True)
    pattern = str(folder / "element.####.exr")
    rng = np.random.default_rng(5)
    alpha = np.zeros((HEIGHT, WIDTH, 1), np.float32)
    alpha[: HEIGHT // 2] = 1.0
    rgb = rng.normal(0.8, 0.05, (HEIGHT, WIDTH, 3)).astype(np.float32) * alpha
    first = frame_path(pattern, FRAMES[0])
    write_exr(first, np.concatenate([rgb, alpha], axis=2), display_window=Window(0, 0, WIDTH, HEIGHT),
              data_window=Window(0, 0, WIDTH, HEIGHT // 2))
    for frame in FRAMES[1:]:
        os.link(first, frame_path(pattern, frame))
    return pattern


def _finished_variation(compositor, shot, show_model, storage) -> Variation:
    """A finished 2K variation on a 2K plate of the same frames (a release checks the element against its plate's
    display window and reads the plate's header), so the release has a real 500 MB to write."""
    folder = storage / "work" / shot.show.code / f"killed-release-{shot.pk}"
    pattern = _sizeable_element(folder / "exr")
    window = {"x": 0, "y": 0, "width": WIDTH, "height": HEIGHT}
    plate = Plate.objects.create(shot=shot, name="release-2k", path_pattern=pattern, first_frame=FRAMES[0],
                                 last_frame=FRAMES[-1], display_window=window,
                                 data_window={**window, "height": HEIGHT // 2}, channels=["R", "G", "B", "A"])
    request = GenerationRequest.objects.create(
        shot=shot, plate=plate, first_frame=FRAMES[0], last_frame=FRAMES[-1], count=1,
        model=show_model, steps=2, status="review", requested_by=compositor, prompt="a wide dusk sky")
    return Variation.objects.create(request=request, index=0, seed=7, status="done", progress=1.0,
                                    frames_done=len(FRAMES), work_dir=str(folder), exr_pattern=pattern)


def visible(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if not p.name.startswith("."))


def test_a_release_survives_its_worker_being_killed_mid_write(workers, compositor, director, shot, show_model,
                                                              storage, watch):
    # One frame at a time (a real setting, PT_PUBLISH_THREADS) so the write lasts long enough to interrupt.
    # Short leases and sweeps (generation/leases.py): the dead writer's lease runs out in seconds, not a minute.
    fast = {"PT_LEASE_SECONDS": "4", "PT_RECOVERY_INTERVAL_S": "2"}
    first = workers.ensure(CELERY_VISIBILITY_TIMEOUT="5", PT_PUBLISH_THREADS="1", **fast)
    variation = _finished_variation(compositor, shot, show_model, storage)
    viewers = watch(variation.request)
    review.pick_make(user=director, variation=variation)
    signoff = review.signoff_approve(user=compositor, request=GenerationRequest.objects.get(pk=variation.request_id))
    release = Release.objects.get(signoff=signoff)
    final = Path(publish_pattern(release)).parent
    staging = final.parent / f".{final.name}.partial-{release.pk}.1"  # the first attempt's own staging folder
    assert final.name == "v001"

    def writing_frames() -> bool:
        return staging.is_dir() and len(list(staging.glob("*.exr"))) >= 5

    try:
        wait_for(writing_frames, "the release to be writing frames into its staging folder", timeout=120,
                 interval=0.01)
        assert first.kill() == -9
        killed_at = time.time()
        written = len(list(staging.glob("*.exr")))
        assert written < len(FRAMES), "the release finished before the worker could be killed: make it larger"
        # What a farm machine sees now: no version folder, only the hidden staging folder.
        assert not final.exists()
        assert visible(final.parent) == []
        assert [p.name for p in final.parent.iterdir()] == [staging.name]
        assert Release.objects.get(pk=release.pk).status == "writing"

        # The unacknowledged message is redelivered once older than the visibility timeout (see the generation
        # killed-worker test): a worker starting after that restores it at start-up.
        time.sleep(max(0.0, killed_at + 6 - time.time()))
        second = workers.start(wait=False, CELERY_VISIBILITY_TIMEOUT="5", **fast)

        taken_over: list[float] = []

        def settled() -> bool:
            if not taken_over and WorkLease.objects.filter(kind="release", key=release.pk, attempts__gte=2).exists():
                taken_over.append(time.time())
            return Release.objects.get(pk=release.pk).status in ("done", "failed")

        wait_for(settled, "the release to complete on the second worker", timeout=180, interval=0.25)
        seen = viewers.check()
        lease = WorkLease.objects.get(kind="release", key=release.pk)
        release_dones = RequestEvent.objects.filter(request_id=variation.request_id, type="release.done").count()
        versions = visible(final.parent)
        _record("worker_sigkill_release", completed=int(Release.objects.get(pk=release.pk).status == "done"),
                expected=1, duplicates=max(0, lease.output_attempts - 1) + max(0, release_dones - 1),
                partial_visible=len([v for v in versions if v != "v001"]) + (len(verify(final)) if final.exists()
                                                                               else 1),
                recover_s=round((taken_over or [time.time()])[0] - killed_at, 2), **seen)
        assert seen["viewers_complete"] == seen["viewers"] and not seen["viewers_refused"], viewers.describe()
        assert second.alive
        release.refresh_from_db()
        assert release.status == "done", release.error
        assert release.version == 1 and Release.objects.count() == 1
        assert visible(final.parent) == ["v001"], "a retry must complete v001, not allocate another version"
        assert not staging.exists()
        names = sorted(p.name for p in final.glob("*.exr"))
        assert names == sorted(Path(frame_path(release.path_pattern, f)).name for f in FRAMES)
        assert len((final / MANIFEST).read_text().splitlines()) == len(FRAMES)
        assert verify(final) == []
        call_command("verify_release", str(final))
        types = list(RequestEvent.objects.filter(request_id=variation.request_id).values_list("type", flat=True))
        assert types.count("release.done") == 1 and "release.failed" not in types
        assert GenerationRequest.objects.get(pk=variation.request_id).status == "released"
    finally:
        for folder in (final, staging):  # ~500 MB: not left in the test storage
            if folder.exists():
                shutil.rmtree(inside(folder, storage / "publish"))
