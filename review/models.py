"""Picks, notes, sign-offs and releases of generated variations."""

from django.conf import settings
from django.db import models

from generation.models import EventRecord, GenerationRequest, Variation
from portal.models import Shot, Show


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


# ---- dailies: review sessions ------------------------------------------------------------------------------------

class SessionItemKind(models.TextChoices):
    REQUEST = "request", "Request"  # its variations side by side (a roto pass is a request of the roto task)
    VARIATION = "variation", "Variation"
    RELEASE = "release", "Released element"


class ReviewSession(models.Model):
    """A dailies session: an ordered playlist of items across the shots of one show, driven by one participant
    whose view (``state``) every follower takes. ``state`` and ``last_seq`` are the session's current state and
    the seq of its newest event, so a page loads on the current state and streams from there."""

    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="review_sessions")
    name = models.CharField(max_length=200)
    created_by = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    driver = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.PROTECT, related_name="+")
    state = models.JSONField(default=dict, blank=True)
    made_from = models.JSONField(default=dict, blank=True, help_text="The filter the playlist was made from, if any")
    last_seq = models.PositiveIntegerField(default=0)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"session {self.pk} {self.name}"


class SessionItem(models.Model):
    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="items")
    position = models.PositiveIntegerField()
    kind = models.CharField(max_length=16, choices=SessionItemKind.choices)
    request = models.ForeignKey(GenerationRequest, on_delete=models.CASCADE, related_name="+")
    variation = models.ForeignKey(Variation, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    release = models.ForeignKey(Release, on_delete=models.CASCADE, null=True, blank=True, related_name="+")

    class Meta:
        ordering = ["position", "pk"]


class SessionEvent(EventRecord):
    """Append-only, like a request's event log: what the session's driver and participants did, by seq."""

    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="events")

    class Meta:
        ordering = ["session", "seq"]
        constraints = [models.UniqueConstraint(fields=["session", "seq"], name="unique_session_event_seq")]

    def as_message(self) -> dict:
        return self.message("session", self.session_id)


class SessionAttendee(models.Model):
    """Who joined, when, and how many of their sockets are open now (presence)."""

    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="attendees")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="+")
    first_joined = models.DateTimeField(auto_now_add=True)
    last_seen = models.DateTimeField(auto_now=True)
    sockets = models.IntegerField(default=0)

    class Meta:
        ordering = ["first_joined", "pk"]
        constraints = [models.UniqueConstraint(fields=["session", "user"], name="unique_session_attendee")]


class SessionMark(models.Model):
    """A note or a pick taken in a session: the note or pick itself is the usual one, on its variation."""

    session = models.ForeignKey(ReviewSession, on_delete=models.CASCADE, related_name="marks")
    item = models.ForeignKey(SessionItem, on_delete=models.SET_NULL, null=True, blank=True, related_name="marks")
    note = models.ForeignKey(Note, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    pick = models.ForeignKey(Pick, on_delete=models.CASCADE, null=True, blank=True, related_name="+")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["created_at", "pk"]
