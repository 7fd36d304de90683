"""Every change to generation requests and variations goes through here."""

import os
import shutil
from pathlib import Path

from django.conf import settings
from django.contrib.auth.models import User
from django.db import transaction
from django.db.models import F, Q
from django.utils import timezone

from generation import events, fair_share, leases, lifecycle, selectors
from generation.engine import task_kinds
from generation.engine.frames import FrameError, read_header
from generation.engine.model_cards import card_manifest_hash, card_shows
from generation.engine.sequence import frame_path, glob_frames
from generation.engine.task_kinds import TaskError, check_model_kind
from generation.engine.upscale_params import multi_frame_radius
from generation.models import (
    GenerationModel,
    GenerationRequest,
    ModelStatus,
    Variation,
    VariationStatus,
    coverage_flagged,
)
from portal import worker
from portal.access import require_role
from portal.errors import Conflict, Forbidden, PortalError
from portal.models import CAN_APPROVE_MODELS, CAN_RAISE_PRIORITY, CAN_REQUEST, Plate, Shot, Show
from portal.paths import checked_pattern, shown, shown_in

DEFAULT_TASK = next(iter(task_kinds.TASKS))  # the first the engine lists (the page's default too)
MAX_VARIATIONS = 24
MAX_STEPS = 200
# A request's place on the GPU queue (generation.fair_share): higher runs first; equal ones share round-robin.
PRIORITIES = {-1: "low", 0: "normal", 1: "high", 2: "urgent"}


def model_check_usable(*, model: GenerationModel, show_id: int, task: str | None = None) -> None:
    """Refuse a model that is not approved, not approved for this show, or (given a task) of a kind that
    cannot do the task (engine/task_kinds.py says which kinds can)."""
    if model.status != ModelStatus.APPROVED:
        raise Forbidden(f"model {model.name} is {model.get_status_display().lower()}, not approved for use",
                        code="model_not_approved")
    if not model.approved_shows.filter(pk=show_id).exists():
        raise Forbidden(f"model {model.name} is not approved for this show", code="model_not_approved")
    if task is not None:
        try:
            check_model_kind(task, model.kind, f"model {model.name}")
        except TaskError as exc:
            raise PortalError(str(exc), code="model_kind") from None


def _check_element(*, shot: Shot, params: dict) -> None:
    """A task on an element names a finished variation of the same shot (``params["variation"]``), never a path."""
    source = params.get("variation")
    if "element" in params or not isinstance(source, int) or isinstance(source, bool) or not Variation.objects.filter(
            pk=source, request__shot=shot).exclude(exr_pattern="").exists():
        raise PortalError("name the element as params {\"variation\": <id>}: a finished variation of this shot",
                          code="params")
    try:
        multi_frame_radius(params)
    except ValueError as exc:
        raise PortalError(str(exc), code="params") from None


def _check_region(*, plate: Plate, matte_pattern: str, rect: list | None, frames: tuple[int, int],
                  key_frames: bool = False) -> tuple[str, list | None]:
    """The request's region: a rect inside the display window, or a matte sequence on the show's storage (for a
    task whose region is key frames: a sequence with some frames present, never a rect or the plate's matte)."""
    if key_frames:
        if rect is not None or not matte_pattern:
            raise PortalError("give the key frames as a matte sequence (only the keyed frames present)",
                              code="region")
    elif rect is not None:
        if len(rect) != 4 or not all(isinstance(v, int) for v in rect):
            raise PortalError("rect must be four integers: x, y, width, height", code="rect")
        x, y, w, h = rect
        dw = plate.display_window
        if w <= 0 or h <= 0 or x < 0 or y < 0 or x + w > dw["width"] or y + h > dw["height"]:
            raise PortalError(f"rect {rect} is not inside the plate's display window "
                              f"({dw['width']}x{dw['height']})", code="rect")
        return "", rect
    matte_pattern = matte_pattern or plate.matte_pattern
    if not matte_pattern:
        raise PortalError("give the region as a matte sequence or a rectangle", code="region")
    pattern = checked_pattern(matte_pattern, show_code=plate.shot.show.code, first_frame=frames[0],
                              last_frame=frames[1], key_frames=key_frames)
    _check_matte_frames(pattern, plate=plate, frames=frames)
    return pattern, None


