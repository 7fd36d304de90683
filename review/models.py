"""Picks, notes, sign-offs and releases of generated variations."""

from django.conf import settings
from django.db import models

from generation.models import GenerationRequest, Variation
from portal.models import Shot


class Pick(models.Model):
    """A director's or supervisor's choice. A change of pick adds a row; the newest is the pick."""

    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="picks")
    variation = models.ForeignKey(Variation, on_delete=models.CASCADE, null=True, blank=True, related_name="picks")
    rejected_all = models.BooleanField(default=False)
    note = models.TextField(blank=True)
    picked_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at", "-pk"]


class Note(models.Model):
    variation = models.ForeignKey(Variation, on_delete=models.CASCADE, related_name="notes")
    frame = models.IntegerField(null=True, blank=True)
    text = models.TextField()
    shape = models.JSONField(null=True, blank=True)
    author = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at"]


class SignOffDecision(models.TextChoices):
    APPROVED = "approved", "Approved for release"
    SENT_BACK = "sent_back", "Sent back"


class SignOff(models.Model):
    # Empty for a task signed off without a pick (TaskInfo.needs_pick False: roto).
    pick = models.ForeignKey(Pick, on_delete=models.PROTECT, null=True, blank=True, related_name="signoffs")
    variation = models.ForeignKey(Variation, on_delete=models.PROTECT, related_name="signoffs")
    decision = models.CharField(max_length=16, choices=SignOffDecision.choices)
    note = models.TextField(blank=True)
    signed_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]


class ReleaseStatus(models.TextChoices):
    QUEUED = "queued", "Queued"
    WRITING = "writing", "Writing"
    DONE = "done", "Released"
    FAILED = "failed", "Failed"


class Release(models.Model):
    signoff = models.OneToOneField(SignOff, on_delete=models.PROTECT, related_name="release")
    shot = models.ForeignKey(Shot, on_delete=models.PROTECT, related_name="releases")
    task = models.CharField(max_length=32)
    version = models.PositiveIntegerField()
    status = models.CharField(max_length=16, choices=ReleaseStatus.choices, default=ReleaseStatus.QUEUED)
    path_pattern = models.CharField(max_length=1000, blank=True)
    manifest_path = models.CharField(max_length=1000, blank=True)
    frames_done = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    released_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]
        constraints = [models.UniqueConstraint(fields=["shot", "task", "version"], name="unique_release_version")]
