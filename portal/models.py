"""The show catalogue (show → sequence → shot → plate) and who may do what on a show."""

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models

from generation.engine import colour


class Role(models.TextChoices):
    DIRECTOR = "director", "Director"
    SUPERVISOR = "supervisor", "Supervisor"
    COMPOSITOR = "compositor", "Compositor"
    PRODUCER = "producer", "Producer"


# Who may do what, per show. Everything else (viewing) is open to every member of the show.
CAN_REQUEST = {Role.COMPOSITOR, Role.SUPERVISOR}
CAN_PICK = {Role.DIRECTOR, Role.SUPERVISOR}
CAN_SIGN_OFF = {Role.COMPOSITOR}
CAN_APPROVE_MODELS = {Role.SUPERVISOR}
CAN_RAISE_PRIORITY = {Role.SUPERVISOR}  # a request above normal on the GPU queue goes ahead of everyone's


def default_ocio_config() -> str:
    """A new show's OCIO config: $OCIO or the studio default, pinned to the versioned name it means today."""
    return colour.pinned_config_name(settings.PT_OCIO_CONFIG)


class Show(models.Model):
    code = models.SlugField(max_length=32, unique=True)
    name = models.CharField(max_length=200)
    # Pinned per show: proxies, generation and releases all read this one config, and its name goes into
    # every element's provenance, so neither $OCIO nor a library update changes a show's colour.
    ocio_config = models.CharField(max_length=500, default=default_ocio_config,
                                   help_text="A versioned config: ocio://studio-config-v2.1.0_aces-v1.3_ocio-v2.3 "
                                             "or a config file (not ocio://…-latest)")
    working_space = models.CharField(max_length=100, default="ACEScg")
    display = models.CharField(max_length=100, blank=True)
    view = models.CharField(max_length=100, blank=True)
    fps = models.DecimalField(max_digits=6, decimal_places=3, default=24)
    publish_root = models.CharField(max_length=500, blank=True, help_text="Blank: the portal's PT_PUBLISH_ROOT")
    publish_template = models.CharField(
        max_length=500,
        default="{publish_root}/{show}/{sequence}/{shot}/elements/{task}/v{version:03d}/"
        "{shot}_{task}_v{version:03d}.####.exr",
    )
    flicker_threshold = models.FloatField(default=1.5)
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        ordering = ["code"]

    def __str__(self) -> str:
        return self.code

    def clean(self) -> None:
        """The config loads and is versioned; the working space, display and view are the config's."""
        if not colour.is_pinned(self.ocio_config):
            pinned = colour.pinned_config_name(self.ocio_config)
            raise ValidationError({"ocio_config": f"{self.ocio_config!r} changes with the OCIO library; name a "
                                                  f"versioned config, e.g. {pinned}"})
        try:
            colour.checked_colourspace(self.working_space, self.ocio_config)
            views = colour.displays_and_views(self.ocio_config)
        except colour.ColourError as error:
            raise ValidationError(str(error)) from None
        display = self.display or colour.default_display_view(self.ocio_config)[0]
        if display not in views:
            raise ValidationError({"display": f"unknown display {display!r}; valid: {', '.join(views)}"})
        if self.view and self.view not in views[display]:
            raise ValidationError({"view": f"unknown view {self.view!r} for {display!r}; "
                                           f"valid: {', '.join(views[display])}"})


class Membership(models.Model):
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="memberships")
    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="memberships")
    role = models.CharField(max_length=16, choices=Role.choices)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["user", "show"], name="one_role_per_show")]

    def __str__(self) -> str:
        return f"{self.user} {self.role} on {self.show}"


class Sequence(models.Model):
    show = models.ForeignKey(Show, on_delete=models.CASCADE, related_name="sequences")
    code = models.SlugField(max_length=32)

    class Meta:
        ordering = ["code"]
        constraints = [models.UniqueConstraint(fields=["show", "code"], name="unique_sequence_per_show")]

    def __str__(self) -> str:
        return f"{self.show.code}/{self.code}"


class Shot(models.Model):
    sequence = models.ForeignKey(Sequence, on_delete=models.CASCADE, related_name="shots")
    code = models.SlugField(max_length=64)
    first_frame = models.IntegerField(default=1001)
    last_frame = models.IntegerField(default=1001)
    description = models.TextField(blank=True)

    class Meta:
        ordering = ["code"]
        constraints = [
            models.UniqueConstraint(fields=["sequence", "code"], name="unique_shot_per_sequence"),
            models.CheckConstraint(condition=models.Q(last_frame__gte=models.F("first_frame")),
                                   name="shot_range_ordered"),
        ]

    @property
    def show(self) -> Show:
        return self.sequence.show

    def __str__(self) -> str:
        return self.code


class Plate(models.Model):
    """An EXR sequence registered after every frame's header was read through OpenImageIO."""

    shot = models.ForeignKey(Shot, on_delete=models.CASCADE, related_name="plates")
    name = models.SlugField(max_length=64, default="main")
    path_pattern = models.CharField(max_length=1000, help_text="Nuke style, e.g. /plates/sh010.####.exr")
    first_frame = models.IntegerField()
    last_frame = models.IntegerField()
    display_window = models.JSONField()
    data_window = models.JSONField()
    channels = models.JSONField()
    colourspace = models.CharField(max_length=100, default="ACEScg", help_text="As the show's OCIO config names it")
    pixel_aspect = models.FloatField(default=1.0, help_text="PixelAspectRatio: 2.0 for a 2:1 anamorphic squeeze")
    missing_frames = models.JSONField(default=list)
    matte_pattern = models.CharField(max_length=1000, blank=True, help_text="A default matte for the plate")
    grain_profile = models.JSONField(null=True, blank=True,
                                     help_text="The plate's grain (engine grain.GrainProfile.to_dict); null: not measured")
    created_at = models.DateTimeField(auto_now_add=True)

    class Meta:
        constraints = [models.UniqueConstraint(fields=["shot", "name"], name="unique_plate_name_per_shot")]

    @property
    def width(self) -> int:
        return self.display_window["width"]

    @property
    def height(self) -> int:
        return self.display_window["height"]

    @property
    def display_aspect(self) -> float:
        """Width over height as the picture is seen: an anamorphic plate desqueezed by its pixel aspect."""
        return self.width * self.pixel_aspect / self.height

    def __str__(self) -> str:
        return f"{self.shot.code}:{self.name}"


class ApiToken(models.Model):
    """A named API token of one user for pipeline clients (CLI, Nuke). Only the key's sha256 is stored: the key
    itself is shown once, when the token is made. A token expires, and its owner revokes it on the tokens page;
    changing the password revokes them all."""

    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_tokens")
    name = models.CharField(max_length=100)
    key_hash = models.CharField(max_length=64, unique=True, help_text="sha256 (hex) of the key")
    prefix = models.CharField(max_length=12, help_text="the key's first characters, to tell tokens apart")
    created_at = models.DateTimeField(auto_now_add=True)
    expires_at = models.DateTimeField()
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.user} {self.name} ({self.prefix}…)"
