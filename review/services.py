"""Picks, notes, sign-off and release: the only place review state changes."""

from django.contrib.auth.models import User
from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from generation import events, lifecycle
from generation.engine.task_kinds import task_info
from generation.models import GenerationRequest, Variation, VariationStatus
from portal import worker
from portal.access import require_member, require_role
from portal.errors import Conflict, PortalError
from portal.models import CAN_PICK, CAN_SIGN_OFF
from review.models import Note, Pick, Release, ReleaseStatus, SignOff, SignOffDecision


def current_pick(request_id: int) -> Pick | None:
    return Pick.objects.filter(request_id=request_id).select_related("variation", "picked_by").first()


def pick_make(*, user: User, variation: Variation, note: str = "") -> Pick:
    """Pick one variation of a request; an earlier pick stays on record and is superseded. A request signed
    off (or cancelled) in the meantime is never overwritten: the pick is refused with a 409."""
    request = variation.request
    require_role(user, request.show.pk, CAN_PICK, "pick variations")
    if variation.status != VariationStatus.DONE:
        raise Conflict(f"{variation.label} is {variation.status}; only a finished variation can be picked",
                       code="not_done")
    with lifecycle.request_moving(request, "pick", actor=user) as moved:
        pick = Pick.objects.create(request=request, variation=variation, note=note, picked_by=user)
        moved.payload = {"pick": pick.pk, "variation": variation.pk, "index": variation.index,
                         "label": variation.label, "by": user.username, "note": note}
    return pick


def pick_reject_all(*, user: User, request: GenerationRequest, note: str) -> Pick:
    """Every variation rejected: the request goes back to review (refused once signed off, released or
    cancelled)."""
    require_role(user, request.show.pk, CAN_PICK, "reject variations")
    if not note.strip():
        raise PortalError("say why every variation is rejected", code="note_required")
    with lifecycle.request_moving(request, "reject_all", actor=user) as moved:
        pick = Pick.objects.create(request=request, variation=None, rejected_all=True, note=note, picked_by=user)
        moved.payload = {"pick": pick.pk, "by": user.username, "note": note}
    return pick


@transaction.atomic
def note_add(*, user: User, variation: Variation, text: str, frame: int | None = None,
             shape: object = None) -> Note:
    """A note on a variation, at a frame of the request's range, with an optional shape drawn over the plate's
    display window (checked and clamped by `note_shape_checked`)."""
    require_member(user, variation.request.show.pk)
    if not text.strip():
        raise PortalError("a note needs text", code="note_required")
    window = variation.request.plate.display_window
    shape = note_shape_checked(shape, width=window["width"], height=window["height"])
    if frame is not None and not variation.request.first_frame <= frame <= variation.request.last_frame:
        raise PortalError(f"frame {frame} is outside the request's range", code="frame")
    note = Note.objects.create(variation=variation, frame=frame, text=text[:5000], shape=shape, author=user)
    events.event_append(request_id=variation.request_id, type="note.added", actor=user, payload={
        "note": note.pk, "variation": variation.pk, "index": variation.index, "frame": frame, "text": note.text,
        "by": user.username, "shape": shape})
    return note


def _decided_variation(request: GenerationRequest, variation: Variation | None) -> tuple[Pick | None, Variation]:
    """What a sign-off decides on: the current pick's variation, or (a task without a pick) the variation the
    compositor names, which must be a finished one of this request."""
    if not task_info(request.task).needs_pick:
        if variation is None or variation.request_id != request.pk:
            raise PortalError("name the variation of this request to decide on", code="variation")
        if variation.status != VariationStatus.DONE:
            raise Conflict(f"{variation.label} is {variation.status}; only a finished variation can be signed off",
                           code="not_done")
        return None, variation
    pick = current_pick(request.pk)
    if pick is None or pick.variation_id is None:
        raise Conflict("nothing is picked on this request; only a picked variation can be signed off",
                       code="not_picked")
    if variation is not None and variation.pk != pick.variation_id:
        raise Conflict(f"{variation.label} is not the pick ({pick.variation.label})", code="not_picked")
    return pick, pick.variation


def signoff_decide(*, user: User, request: GenerationRequest, decision: str, note: str = "",
                   variation: Variation | None = None) -> SignOff:
    """A compositor approves (the release is queued) or sends back (with a note; never released) the picked
    variation, or for a task without a pick the variation named. ``decision``: a ``SignOffDecision``."""
    approve = decision == SignOffDecision.APPROVED
    require_role(user, request.show.pk, CAN_SIGN_OFF, "sign off" if approve else "send back")
    if decision not in SignOffDecision.values:
        raise PortalError(f"decision is one of {', '.join(SignOffDecision.values)}", code="decision")
    if not approve and not note.strip():
        raise PortalError("say what is wrong when sending back", code="note_required")
    _decided_variation(request, variation)  # a clear refusal before the move
    move = lifecycle.decision_move(request, "sign_off" if approve else "send_back")
    with lifecycle.request_moving(request, move, actor=user) as moved:
        pick, decided = _decided_variation(request, variation)  # again, under the move: a newer pick counts
        signoff = SignOff.objects.create(pick=pick, variation=decided, decision=decision, note=note, signed_by=user)
        moved.payload = {"signoff": signoff.pk, "variation": decided.pk, "by": user.username, "note": note}
        if approve:
            moved.payload["label"] = decided.label
            release = release_allocate(signoff=signoff)
            worker.enqueue("review.tasks.release_element", release.pk)
    return signoff


