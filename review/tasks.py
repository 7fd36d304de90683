"""Celery adapter for releases: load by id, build the publish plan, write, record."""

import shutil
import socket
from pathlib import Path

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from django.conf import settings

from generation import leases, recovery, roto_keyframes
from generation.time_limits import Deadline, TimeLimit
from portal import worker
from portal.colour import show_colour
from review import services
from review.models import Release, ReleaseStatus, SignOffDecision
from review.publish import MANIFEST, PublishError, PublishPlan, publish


def publish_pattern(release: Release) -> str:
    request = release.signoff.variation.request
    show = request.show
    return show.publish_template.format(
        publish_root=show.publish_root or str(Path(settings.PUBLISH_ROOT).resolve()), show=show.code,
        sequence=request.shot.sequence.code, shot=request.shot.code, task=request.task, version=release.version)


def provenance(release: Release) -> dict[str, str]:
    signoff = release.signoff
    variation = signoff.variation
    request = variation.request
    pick = signoff.pick
    picked = {"parallel_track:picked_by": pick.picked_by.username,
              "parallel_track:picked_at": pick.created_at.isoformat()} if pick else {}
    return {
        "parallel_track:generated": "raw material, not final",
        "parallel_track:show": request.show.code,
        "parallel_track:shot": request.shot.code,
        "parallel_track:task": request.task,
        "parallel_track:request": str(request.pk),
        "parallel_track:variation": variation.label,
        "parallel_track:seed": str(variation.seed),
        "parallel_track:model": request.model_name,
        "parallel_track:model_manifest_sha256": request.model.manifest_hash if request.model_id else "",
        "parallel_track:prompt": request.prompt,
        **picked,
        "parallel_track:signed_off_by": signoff.signed_by.username,
        "parallel_track:signed_off_at": signoff.created_at.isoformat(),
        "parallel_track:version": str(release.version),
        **roto_keyframes.release_provenance(request),  # a roto drawn in the browser: its key frames, who drew them
    }


def _limits() -> dict:
    soft = settings.PT_RELEASE_SOFT_LIMIT_S
    return {"soft_time_limit": soft, "time_limit": soft + settings.PT_HARD_LIMIT_GRACE_S}


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, **_limits())
def release_element(self, release_id: int) -> None:
    """Write one release under its lease: a second delivery while the first writes does nothing (and never
    wipes the first's staging folder); a dead writer's lease expires and a redelivery takes over, writing its own
    staging folder; only the holder renames it into the version. Transient errors retry with back-off. Its soft
    time limit is checked between files and its hard limit watched (``generation.time_limits``), on any pool."""
    release = Release.objects.filter(pk=release_id).first()
    if release is None or release.status in (ReleaseStatus.DONE, ReleaseStatus.FAILED):
        return  # a redelivery of a settled release (a hard time limit ends the worker before the ack)
    lease = leases.work_lease_take("release", release_id, self.request.hostname or socket.gethostname())
    if lease is None:
        return  # another attempt writes it now
    wrote = False
    staging: list[Path] = []  # the attempt's staging folder, once its plan names it

    def hard_limit() -> None:  # the watchdog's thread: the write is stuck where it never checks
        for folder in staging:
            shutil.rmtree(folder, ignore_errors=True)
        services.release_fail(release=release, error=deadline.hard_message)
        leases.work_lease_end(lease, wrote_output=False)

    deadline = Deadline(settings.PT_RELEASE_SOFT_LIMIT_S, on_hard=hard_limit, what="the release")
    try:
        with leases.Heartbeat(lambda: leases.work_lease_renew(lease)) as heartbeat, deadline:
            wrote = _write_release(release_id, lease, heartbeat, deadline, staging)
    except leases.LeaseLost:
        return
    except (TimeLimit, SoftTimeLimitExceeded) as exc:  # publish removed the staging folder on its way out
        services.release_fail(release=release, error=str(exc) or deadline.soft_message)
        leases.work_lease_end(lease, wrote_output=False)
        return
    except Exception as exc:  # noqa: BLE001 - transient: again after a back-off, up to the attempts
        if not leases.transient(exc):
            raise
        from django.db import close_old_connections

        close_old_connections()
        leases.work_lease_end(lease, wrote_output=False)
        if lease.attempts >= settings.PT_MAX_ATTEMPTS:
            services.release_fail(release=Release.objects.get(pk=release_id),
                                  error=f"gave up after {lease.attempts} attempts: {type(exc).__name__}: {exc}")
            return
        raise self.retry(exc=exc, countdown=leases.backoff_seconds(lease.attempts)) from exc
    leases.work_lease_end(lease, wrote_output=wrote)


