from django.apps import AppConfig


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "byok"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from byok import checks, signals  # noqa: F401 - registers checks and signal handlers
        from byok.secrets import install_log_redaction

        install_log_redaction()
