"""Generation models, requests, their variations and the append-only event log of each request."""

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

    class Meta:
        ordering = ["index"]
        constraints = [models.UniqueConstraint(fields=["request", "index"], name="unique_variation_index")]

    @property
    def label(self) -> str:
        return f"v{self.index + 1:02d}"

    def __str__(self) -> str:
        return f"{self.request} {self.label}"


class RequestEvent(models.Model):
    """Append-only: what happened to a request, in order. Streaming and metrics read it."""

    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="events")
    seq = models.PositiveIntegerField()
    type = models.CharField(max_length=40)
    payload = models.JSONField(default=dict)
    actor = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL,
                              related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["request", "seq"]
        constraints = [models.UniqueConstraint(fields=["request", "seq"], name="unique_event_seq")]

    def as_message(self) -> dict:
        return {"type": self.type, "seq": self.seq, "time": self.created_at.isoformat(),
                "request": self.request_id, "payload": self.payload}
