"""The Django admin for generation models: listed and inspected here, approved only through the service.

The status is never a form field. The action calls ``services.model_approve`` as the logged-in user for each
show that user supervises, so the service's role checks (and whatever scoping it applies) hold in the admin too,
and each approval is recorded in the admin's history (LogEntry) beside the service's own trail.
"""

from django.contrib import admin, messages

from generation import services
from generation.models import GenerationModel
from portal.errors import PortalError
from portal.models import CAN_APPROVE_MODELS, Membership


@admin.register(GenerationModel)
class GenerationModelAdmin(admin.ModelAdmin):
    list_display = ["name", "kind", "status", "approved_for", "approved_by", "created_at"]
    list_filter = ["status", "kind"]
    search_fields = ["name"]
    readonly_fields = ["name", "kind", "path", "status", "approved_shows", "manifest_hash", "approved_by",
                       "created_at"]
    actions = ["approve_for_my_shows"]

    def has_add_permission(self, request) -> bool:
        return False  # manage.py register_model: loaded offline and checked first

    @admin.display(description="approved for")
    def approved_for(self, model: GenerationModel) -> str:
        return ", ".join(show.code for show in model.approved_shows.all())

    @admin.action(description="Approve for the shows I supervise (through the approval service)")
    def approve_for_my_shows(self, request, queryset) -> None:
        shows = [m.show for m in Membership.objects.filter(user=request.user, role__in=CAN_APPROVE_MODELS)
                 .select_related("show")]
        if not shows:
            self.message_user(request, "you supervise no show, so you can approve no model", messages.ERROR)
            return
        for model in queryset:
            for show in shows:
                try:
                    services.model_approve(user=request.user, model=model, show_id=show.pk)
                except PortalError as error:
                    self.message_user(request, f"{model.name} on {show.code}: {error.message}", messages.ERROR)
                    continue
                self.log_change(request, model, f"approved for show {show.code} (services.model_approve)")
                self.message_user(request, f"{model.name} approved for {show.code}", messages.SUCCESS)