def _check_matte_frames(pattern: str, *, plate: Plate, frames: tuple[int, int]) -> None:
    """Every matte frame present is an image the worker can use (its header read through OIIO, no pixels): a
    channel to read the matte from and the plate's display window size. Caught here it is a 400, not a 201
    whose variations fail in the worker."""
    width, height = plate.display_window["width"], plate.display_window["height"]
    for frame in range(frames[0], frames[1] + 1):
        path = frame_path(pattern, frame)
        if not os.path.lexists(path):
            continue  # a key frame the artist did not key (checked_pattern checked that the others are there)
        try:
            header = read_header(path, verify_pixels=False)
        except FrameError as exc:
            raise PortalError(f"matte {shown(path)}: not a readable image ({str(exc).split(': ', 1)[-1]})",
                              code="bad_matte") from None
        if not {"A", "Y", "R"} & set(header.channels):
            raise PortalError(f"matte {shown(path)}: no A, Y or R channel to read the matte from; it has "
                              f"{', '.join(header.channels)}", code="bad_matte")
        size = (header.display_window.width, header.display_window.height)
        if size != (width, height):
            raise PortalError(f"matte {shown(path)}: {size[0]}x{size[1]}, but the plate is {width}x{height}",
                              code="bad_matte")


@transaction.atomic
def request_create(*, user: User, shot: Shot, model: GenerationModel | None, first_frame: int, last_frame: int,
                   count: int = 4, task: str = DEFAULT_TASK, plate: Plate | None = None,
                   matte_pattern: str = "", rect: list | None = None, prompt: str = "", steps: int = 25,
                   base_seed: int | None = None, derived_from: Variation | None = None,
                   strength: float | None = None, params: dict | None = None,
                   matte_release: int | None = None, priority: int = 0) -> GenerationRequest:
    """Create a request and its variations, and queue one task per variation (the task's runner does it).

    ``derived_from``: the variation this request iterates from ("iterate from here"); same shot only.
    ``matte_release``: the id of a released matte of the shot (a roto, :func:`selectors.released_mattes`) to use
    as the region, instead of ``matte_pattern`` or ``rect``.
    ``model``: None for a task that needs none (``TaskInfo.needs_model``). ``params``: the task's own inputs.
    ``priority``: higher runs first on the GPU queue (``generation.fair_share``); equal ones share round-robin.
    One of ``PRIORITIES``; above normal only for a supervisor (``CAN_RAISE_PRIORITY``): it goes ahead of everyone.
    """
    show_id = shot.show.pk
    require_role(user, show_id, CAN_REQUEST, "request variations")
    _check_priority(user=user, show_id=show_id, priority=priority)
    if derived_from is not None and derived_from.request.shot_id != shot.pk:
        raise PortalError("a request can only iterate from a variation of the same shot", code="derived_from")
    plate = plate or shot.plates.order_by("pk").first()
    if plate is None or plate.shot_id != shot.pk:
        raise PortalError(f"shot {shot.code} has no plate to generate on", code="no_plate")
    info = _task(task)
    _check_numbers(plate=plate, first_frame=first_frame, last_frame=last_frame, count=count, steps=steps)
    if count > 1 and not info.seed_varies:
        raise PortalError(f"{info.label.lower()} makes one result from the same inputs (the seed does not change it), "
                          f"so {count} variations would be identical: ask for 1", code="count")
    _check_model(model=model, show_id=show_id, task=task, info=info)
    try:
        strength = task_kinds.resolve_strength(task, strength) if strength is not None else None
    except task_kinds.TaskError as exc:
        raise PortalError(str(exc), code="strength") from None
    if not isinstance(params if params is not None else {}, dict):
        raise PortalError("params must be an object of the task's inputs", code="params")
    if matte_release is not None:
        matte_pattern = _released_matte(shot=shot, info=info, release=matte_release, matte_pattern=matte_pattern,
                                        rect=rect, frames=(first_frame, last_frame))
    if info.region in ("matte", "keyframes") or matte_pattern or rect is not None:
        matte_pattern, rect = _check_region(plate=plate, matte_pattern=matte_pattern, rect=rect,
                                            frames=(first_frame, last_frame), key_frames=info.region == "keyframes")
    if info.region == "element":
        _check_element(shot=shot, params=params or {})
    # The artist's key frames (the frames of the key-frame sequence in the range): the dashboard counts them.
    keyed = ({"key_frames": sum(first_frame <= f <= last_frame for f in glob_frames(matte_pattern))}
             if info.region == "keyframes" else {})
    if base_seed is None:
        base_seed = int.from_bytes(os.urandom(4), "little")
    request = GenerationRequest.objects.create(
        shot=shot, plate=plate, task=task, first_frame=first_frame, last_frame=last_frame,
        matte_pattern=matte_pattern, rect=rect, prompt=prompt[:500], count=count, model=model,
        base_seed=base_seed, steps=steps, strength=strength, params=params or {}, requested_by=user,
        derived_from=derived_from, priority=priority)
    Variation.objects.bulk_create(
        Variation(request=request, index=i, seed=(base_seed + 7919 * i) % 2**63, work_dir=str(_work_dir(request, i)))
        for i in range(count))
    events.event_append(request_id=request.pk, type="request.created", actor=user, payload={
        "shot": shot.code, "task": task, "frames": [first_frame, last_frame], "count": count,
        "model": request.model_name, "prompt": request.prompt, "strength": strength, "by": user.username,
        **keyed, **({} if matte_release is None else {"matte_release": matte_release})})
    if derived_from is not None:  # the origin's viewers see the iteration appear
        events.event_append(request_id=derived_from.request_id, type="request.iterated", actor=user, payload={
            "request": request.pk, "variation": derived_from.pk, "label": derived_from.label, "by": user.username})
    for variation_id in request.variations.values_list("pk", flat=True):
        worker.enqueue("generation.tasks.generate_variation", variation_id)
    return request


