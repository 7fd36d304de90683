"""Celery adapters: load by id, claim, run the engine, record through services."""

import logging
import socket
import time

from celery import shared_task
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_ready
from django.conf import settings

from generation import leases, recovery, selectors, services
from generation.engine import task_kinds
from generation.engine.inpaint import Cancelled
from generation.engine.variation import VariationSpec
from generation.models import Variation
from generation.time_limits import Deadline, TimeLimit
from portal import worker
from portal.colour import show_colour

log = logging.getLogger(__name__)


def _spec_for(variation: Variation) -> VariationSpec:
    """The engine's spec: the request's task with its parameters (strength: the request's, or the task's
    default), plate, region, model, seed and the show's colour."""
    request = variation.request
    show = request.show
    colour = show_colour(show)
    return VariationSpec(
        plate_pattern=request.plate.path_pattern, matte_pattern=request.matte_pattern or None,
        rect=tuple(request.rect) if request.rect else None, first=request.first_frame, last=request.last_frame,
        model_path=request.model.path if request.model_id else "", seed=variation.seed, steps=request.steps,
        out_dir=variation.output_dir, **_finishing(variation),
        task=request.task, strength=task_kinds.resolve_strength(request.task, request.strength), prompt=request.prompt,
        working_space=show.working_space, plate_colourspace=request.plate.colourspace,
        pixel_aspect=request.plate.pixel_aspect,
        config_name=colour.config, display=colour.display, view=colour.view, device=settings.PT_DEVICE,
        attributes={
            "parallel_track:request": str(request.pk), "parallel_track:variation": variation.label,
            "parallel_track:shot": request.shot.code, "parallel_track:show": show.code,
            "parallel_track:ocio_config": colour.config, "parallel_track:plate_colourspace": request.plate.colourspace,
            "parallel_track:generated": "raw material, not final",
            # Fixed per request, so the same request, seed, model and device give bit-identical files.
            "DateTime": request.created_at.strftime("%Y:%m:%d %H:%M:%S"),
        })


def _finishing(variation: Variation) -> dict:
    """The finishing stage's inputs: on when the show has an approved upscaler (the card upscaled, carried, then
    regrained with the plate's grain profile, measured on first use and kept); off without one, so no element is
    grained that was not upscaled. A task on an element (upscale) has its upscaler as its model and always regrains."""
    request = variation.request
    if task_kinds.task_info(request.task).region == "element":
        return {"upscaler_path": "", "grain_profile": _plate_grain(request.plate)}
    upscaler = selectors.show_upscaler(request.show.pk)
    if upscaler is None:
        return {"upscaler_path": "", "grain_profile": None}
    return {"upscaler_path": upscaler.path, "grain_profile": _plate_grain(request.plate)}


def _plate_grain(plate) -> dict:
    if plate.grain_profile is None:
        from generation.engine.grain import measure_plate

        show = plate.shot.show
        services.plate_grain_record(plate=plate, profile=measure_plate(
            plate.path_pattern, plate.first_frame, plate.last_frame,
            colourspace=plate.colourspace, working_space=show.working_space,
            config_name=show_colour(show).config).to_dict())
    return plate.grain_profile


def _params(variation: Variation) -> dict:
    """The runner's ``params=``: the request's own inputs; a task whose region is an element names it as
    ``{"variation": id}`` (a variation of the same shot), given to the runner as its EXR sequence."""
    request = variation.request
    params = dict(request.params or {})
    if task_kinds.task_info(request.task).region == "element":
        params.pop("element", None)  # a path is never taken from a request: only a variation of this shot
        source = Variation.objects.filter(pk=params.pop("variation", None), request__shot=request.shot).first()
        if source is None or not source.exr_pattern:
            raise ValueError("an upscale names a finished variation of the same shot as params['variation']")
        params["element"] = source.exr_pattern
    return {"params": params} if params else {}


def runner(task: str):
    """The engine function that does ``task`` (``TaskInfo.runner``, "module:function"), imported on the worker.
    It is called as ``runner(spec, on_progress=, on_frame=, should_cancel=)``, plus ``params=`` (the
    request's own inputs) when the request has any, and returns the variation's patterns and figures."""
    return task_kinds.load_runner(task)


def _usable(variation: Variation) -> None:
    """The request's model checked as it is now, just before it runs (it may have been retired or re-registered
    as another kind since the request was made)."""
    request = variation.request
    if task_kinds.task_info(request.task).needs_model:
        request.model.refresh_from_db()
        services.model_check_usable(model=request.model, show_id=request.show.pk, task=request.task)


@shared_task(name="generation.tasks.recover_stranded")
def recover_stranded(every_owner_dead: bool = True) -> dict:
    """The embedded portal's start: every lease is a dead process's; requeue their work and send its tickets."""
    return recovery.recover(every_owner_dead=every_owner_dead)


worker_ready.connect(recovery.start_sweeper, weak=False)  # each production worker, once it consumes


@shared_task(name="generation.tasks.warm_engine")
def warm_engine() -> None:
    """The embedded worker's start: import the denoisers' model code before the first Generate needs it."""
    from generation.engine import backends

    backends.warm()


def _limits() -> dict:
    soft = settings.PT_GENERATE_SOFT_LIMIT_S
    return {"soft_time_limit": soft, "time_limit": soft + settings.PT_HARD_LIMIT_GRACE_S}


