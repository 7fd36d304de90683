"""Reads of requests shared by pages, the API and consumers.

``request_for_member`` and ``variation_for_member`` are how every front door loads a request or a variation by
id: a missing one ("no such request") or one on a show the user is not on ("not found") is ``NotFound`` (404).
"""

from dataclasses import dataclass

from django.db.models import QuerySet

from generation.engine.task_kinds import TASKS
from generation.models import GenerationModel, GenerationRequest, ModelKind, ModelStatus, RequestEvent, Variation
from portal.errors import NotFound
from portal.selectors import member_role


def request_for_member(user, request_id: int) -> GenerationRequest:
    found = (GenerationRequest.objects.select_related("shot__sequence__show", "plate", "model", "requested_by")
             .filter(pk=request_id).first())
    if found is None:
        raise NotFound("no such request")
    member_role(user, found.shot.sequence.show_id)
    return found


def variation_for_member(user, variation_id: int) -> Variation:
    found = (Variation.objects.select_related("request__shot__sequence__show", "request__plate", "request__model")
             .filter(pk=variation_id).first())
    if found is None:
        raise NotFound("no such variation")
    member_role(user, found.request.shot.sequence.show_id)
    return found


# Progress ticks are for live viewers; the audit trail keeps what people and workers decided (a request's start
# is its first variation's, which the trail keeps).
AUDIT_SKIP = ("variation.progress", "variation.frame", "release.progress", "request.started")


def audit_events(request_id: int) -> QuerySet[RequestEvent]:
    return (RequestEvent.objects.filter(request_id=request_id).exclude(type__in=AUDIT_SKIP)
            .select_related("actor").order_by("seq"))


def show_upscaler(show_id: int) -> GenerationModel | None:
    """The show's upscaler for the finishing stage: the newest upscaler approved for the show, or None."""
    return (GenerationModel.objects.filter(kind=ModelKind.UPSCALER, status=ModelStatus.APPROVED,
                                           approved_shows=show_id).order_by("-pk").first())


@dataclass(frozen=True)
class ReleasedMatte:
    """A released matte element of a shot (a task whose element is a matte: roto), as its release recorded it."""

    release: int  # the release's id: what a request names as its matte
    version: int
    path: str  # the released frame pattern
    request: int
    task_label: str
    first_frame: int
    last_frame: int

    @property
    def label(self) -> str:
        return f"{self.task_label} v{self.version:03d}, frames {self.first_frame}-{self.last_frame}"


def released_mattes(shot_id: int) -> list[ReleasedMatte]:
    """The shot's released mattes, newest first, from the requests' ``release.done`` events (generation does not
    know who picks or releases; the event log says what was released, with its version and path)."""
    matte_tasks = [task for task, info in TASKS.items() if info.element == "matte"]
    done = (RequestEvent.objects.filter(type="release.done", request__shot_id=shot_id, request__task__in=matte_tasks)
            .select_related("request").order_by("-pk"))
    return [ReleasedMatte(release=event.payload["release"], version=event.payload["version"],
                          path=event.payload["path"], request=event.request_id, task_label=event.request.task_label,
                          first_frame=event.request.first_frame, last_frame=event.request.last_frame)
            for event in done if {"release", "version", "path"} <= event.payload.keys()]
def element_sources(shot) -> list[tuple[int, str]]:
    """What a task on an element (upscale) can start from, for the shot page's chooser: every finished variation
    of ``shot`` that wrote an EXR sequence, newest request first, as ``(variation id, label)``; the label names
    the task (so a roto matte, a sky replacement, an earlier upscale) and says which are released elements. The caller has loaded ``shot`` for the member."""
    from generation.engine import task_kinds

    rows = (Variation.objects.filter(request__shot=shot, status="done").exclude(exr_pattern="")
            .select_related("request").order_by("-request__created_at", "-request_id", "index"))
    out = []
    for v in rows:
        request = v.request
        kind = task_kinds.task_info(request.task).label
        released = " · released" if request.status == "released" else ""
        out.append((v.pk, f"request {request.pk} · {kind} · {v.label}{released}"))
    return out