def _released_matte(*, shot: Shot, info: task_kinds.TaskInfo, release: int, matte_pattern: str, rect: list | None,
                    frames: tuple[int, int]) -> str:
    """The frame pattern of the shot's released matte ``release``, checked against the request."""
    if info.region != "matte":
        raise PortalError(f"{info.label.lower()} does not take a matte, so it cannot use a released one",
                          code="matte_release")
    if matte_pattern or rect is not None:
        raise PortalError("give the region once: a released matte, a matte sequence or a rectangle",
                          code="matte_release")
    found = next((m for m in selectors.released_mattes(shot.pk) if m.release == release), None)
    if found is None:
        raise PortalError(f"release {release} is not a released matte of shot {shot.code}", code="matte_release")
    if not found.first_frame <= frames[0] <= frames[1] <= found.last_frame:
        raise PortalError(f"the released matte {found.label} does not cover frames {frames[0]}-{frames[1]}",
                          code="matte_release")
    return found.path


def task_needs_model(task: str) -> bool:
    return task not in task_kinds.TASKS or task_kinds.TASKS[task].needs_model


def _task(task: str) -> task_kinds.TaskInfo:
    try:
        return task_kinds.task_info(task)
    except TaskError as exc:
        raise PortalError(str(exc), code="task") from None


