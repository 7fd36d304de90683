"""Celery adapter for releases: load by id, build the publish plan, write, record."""

from pathlib import Path

from celery import shared_task
from django.conf import settings

from generation import roto_keyframes
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


@shared_task(bind=True, acks_late=True, max_retries=3, default_retry_delay=10)
def release_element(self, release_id: int) -> None:
    release = Release.objects.select_related(
        "signoff__variation__request__shot__sequence__show", "signoff__variation__request__model",
        "signoff__pick__picked_by", "signoff__signed_by").get(pk=release_id)
    if release.status == ReleaseStatus.DONE:
        return
    if release.signoff.decision != SignOffDecision.APPROVED:
        services.release_fail(release=release, error="only an approved sign-off is released; this variation was "
                                                     "sent back")
        return
    request = release.signoff.variation.request
    show = request.show
    plan = PublishPlan(
        source_pattern=release.signoff.variation.exr_pattern, target_pattern=publish_pattern(release),
        frames=request.frame_list(), attributes=provenance(release),
        colourspace=show.working_space, release_id=release.pk, ocio_config=show_colour(show).config, fps=show.fps,
        plate_pattern=request.plate.path_pattern, threads=settings.PT_PUBLISH_THREADS)
    services.release_mark(release=release, status=ReleaseStatus.WRITING)
    step = max(1, len(plan.frames) // 12)

    def on_frame(done: int, total: int) -> None:
        if done % step == 0 or done == total:
            services.release_progress(release=release, done=done, total=total)

    try:
        folder = publish(plan, on_frame=on_frame)
    except PublishError as exc:
        services.release_fail(release=release, error=str(exc))
        return
    services.release_finish(release=release, path_pattern=plan.target_pattern,
                            manifest_path=str(Path(folder) / MANIFEST))
