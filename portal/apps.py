from django.apps import AppConfig


class PortalConfig(AppConfig):
    name = "portal"
    verbose_name = "Parallel Track catalogue"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_save, pre_save

        from portal.tokens import note_password_change, revoke_on_password_change

        user_model = get_user_model()
        pre_save.connect(note_password_change, sender=user_model, dispatch_uid="pt-token-rotation-note")
        post_save.connect(revoke_on_password_change, sender=user_model, dispatch_uid="pt-token-rotation")