def _check_numbers(*, plate: Plate, first_frame: int, last_frame: int, count: int, steps: int) -> None:
    if not (plate.first_frame <= first_frame <= last_frame <= plate.last_frame):
        raise PortalError(f"frames {first_frame}-{last_frame} are outside the plate's range "
                          f"{plate.first_frame}-{plate.last_frame}", code="frame_range")
    if not 1 <= count <= MAX_VARIATIONS:
        raise PortalError(f"ask for 1 to {MAX_VARIATIONS} variations", code="count")
    if not 1 <= steps <= MAX_STEPS:
        raise PortalError(f"steps must be 1 to {MAX_STEPS}", code="steps")


def _check_model(*, model: GenerationModel | None, show_id: int, task: str, info: task_kinds.TaskInfo) -> None:
    if not info.needs_model:
        if model is not None:
            raise PortalError(f"{info.label.lower()} needs no generation model", code="model")
        return
    if model is None:
        raise PortalError(f"{info.label.lower()} needs a generation model", code="model")
    model_check_usable(model=model, show_id=show_id, task=task)


def _check_priority(*, user: User, show_id: int, priority: object) -> None:
    if isinstance(priority, bool) or not isinstance(priority, int) or priority not in PRIORITIES:
        names = ", ".join(f"{value} ({name})" for value, name in PRIORITIES.items())
        raise PortalError(f"priority is one of {names}", code="priority")
    if priority > 0:
        require_role(user, show_id, CAN_RAISE_PRIORITY, f"ask for {PRIORITIES[priority]} priority")


def _work_dir(request: GenerationRequest, index: int) -> Path:
    return Path(settings.WORK_ROOT) / request.show.code / request.shot.code / f"request-{request.pk}" / f"v{index + 1:02d}"


def variation_claim(*, variation_id: int, worker_name: str) -> Variation | None:
    """Claim this variation (queued, or running with a dead owner) with a lease; None when it has settled, its
    request was cancelled, or its lease lives (a second delivery while the first runs). The lease's owner is
    ``variation.lease_owner``; the attempt writes into ``variation.output_dir``."""
    variation = Variation.objects.only("pk", "index", "request_id", "status").filter(pk=variation_id).first()
    if variation is None:
        return None
    owner = leases.owner_token(worker_name)
    with transaction.atomic():
        if not lifecycle.variation_move(variation, "claim", quiet=True, payload={"worker": worker_name},
                                        # Only the row's own columns: a condition on a join becomes a subquery
                                        # PostgreSQL checks on its snapshot, not again on the locked row, and
                                        # every racer would win. A cancelled request's variations are cancelled.
                                        where=leases.free(),
                                        claimed_by=worker_name, started_at=timezone.now(), progress=0.0,
                                        frames_done=0, error="", lease_owner=owner, lease_expires_at=leases.expiry(),
                                        attempts=F("attempts") + 1):
            return None
        lifecycle.request_try_move(variation.request_id, "start")
    # Read what the worker runs only once the claim is made (a model changed meanwhile is seen).
    return Variation.objects.select_related("request__shot__sequence__show", "request__model",
                                            "request__plate").get(pk=variation_id)


def variation_claim_next(*, worker_name: str) -> Variation | None:
    """A GPU ticket's claim: the variation that should run next by fair share (``generation.fair_share``), or
    None when nothing is claimable. A claim lost to another worker tries the next one."""
    for _ in range(3):
        candidates = fair_share.next_variations()
        if not candidates:
            return None
        for variation_id in candidates:
            claimed = variation_claim(variation_id=variation_id, worker_name=worker_name)
            if claimed is not None:
                return claimed
    return None


def variation_lease_renew(*, variation: Variation) -> bool:
    """The heartbeat: True while ``variation.lease_owner`` still holds the lease (and it is still running)."""
    return bool(Variation.objects.filter(pk=variation.pk, status=VariationStatus.RUNNING,
                                         lease_owner=variation.lease_owner).update(lease_expires_at=leases.expiry()))


def variation_holds_lease(variation: Variation) -> bool:
    return Variation.objects.filter(pk=variation.pk, status=VariationStatus.RUNNING,
                                    lease_owner=variation.lease_owner).exists()