def _write_release(release_id: int, lease, heartbeat, deadline: Deadline, staging: list[Path]) -> bool:
    """The release written by the lease holder; True when this attempt moved a version into place."""
    release = Release.objects.select_related(
        "signoff__variation__request__shot__sequence__show", "signoff__variation__request__model",
        "signoff__pick__picked_by", "signoff__signed_by").get(pk=release_id)
    if release.status == ReleaseStatus.DONE:
        return False
    if release.signoff.decision != SignOffDecision.APPROVED:
        services.release_fail(release=release, error="only an approved sign-off is released; this variation was "
                                                     "sent back")
        return False
    request = release.signoff.variation.request
    show = request.show
    plan = PublishPlan(
        source_pattern=release.signoff.variation.exr_pattern, target_pattern=publish_pattern(release),
        frames=request.frame_list(), attributes=provenance(release),
        colourspace=show.working_space, release_id=release.pk, ocio_config=show_colour(show).config, fps=show.fps,
        plate_pattern=request.plate.path_pattern, threads=settings.PT_PUBLISH_THREADS, attempt=lease.attempts)
    staging.append(plan.staging_dir)
    services.release_mark(release=release, status=ReleaseStatus.WRITING)
    step = max(1, len(plan.frames) // 12)

    def on_frame(done: int, total: int) -> None:
        if heartbeat.lost:
            raise leases.LeaseLost(f"release {release_id}: lease lost")
        deadline.check()  # between files, on any pool
        if done % step == 0 or done == total:
            services.release_progress(release=release, done=done, total=total)

    def holder_only() -> None:
        deadline.check()
        if heartbeat.lost or not leases.work_lease_holds(lease):
            raise leases.LeaseLost(f"release {release_id}: lease lost before the move into place")

    existed = plan.version_dir.exists()
    try:
        folder = publish(plan, on_frame=on_frame, before_rename=holder_only)
    except PublishError as exc:
        if isinstance(exc.__cause__, OSError) and leases.transient(exc.__cause__):
            raise exc.__cause__ from exc  # a full or flaky disk: retried after a back-off
        services.release_fail(release=release, error=str(exc))
        return False
    services.release_finish(release=release, path_pattern=plan.target_pattern,
                            manifest_path=str(Path(folder) / MANIFEST))
    return not existed


@shared_task(name="review.tasks.recover_releases")
def recover_releases(every_owner_dead: bool = False) -> int:
    """Releases queued or half-written with no live writer are sent again (the lease drops a duplicate); on the
    embedded portal's start every writer is dead. In production, only while the publish queue is empty."""
    from generation.models import WorkLease
    from generation.recovery import broker_tickets

    if not every_owner_dead and broker_tickets("publish"):
        return 0
    stranded = Release.objects.filter(status__in=[ReleaseStatus.QUEUED, ReleaseStatus.WRITING])
    live = WorkLease.objects.filter(~leases.free(""), kind="release").values_list("key", flat=True)
    if not every_owner_dead:
        stranded = stranded.exclude(pk__in=list(live))
    else:
        WorkLease.objects.filter(kind="release", key__in=stranded.values_list("pk", flat=True)).update(
            owner="", expires_at=None)
    ids = list(stranded.values_list("pk", flat=True))
    for release_id in ids:
        worker.send_now("review.tasks.release_element", release_id)
    return len(ids)


recovery.on_recovery(recover_releases)
