"""Generation models, requests, their variations and the append-only event log of each request."""

import math
import os

from django.conf import settings
from django.db import models

from generation.engine.task_kinds import MODEL_KINDS, TASKS
from portal.models import Plate, Shot, Show

# Built from the engine's tables (engine/task_kinds.py), the one place a task or a model kind is added. The
# fields below carry no `choices`, so a new task or kind needs no migration; services and the API check them.
ModelKind = models.TextChoices("ModelKind", [(kind.upper(), (kind, label)) for kind, label in MODEL_KINDS.items()])
Task = models.TextChoices("Task", [(task.upper(), (task, info.label)) for task, info in TASKS.items()])


class ModelStatus(models.TextChoices):
    PENDING = "pending", "Pending approval"
    APPROVED = "approved", "Approved"
    RETIRED = "retired", "Retired"


class GenerationModel(models.Model):
    name = models.CharField(max_length=200, unique=True)
    kind = models.CharField(max_length=16)
    path = models.CharField(max_length=1000, help_text="A local diffusers-format directory")
    status = models.CharField(max_length=16, choices=ModelStatus.choices, default=ModelStatus.PENDING)
    approved_shows = models.ManyToManyField(Show, blank=True, related_name="approved_models")
    manifest_hash = models.CharField(max_length=64, blank=True)
    approved_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    created_at = models.DateTimeField(auto_now_add=True)

    @property
    def kind_label(self) -> str:
        return MODEL_KINDS.get(self.kind, self.kind)

    def __str__(self) -> str:
        return self.name


class RequestStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    REVIEW = "review", "In review"  # every variation settled
    PICKED = "picked", "Picked"
    SIGNED_OFF = "signed_off", "Signed off"
    RELEASED = "released", "Released"
    CANCELLED = "cancelled", "Cancelled"
    FAILED = "failed", "Failed"


class GenerationRequest(models.Model):
    shot = models.ForeignKey(Shot, on_delete=models.CASCADE, related_name="requests")
    plate = models.ForeignKey(Plate, on_delete=models.PROTECT, related_name="requests")
    task = models.CharField(max_length=32, default=next(iter(TASKS)))
    first_frame = models.IntegerField()
    last_frame = models.IntegerField()
    matte_pattern = models.CharField(max_length=1000, blank=True)
    rect = models.JSONField(null=True, blank=True, help_text="[x, y, w, h] in display-window pixels")
    prompt = models.CharField(max_length=500, blank=True)
    count = models.PositiveSmallIntegerField(default=4)
    model = models.ForeignKey(GenerationModel, null=True, blank=True, on_delete=models.PROTECT, related_name="requests",
                              help_text="Empty for a task that needs no model (TaskInfo.needs_model)")
    base_seed = models.BigIntegerField(default=0)
    steps = models.PositiveSmallIntegerField(default=25)
    strength = models.FloatField(null=True, blank=True,
                                 help_text="Image-to-image tasks: how far the region is re-noised; empty = the task's default")
    params = models.JSONField(default=dict, blank=True, help_text="The task's own inputs, passed to its runner")
    status = models.CharField(max_length=16, choices=RequestStatus.choices, default=RequestStatus.QUEUED)
    requested_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    settled_at = models.DateTimeField(null=True, blank=True)
    last_seq = models.PositiveIntegerField(default=0)
    derived_from = models.ForeignKey("Variation", null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="derived_requests",
                                     help_text="The variation this request iterates from, if any")
    priority = models.SmallIntegerField(default=0, help_text="Higher runs first; equal priorities share the GPUs "
                                                             "round-robin between the people asking")

    class Meta:
        ordering = ["-created_at"]
        constraints = [
            models.CheckConstraint(condition=models.Q(last_frame__gte=models.F("first_frame")),
                                   name="request_range_ordered"),
        ]

    @property
    def show(self) -> Show:
        return self.shot.sequence.show

    @property
    def task_label(self) -> str:
        return TASKS[self.task].label if self.task in TASKS else self.task

    @property
    def model_name(self) -> str:
        return self.model.name if self.model_id else ""

    def frame_list(self) -> list[int]:
        return list(range(self.first_frame, self.last_frame + 1))

    def __str__(self) -> str:
        return f"request {self.pk} on {self.shot}"


# The engine samples its generated-pixel mask in float32, so a fully covered matte reads 1 - ~1e-8, not 1.0; a
# one-pixel hole in one frame of a 200×120 region over 8 frames is 5e-6 below 1.0, still well past this.
COVERAGE_TOLERANCE = 1e-6


def coverage_flagged(coverage: float | None) -> bool:
    """Below 1.0 the element leaves holes in its matte; unknown (made before coverage was stored) is not flagged."""
    return coverage is not None and coverage < 1.0 - COVERAGE_TOLERANCE


def coverage_text(coverage: float) -> str:
    """As people read it: a percentage, floored when flagged so that a hole never reads as 100%."""
    if coverage_flagged(coverage):
        return f"{min(99.99, math.floor(coverage * 10000) / 100):.2f}%"
    return f"{coverage:.2%}"


class VariationStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    RUNNING = "running", "Running"
    DONE = "done", "Done"
    FAILED = "failed", "Failed"
    CANCELLED = "cancelled", "Cancelled"