def _holder(variation: Variation) -> Q:
    return Q(lease_owner=variation.lease_owner) if variation.lease_owner else Q()


def _released() -> dict:
    return {"lease_owner": "", "lease_expires_at": None}


@transaction.atomic
def variation_requeue(*, variation: Variation, error: str = "", backoff_s: float = 0.0, actor=None,
                      expired_only: bool = False) -> bool:
    """Put a running variation back in the queue: its owner died (recovery) or hit a transient error (the
    back-off: a lease held by no one until then). Only for the owner as read (``variation.lease_owner``), and
    with ``expired_only`` only once that lease has expired."""
    where = _holder(variation)
    if expired_only or not variation.lease_owner:
        where &= leases.free()
    lease = ({"lease_owner": leases.BACKOFF_OWNER, "lease_expires_at": leases.expiry(backoff_s)} if backoff_s
             else _released())
    return lifecycle.variation_move(variation, "requeue", quiet=True, where=where, actor=actor,
                                    payload={"error": error[:500], "retry_in_s": round(backoff_s, 1)},
                                    progress=0.0, frames_done=0, error=error[:2000], **lease)


_STAGES = {"track": (0.0, 0.1), "denoise": (0.1, 0.4), "frames": (0.5, 0.5)}


def variation_progress(*, variation: Variation, stage: str, done: int, total: int) -> None:
    """Progress of the lease holder (an attempt that lost its lease says nothing more)."""
    start, span = _STAGES.get(stage, (0.0, 1.0))
    fraction = start + span * done / max(total, 1)
    if not Variation.objects.filter(_holder(variation), pk=variation.pk,
                                    status=VariationStatus.RUNNING).update(progress=fraction):
        return
    events.event_append(request_id=variation.request_id, type="variation.progress", payload={
        "variation": variation.pk, "index": variation.index, "stage": stage, "done": done, "total": total,
        "progress": round(fraction, 4)})


def variation_frame_done(*, variation: Variation, frame: int, done: int) -> None:
    if not Variation.objects.filter(_holder(variation), pk=variation.pk,
                                    status=VariationStatus.RUNNING).update(frames_done=done):
        return
    events.event_append(request_id=variation.request_id, type="variation.frame", payload={
        "variation": variation.pk, "index": variation.index, "frame": frame,
        "proxy": f"/media/variations/{variation.pk}/proxy/{frame}.jpg"})


def variation_is_cancelled(variation_id: int) -> bool:
    return Variation.objects.filter(pk=variation_id, status=VariationStatus.CANCELLED).exists()


@transaction.atomic
def variation_finish(*, variation: Variation, exr_pattern: str, proxy_pattern: str, compute_seconds: float,
                     flicker_ratio: float, element_window: dict, coverage: float | None,
                     staging: str = "") -> bool:
    """Record a finished variation. With a lease (``variation.lease_owner``), only its holder finishes: under the
    row's lock it moves its ``staging`` folder into the work folder, then moves the variation. False when the lease
    was lost (the staging folder is removed: another attempt owns the work now)."""
    if variation.lease_owner:
        if not Variation.objects.select_for_update().filter(_holder(variation), pk=variation.pk,
                                                            status=VariationStatus.RUNNING).exists():
            _remove_inside_work_root(staging)
            return False
        if staging:
            exr_pattern, proxy_pattern = (_moved(p, staging, variation.work_dir) for p in (exr_pattern, proxy_pattern))
            _move_into_place(staging, variation.work_dir)
        for dead in variation_attempt_folders(variation):  # earlier attempts whose owners died: the holder decides
            shutil.rmtree(dead, ignore_errors=True)
    threshold = variation.request.show.flicker_threshold
    # Flagged on the raw figure: a coverage that rounds to 1.0 still has a hole and is still flagged.
    payload = {"compute_seconds": round(compute_seconds, 3), "flicker_ratio": round(flicker_ratio, 4),
               "flicker_flagged": flicker_ratio > threshold, "coverage": None if coverage is None else round(coverage, 4),
               "coverage_flagged": coverage_flagged(coverage)}
    if not lifecycle.variation_move(variation, "finish", quiet=True, payload=payload, where=_holder(variation),
                                    progress=1.0, exr_pattern=exr_pattern, proxy_pattern=proxy_pattern,
                                    gpu_seconds=compute_seconds, flicker_ratio=flicker_ratio, coverage=coverage,
                                    element_window=element_window, finished_at=timezone.now(),
                                    output_attempts=F("output_attempts") + 1, **_released()):
        return False
    _settle_request_if_done(variation.request_id)
    return True


