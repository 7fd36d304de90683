"""The Django admin for the catalogue: shows, sequences, shots, plates and who is on which show.

Plates are read-only here: a plate is registered by ``manage.py ingest_plate``, which reads every frame's header
through OpenImageIO and checks the pattern lies inside the plate roots; an admin form would skip both.
"""

from django.contrib import admin

from portal.models import Membership, Plate, Sequence, Shot, Show


class MembershipInline(admin.TabularInline):
    model = Membership
    extra = 0
    autocomplete_fields = ["user"]


@admin.register(Show)
class ShowAdmin(admin.ModelAdmin):
    list_display = ["code", "name", "ocio_config", "working_space", "fps", "created_at"]
    search_fields = ["code", "name"]
    inlines = [MembershipInline]


@admin.register(Membership)
class MembershipAdmin(admin.ModelAdmin):
    list_display = ["user", "show", "role"]
    list_filter = ["show", "role"]
    search_fields = ["user__username", "show__code"]
    autocomplete_fields = ["user", "show"]


@admin.register(Sequence)
class SequenceAdmin(admin.ModelAdmin):
    list_display = ["code", "show"]
    list_filter = ["show"]
    search_fields = ["code", "show__code"]


@admin.register(Shot)
class ShotAdmin(admin.ModelAdmin):
    list_display = ["code", "sequence", "first_frame", "last_frame"]
    list_filter = ["sequence__show"]
    search_fields = ["code", "sequence__code"]


@admin.register(Plate)
class PlateAdmin(admin.ModelAdmin):
    list_display = ["__str__", "shot", "path_pattern", "first_frame", "last_frame", "colourspace", "pixel_aspect"]
    list_filter = ["shot__sequence__show"]
    search_fields = ["shot__code", "name", "path_pattern"]

    def has_add_permission(self, request) -> bool:
        return False  # manage.py ingest_plate: headers read, roots checked

    def has_change_permission(self, request, obj=None) -> bool:
        return False