def signoff_approve(*, user: User, request: GenerationRequest, note: str = "",
                    variation: Variation | None = None) -> SignOff:
    return signoff_decide(user=user, request=request, decision=SignOffDecision.APPROVED, note=note,
                          variation=variation)


def signoff_send_back(*, user: User, request: GenerationRequest, note: str,
                      variation: Variation | None = None) -> SignOff:
    return signoff_decide(user=user, request=request, decision=SignOffDecision.SENT_BACK, note=note,
                          variation=variation)


def release_allocate(*, signoff: SignOff) -> Release:
    """The next version of the shot's element for this task, unique even under concurrent releases."""
    if signoff.decision != SignOffDecision.APPROVED:
        raise Conflict("only an approved sign-off is released; this variation was sent back", code="sent_back")
    request = signoff.variation.request
    for _ in range(20):
        latest = Release.objects.filter(shot=request.shot, task=request.task).aggregate(v=Max("version"))["v"]
        try:
            with transaction.atomic():
                return Release.objects.create(signoff=signoff, shot=request.shot, task=request.task,
                                              version=(latest or 0) + 1)
        except IntegrityError:
            existing = Release.objects.filter(signoff=signoff).first()
            if existing:
                return existing
    raise Conflict("could not allocate a release version; try again", code="version_race")


def release_mark(*, release: Release, status: str) -> None:
    Release.objects.filter(pk=release.pk).exclude(status=ReleaseStatus.DONE).update(status=status)


def release_progress(*, release: Release, done: int, total: int) -> None:
    Release.objects.filter(pk=release.pk).update(frames_done=done)
    events.event_append(request_id=release.signoff.variation.request_id, type="release.progress",
                        payload={"release": release.pk, "done": done, "total": total})


@transaction.atomic
def release_finish(*, release: Release, path_pattern: str, manifest_path: str) -> None:
    updated = Release.objects.filter(pk=release.pk).exclude(status=ReleaseStatus.DONE).update(
        status=ReleaseStatus.DONE, path_pattern=path_pattern, manifest_path=manifest_path,
        released_at=timezone.now(), error="")
    if not updated:
        return
    # A retry of a release whose request was released already (its worker died after the move) moves nothing.
    lifecycle.request_try_move(release.signoff.variation.request_id, "release", payload={
        "release": release.pk, "version": release.version, "path": path_pattern, "manifest": manifest_path})


@transaction.atomic
def release_fail(*, release: Release, error: str) -> None:
    Release.objects.filter(pk=release.pk).exclude(status=ReleaseStatus.DONE).update(
        status=ReleaseStatus.FAILED, error=error[:2000])
    events.event_append(request_id=release.signoff.variation.request_id, type="release.failed",
                        payload={"release": release.pk, "error": error[:500]})


MAX_SHAPE_POINTS = 2000


def note_shape_checked(shape: object, *, width: int, height: int) -> dict | None:
    """A drawn shape in display-window pixels, or None: ``{"kind": "rect", "x", "y", "width", "height"}`` or
    ``{"kind": "stroke", "points": [[x, y], ...]}``, clamped to the frame and rounded to 0.1 px."""
    if shape in (None, "", {}):
        return None
    if not isinstance(shape, dict) or shape.get("kind") not in ("rect", "stroke"):
        raise PortalError("a shape is a rect or a stroke", code="shape")

    def number(value: object, limit: int) -> float:
        if isinstance(value, bool) or not isinstance(value, int | float) or value != value:
            raise PortalError("shape coordinates are numbers", code="shape")
        return round(min(max(float(value), 0.0), float(limit)), 1)

    if shape["kind"] == "rect":
        x, y = number(shape.get("x"), width), number(shape.get("y"), height)
        w, h = number(shape.get("width"), width - x), number(shape.get("height"), height - y)
        if w <= 0 or h <= 0:
            raise PortalError("a drawn rectangle needs a width and a height", code="shape")
        return {"kind": "rect", "x": x, "y": y, "width": w, "height": h}
    points = shape.get("points")
    if not isinstance(points, list) or not 2 <= len(points) <= MAX_SHAPE_POINTS:
        raise PortalError(f"a stroke is 2 to {MAX_SHAPE_POINTS} points", code="shape")
    if not all(isinstance(p, list | tuple) and len(p) == 2 for p in points):
        raise PortalError("a stroke's points are [x, y] pairs", code="shape")
    return {"kind": "stroke", "points": [[number(x, width), number(y, height)] for x, y in points]}