def _moved(pattern: str, staging: str, work_dir: str) -> str:
    """A pattern inside the staging folder, as it reads once the folder is the work folder."""
    if pattern and staging and os.path.commonpath([pattern, staging]) == os.path.normpath(staging):
        return os.path.join(work_dir, os.path.relpath(pattern, staging))
    return pattern


def _move_into_place(staging: str, work_dir: str) -> None:
    """The staging folder becomes the work folder in one rename (a leftover work folder of a lost attempt that
    died after its rename but before its commit is replaced)."""
    final = _inside_work_root(work_dir)
    if final is None or _inside_work_root(staging) is None:
        raise PortalError(f"{work_dir}: a variation's folders lie inside the work area", code="work_dir")
    if final.exists():
        shutil.rmtree(final)
    if not os.path.isdir(staging):  # a runner that wrote no file (its result is in the database)
        final.mkdir(parents=True)
        return
    os.rename(staging, final)


def _inside_work_root(path: str) -> Path | None:
    folder = Path(path).resolve() if path else None
    return folder if folder and Path(settings.WORK_ROOT).resolve() in folder.parents else None


def _remove_inside_work_root(path: str) -> None:
    folder = _inside_work_root(path)
    if folder is not None:
        shutil.rmtree(folder, ignore_errors=True)


def variation_attempt_folders(variation: Variation) -> list[Path]:
    """Every attempt's staging folder of the variation still on disk (dead attempts leave theirs)."""
    folder = _inside_work_root(variation.work_dir)
    if folder is None or not folder.parent.is_dir():
        return []
    return sorted(folder.parent.glob(f".{folder.name}.attempt-*"))


@transaction.atomic
def variation_fail(*, variation: Variation, error: str) -> None:
    error = shown_in(error)  # viewers read it: paths relative to their storage root (the worker's log has all)
    if lifecycle.variation_move(variation, "fail", quiet=True, payload={"error": error[:500]}, error=error[:2000],
                                where=_holder(variation), finished_at=timezone.now(), **_released()):
        _settle_request_if_done(variation.request_id)


def _settle_request_if_done(request_id: int) -> None:
    if Variation.objects.filter(request_id=request_id).exclude(status__in=lifecycle.SETTLED).exists():
        return
    done = Variation.objects.filter(request_id=request_id, status=VariationStatus.DONE).count()
    move = "settle" if done else "fail"
    status = lifecycle.REQUEST_MOVES[move].target
    lifecycle.request_try_move(request_id, move, payload={"status": status, "done": done},
                               settled_at=timezone.now())


@transaction.atomic
def variation_cancel(*, user: User, variation: Variation) -> None:
    """Cancel a variation; its worker stops within one denoising step and removes its partial files."""
    require_role(user, variation.request.show.pk, CAN_REQUEST, "cancel variations")
    _cancel(user, variation)
    _settle_request_if_done(variation.request_id)


def _cancel(user: User, variation: Variation) -> None:
    """Cancel and, once that commits, remove its files (a queued one or one whose worker died has no worker to do
    it; a running one's worker stops within a step and removes what it wrote after, too)."""
    lifecycle.variation_move(variation, "cancel", actor=user, payload={"by": user.username}, cancelled_by=user,
                             finished_at=timezone.now(), **_released())
    transaction.on_commit(lambda: variation_remove_files(variation))


