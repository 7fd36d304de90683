"""Picks, notes, sign-off and release: the only place review state changes."""

from django.db import IntegrityError, transaction
from django.db.models import Max
from django.utils import timezone

from generation import events
from generation.models import GenerationRequest, RequestStatus, Variation, VariationStatus
from portal import worker
from portal.access import require_member, require_role
from portal.errors import Conflict, PortalError
from portal.models import CAN_PICK, CAN_SIGN_OFF
from review.models import Note, Pick, Release, ReleaseStatus, SignOff, SignOffDecision


def current_pick(request_id: int) -> Pick | None:
    return Pick.objects.filter(request_id=request_id).select_related("variation", "picked_by").first()


@transaction.atomic
def pick_make(*, user, variation: Variation, note: str = "") -> Pick:
    """Pick one variation of a request; an earlier pick stays on record and is superseded."""
    request = variation.request
    require_role(user, request.shot.sequence.show_id, CAN_PICK, "pick variations")
    if variation.status != VariationStatus.DONE:
        raise Conflict(f"{variation.label} is {variation.status}; only a finished variation can be picked",
                       code="not_done")
    request.refresh_from_db(fields=["status"])
    if request.status in (RequestStatus.SIGNED_OFF, RequestStatus.RELEASED, RequestStatus.CANCELLED):
        raise Conflict(f"the request is {request.get_status_display().lower()}; picks are closed", code="closed")
    pick = Pick.objects.create(request=request, variation=variation, note=note, picked_by=user)
    GenerationRequest.objects.filter(pk=request.pk).update(status=RequestStatus.PICKED)
    events.event_append(request_id=request.pk, type="pick.made", actor=user, payload={
        "pick": pick.pk, "variation": variation.pk, "index": variation.index, "label": variation.label,
        "by": user.username, "note": note})
    return pick


@transaction.atomic
def pick_reject_all(*, user, request: GenerationRequest, note: str) -> Pick:
    require_role(user, request.shot.sequence.show_id, CAN_PICK, "reject variations")
    if not note.strip():
        raise PortalError("say why every variation is rejected", code="note_required")
    pick = Pick.objects.create(request=request, variation=None, rejected_all=True, note=note, picked_by=user)
    GenerationRequest.objects.filter(pk=request.pk, status__in=[RequestStatus.REVIEW, RequestStatus.PICKED]).update(
        status=RequestStatus.REVIEW)
    events.event_append(request_id=request.pk, type="pick.rejected_all", actor=user,
                        payload={"pick": pick.pk, "by": user.username, "note": note})
    return pick


@transaction.atomic
def note_add(*, user, variation: Variation, text: str, frame: int | None = None, shape: object = None) -> Note:
    """A note on a variation, at a frame of the request's range, with an optional shape drawn over the plate's
    display window (checked and clamped by `note_shape_checked`)."""
    require_member(user, variation.request.shot.sequence.show_id)
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


def _picked_variation(request: GenerationRequest) -> Pick:
    pick = current_pick(request.pk)
    if pick is None or pick.variation_id is None:
        raise Conflict("nothing is picked on this request; only a picked variation can be signed off",
                       code="not_picked")
    return pick


@transaction.atomic
def signoff_approve(*, user, request: GenerationRequest, note: str = "") -> SignOff:
    """A compositor approves the picked variation; its release to the pipeline is queued."""
    require_role(user, request.shot.sequence.show_id, CAN_SIGN_OFF, "sign off")
    pick = _picked_variation(request)
    claimed = GenerationRequest.objects.filter(pk=request.pk, status=RequestStatus.PICKED).update(
        status=RequestStatus.SIGNED_OFF)
    if not claimed:
        raise Conflict("only a picked request can be signed off", code="not_picked")
    signoff = SignOff.objects.create(pick=pick, variation=pick.variation, decision=SignOffDecision.APPROVED,
                                     note=note, signed_by=user)
    events.event_append(request_id=request.pk, type="signoff.approved", actor=user, payload={
        "signoff": signoff.pk, "variation": pick.variation_id, "label": pick.variation.label,
        "by": user.username, "note": note})
    release = release_allocate(signoff=signoff)
    from review.tasks import release_element

    worker.enqueue(release_element, release.pk)
    return signoff


@transaction.atomic
def signoff_send_back(*, user, request: GenerationRequest, note: str) -> SignOff:
    """A compositor sends the pick back to review with a note; it cannot be released."""
    require_role(user, request.shot.sequence.show_id, CAN_SIGN_OFF, "send back")
    if not note.strip():
        raise PortalError("say what is wrong when sending back", code="note_required")
    pick = _picked_variation(request)
    claimed = GenerationRequest.objects.filter(pk=request.pk, status=RequestStatus.PICKED).update(
        status=RequestStatus.REVIEW)
    if not claimed:
        raise Conflict("only a picked request can be sent back", code="not_picked")
    signoff = SignOff.objects.create(pick=pick, variation=pick.variation, decision=SignOffDecision.SENT_BACK,
                                     note=note, signed_by=user)
    events.event_append(request_id=request.pk, type="signoff.sent_back", actor=user, payload={
        "signoff": signoff.pk, "variation": pick.variation_id, "by": user.username, "note": note})
    return signoff


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
    request_id = release.signoff.variation.request_id
    GenerationRequest.objects.filter(pk=request_id).update(status=RequestStatus.RELEASED)
    events.event_append(request_id=request_id, type="release.done", payload={
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