@shared_task(bind=True, acks_late=True, reject_on_worker_lost=True, max_retries=None, **_limits())
def generate_variation(self, variation_id: int | None = None) -> None:
    """One GPU ticket: run the variation that should run next (``generation.fair_share``). ``variation_id`` is
    the variation the ticket was sent for; any ticket may run any claimable variation, so a ticket whose
    variation has settled or is leased by a live worker does nothing, or runs the next one waiting."""
    worker_name = self.request.hostname or socket.gethostname()
    variation = services.variation_claim_next(worker_name=worker_name)
    if variation is None:
        return  # nothing claimable: a duplicate delivery, or a surplus ticket of recovery
    if variation.attempts > settings.PT_MAX_ATTEMPTS:
        services.variation_fail(variation=variation, error=f"gave up after {variation.attempts - 1} attempts")
        return
    staging = variation.output_dir
    try:
        _attempt(variation, staging)
    except Exception as exc:  # noqa: BLE001 - a transient error: back to the queue after a back-off
        if not leases.transient(exc):
            raise
        _remove_staging(staging)
        _retry_later(self, variation, exc)


def _remove_staging(staging: str) -> None:
    try:
        services._remove_inside_work_root(staging)
    except OSError:
        log.warning("could not remove %s", staging, exc_info=True)


def _retry_later(task, variation: Variation, exc: BaseException) -> None:
    """Requeue the variation with a back-off lease and send a ticket for when it ends; past the attempts, fail."""
    from django.db import close_old_connections

    close_old_connections()
    error = f"{type(exc).__name__}: {exc}"
    log.warning("variation %s: transient error, attempt %s: %s", variation.pk, variation.attempts, error)
    if variation.attempts >= settings.PT_MAX_ATTEMPTS:
        services.variation_fail(variation=variation, error=f"gave up after {variation.attempts} attempts: {error}")
        return
    backoff = leases.backoff_seconds(variation.attempts)
    if services.variation_requeue(variation=variation, error=error, backoff_s=backoff):
        worker.send_later(task.name, variation.pk, countdown=backoff)


def _attempt(variation: Variation, staging: str) -> None:
    """Run one claimed attempt into ``staging`` while its lease is renewed; only the holder finishes."""
    try:
        run = runner(variation.request.task)
        _usable(variation)
        params = _params(variation)
    except Exception as exc:  # noqa: BLE001 - bad input: recorded, never retried
        if leases.transient(exc):
            raise
        services.variation_fail(variation=variation, error=str(exc))
        return
    frames_done = 0

    def on_frame(frame: int, exr_path: str, proxy_path: str) -> None:
        nonlocal frames_done
        frames_done += 1
        services.variation_frame_done(variation=variation, frame=frame, done=frames_done)
        if settings.PT_FAULT_FRAME_DELAY_S:  # the fault suite's slow work area (portal/settings.py)
            time.sleep(settings.PT_FAULT_FRAME_DELAY_S)

    def on_progress(stage: str, done: int, total: int) -> None:
        services.variation_progress(variation=variation, stage=stage, done=done, total=total)

    def hard_limit() -> None:  # the watchdog's thread, the run stuck where it never checks (generation.time_limits)
        _remove_staging(staging)
        services.variation_fail(variation=variation, error=deadline.hard_message)

    deadline = Deadline(settings.PT_GENERATE_SOFT_LIMIT_S, on_hard=hard_limit, what="the variation")
    with leases.Heartbeat(lambda: services.variation_lease_renew(variation=variation)) as heartbeat, deadline:
        def should_cancel() -> bool:
            deadline.check()  # between denoising steps and frames, on any pool
            return heartbeat.lost or services.variation_is_cancelled(variation.pk)

        spec = _spec_for(variation)  # out_dir: this attempt's staging folder
        try:
            result = run(spec, on_progress=on_progress, on_frame=on_frame, should_cancel=should_cancel, **params)
        except Cancelled:
            _stopped(variation, staging)
            return
        except (TimeLimit, SoftTimeLimitExceeded) as exc:
            _remove_staging(staging)
            services.variation_fail(variation=variation, error=str(exc) or "ran past its time limit")
            return
        except Exception as exc:  # noqa: BLE001 - recorded on the variation, shown to its viewers
            if leases.transient(exc):
                raise
            log.exception("variation %s failed", variation.pk)
            _remove_staging(staging)
            services.variation_fail(variation=variation, error=f"{type(exc).__name__}: {exc}")
            return
        if heartbeat.lost:
            _remove_staging(staging)
            return
    services.variation_finish(variation=variation, exr_pattern=result.exr_pattern,
                              proxy_pattern=result.proxy_pattern, compute_seconds=result.compute_seconds,
                              flicker_ratio=result.flicker_ratio, element_window=result.element_window,
                              coverage=getattr(result, "coverage", None),  # None: a runner that measures none
                              staging=staging)


def _stopped(variation: Variation, staging: str) -> None:
    """The run stopped between steps: cancelled (every file of the variation goes), or its lease lost (only
    this attempt's folder goes; the new holder owns the rest)."""
    if services.variation_is_cancelled(variation.pk):
        services.variation_remove_files(variation)
    else:
        _remove_staging(staging)