def variation_remove_files(variation: Variation) -> None:
    """Remove a variation's work folder and every attempt's staging folder, which must lie inside the work area."""
    for folder in variation_attempt_folders(variation):
        shutil.rmtree(folder, ignore_errors=True)
    _remove_inside_work_root(variation.work_dir)


@transaction.atomic
def request_cancel(*, user: User, request: GenerationRequest) -> int:
    """Cancel a request that has not been signed off: its running variations stop, and it is cancelled
    (``request.cancelled``). A signed-off, released or cancelled request is refused (409)."""
    require_role(user, request.show.pk, CAN_REQUEST, "cancel requests")
    with lifecycle.request_moving(request, "cancel", actor=user, settled_at=timezone.now()) as moved:
        running = list(request.variations.filter(status__in=lifecycle.VARIATION_MOVES["cancel"].sources))
        for variation in running:
            _cancel(user, variation)
        moved.payload = {"by": user.username, "variations": len(running)}
    return len(running)


@transaction.atomic
def model_approve(*, user: User, model: GenerationModel, show_id: int) -> None:
    """A supervisor of the show approves a model for use on it: only for a show its card names (a model trained
    on one show's look-dev is that show's), only the weights that were registered, and never a retired model
    (retired is final: new weights are registered under a new name)."""
    require_role(user, show_id, CAN_APPROVE_MODELS, "approve models")
    show = Show.objects.get(pk=show_id)
    if show.code not in card_shows(model.path):
        raise Forbidden(f"model {model.name} was not made for show {show.code}: its card names "
                        f"{', '.join(card_shows(model.path)) or 'no show'}", code="model_show")
    if model.manifest_hash and card_manifest_hash(model.path) != model.manifest_hash:
        raise Conflict(f"model {model.name}'s card changed since it was registered; register it again",
                       code="model_changed")
    moved = GenerationModel.objects.filter(pk=model.pk, status__in=[ModelStatus.PENDING, ModelStatus.APPROVED]
                                           ).update(status=ModelStatus.APPROVED, approved_by=user)
    if not moved:
        raise Conflict(f"model {model.name} is retired, and a retired model stays retired", code="model_retired")
    model.approved_shows.add(show_id)


def model_approvable_for(show: Show):
    """Models a supervisor of the show may approve for it: pending, or approved elsewhere, whose card names the
    show, and not yet approved for it. Another show's pending models are not listed."""
    candidates = (GenerationModel.objects.filter(status__in=[ModelStatus.PENDING, ModelStatus.APPROVED])
                  .exclude(approved_shows=show).order_by("name"))
    return [model for model in candidates if show.code in card_shows(model.path)]


@transaction.atomic
def model_register(*, name: str, kind: str, path: str, manifest_hash: str) -> GenerationModel:
    """Register a model directory as pending approval, or re-register retrained weights under a known name.

    New weights are new provenance: a re-registered model loses its approvals and goes back to pending,
    so a supervisor approves exactly what will run. A retired name is not revived.
    """
    model, created = GenerationModel.objects.get_or_create(
        name=name, defaults={"kind": kind, "path": path, "manifest_hash": manifest_hash})
    if not created:
        if model.status == ModelStatus.RETIRED:
            raise Conflict(f"model {name} is retired; register new weights under a new name", code="model_retired")
        GenerationModel.objects.filter(pk=model.pk).update(
            kind=kind, path=path, manifest_hash=manifest_hash, status=ModelStatus.PENDING, approved_by=None)
        model.approved_shows.clear()
        model.refresh_from_db()
    return model


def plate_grain_record(*, plate, profile: dict) -> None:
    """Store a plate's measured grain profile (the engine's GrainProfile.to_dict; the empty one for no grain)."""
    type(plate).objects.filter(pk=plate.pk).update(grain_profile=profile)
    plate.grain_profile = profile