class Variation(models.Model):
    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="variations")
    index = models.PositiveSmallIntegerField()
    seed = models.BigIntegerField()
    status = models.CharField(max_length=16, choices=VariationStatus.choices, default=VariationStatus.QUEUED)
    progress = models.FloatField(default=0.0)
    frames_done = models.PositiveIntegerField(default=0)
    gpu_seconds = models.FloatField(null=True, blank=True)
    flicker_ratio = models.FloatField(null=True, blank=True)
    coverage = models.FloatField(null=True, blank=True,
                                 help_text="Fraction of matte pixels, over all frames, that got generated content; "
                                           "below 1.0 the element leaves holes (empty for variations made before)")
    work_dir = models.CharField(max_length=1000, blank=True)
    exr_pattern = models.CharField(max_length=1000, blank=True)
    proxy_pattern = models.CharField(max_length=1000, blank=True)
    element_window = models.JSONField(null=True, blank=True)
    error = models.TextField(blank=True)
    claimed_by = models.CharField(max_length=200, blank=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    cancelled_by = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                                     related_name="+")
    # The lease (generation/leases.py): who runs the variation now and until when; a claim renews it by heartbeat.
    lease_owner = models.CharField(max_length=200, blank=True)
    lease_expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0, help_text="Claims taken: each attempt writes its own folder")
    output_attempts = models.PositiveIntegerField(default=0, help_text="Attempts whose output was moved into place "
                                                                       "(more than 1 would be a duplicate run)")

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="unique_variation_index")]

    @property
    def label(self) -> str:
        return f"v{self.index + 1:02d}"

    @property
    def coverage_flagged(self) -> bool:
        """Some matte pixel of some frame got no generated content (a hole): not pickable without an override."""
        return coverage_flagged(self.coverage)

    def staging_dir(self, attempt: int) -> str:
        """Where attempt ``attempt`` writes, beside the work folder; the lease holder renames it into place."""
        folder = os.path.dirname(self.work_dir)
        return os.path.join(folder, f".{os.path.basename(self.work_dir)}.attempt-{attempt}")

    @property
    def output_dir(self) -> str:
        """The folder holding the variation's frames now: its running attempt's staging folder, else its own."""
        if self.status == VariationStatus.RUNNING and self.attempts and self.work_dir:
            return self.staging_dir(self.attempts)
        return self.work_dir

    def __str__(self) -> str:
        return f"{self.request} {self.label}"


class EventRecord(models.Model):
    """An append-only event log's row: what happened, in order (``seq`` per owner), by whom. A request's log
    (:class:`RequestEvent`) and a review session's (``review.SessionEvent``) add their owner and its constraint."""

    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        abstract = True

    def message(self, owner: str, owner_id: int) -> dict:
        """The event as viewers receive it (the websocket frame and the catch-up rows alike)."""
        return {"type": self.type, "seq": self.seq, "time": self.created_at.isoformat(), owner: owner_id,
                "payload": self.payload}


class RequestEvent(EventRecord):
    """Append-only: what happened to a request, in order. Streaming and metrics read it."""

    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="events")

    class Meta:
        ordering = ["request", "seq"]
        constraints = [models.UniqueConstraint(fields=["request", "seq"], name="unique_event_seq")]

    def as_message(self) -> dict:
        return self.message("request", self.request_id)


class RotoSet(models.Model):
    """One roto of a shot drawn in the browser: its key frames, the frames the artist locked, its passes."""

    shot = models.ForeignKey(Shot, on_delete=models.CASCADE, related_name="roto_sets")
    name = models.SlugField(max_length=32)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)
    locked = models.JSONField(default=list, blank=True,
                              help_text="Frames a later pass keeps as they are (fixed frames), until unlocked")

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shot", "name"], name="unique_roto_set_per_shot")]

    def __str__(self) -> str:
        return f"{self.shot} roto {self.name}"


class RotoKeyFrame(models.Model):
    """A key frame as drawn: its shapes, who drew it and when, the matte EXR the server rasterised from them.

    Rows are never changed: a redrawn frame is a new row, the newest row of a frame is its key frame, and a row
    with ``removed`` takes the frame out of the key frames (an unlocked fixed frame)."""

    roto_set = models.ForeignKey(RotoSet, on_delete=models.CASCADE, related_name="keyframes")
    frame = models.IntegerField()
    shapes = models.JSONField(default=list, blank=True)
    drawn_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    drawn_at = models.DateTimeField(auto_now_add=True)
    path = models.CharField(max_length=1000, blank=True, help_text="The matte EXR (half, A, the plate's windows)")
    sha256 = models.CharField(max_length=64, blank=True, help_text="Of the matte EXR file as written")
    removed = models.BooleanField(default=False)

    class Meta:
        ordering = ["frame", "pk"]


class RotoPass(models.Model):
    """A roto request made from a roto set: the pass number, the key frames it used, the frames it kept."""

    roto_set = models.ForeignKey(RotoSet, on_delete=models.CASCADE, related_name="passes")
    request = models.OneToOneField(GenerationRequest, on_delete=models.CASCADE, related_name="roto_pass")
    number = models.PositiveIntegerField()
    keyframes = models.JSONField(default=dict, help_text="{frame: RotoKeyFrame id} this pass used")
    locked = models.JSONField(default=list, help_text="Frames kept from the pass before (not recomputed)")
    recomputed = models.JSONField(default=list, help_text="Frames this pass computed afresh")

    class Meta:
        ordering = ["number"]
        constraints = [models.UniqueConstraint(fields=["roto_set", "number"], name="unique_roto_pass_number")]
class WorkLease(models.Model):
    """A lease on work that has no status row of its own here (a release): ``kind`` and ``key`` name it."""

    kind = models.CharField(max_length=32)
    key = models.BigIntegerField()
    owner = models.CharField(max_length=200, blank=True)
    expires_at = models.DateTimeField(null=True, blank=True)
    attempts = models.PositiveIntegerField(default=0)
    output_attempts = models.PositiveIntegerField(default=0)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["kind", "key"], name="unique_work_lease")]
