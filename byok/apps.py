from django.apps import AppConfig


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "byok"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from byok.gateway.handler import bump_shared_version
        from byok.secrets import install_log_redaction
        from byok.signals import config_changed, key_revoked
        from byok.ws.broadcast import on_key_revoked

        config_changed.connect(bump_shared_version, dispatch_uid="byok.bump_shared_version")
        key_revoked.connect(on_key_revoked, dispatch_uid="byok.ws.key_revoked")
        install_log_redaction()
