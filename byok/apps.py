"""byok's app configurations: the byok app (signal wiring at start-up) and the admin with byok's site."""

from django.apps import AppConfig
from django.contrib.admin import apps as admin_apps


class ByokConfig(AppConfig):
    name = "byok"
    verbose_name = "byok"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.contrib.auth import get_user_model
        from django.db.models.signals import post_delete, post_save
        from rest_framework.authtoken.models import Token

        from byok.gateway.handler import bump_shared_version
        from byok.keys import tokens  # noqa: F401  # hashes every DRF token saved (a pre_save hook)
        from byok.keys.lookup import user_changed
        from byok.secrets import install_log_redaction
        from byok.signals import config_changed, key_revoked
        from byok.ws.broadcast import on_key_revoked, on_token_deleted, on_user_changed

        config_changed.connect(bump_shared_version, dispatch_uid="byok.bump_shared_version")
        # Open websockets hear, on every process, of a revoked key, a deleted token or a deactivated user.
        key_revoked.connect(on_key_revoked, dispatch_uid="byok.ws.key_revoked")
        post_delete.connect(on_token_deleted, sender=Token, dispatch_uid="byok.ws.token_deleted")
        post_save.connect(on_user_changed, sender=get_user_model(), dispatch_uid="byok.ws.user_saved")
        post_delete.connect(on_user_changed, sender=get_user_model(), dispatch_uid="byok.ws.user_deleted")
        # A user saved or deleted anywhere: gateway keys' cached owners are read again in every process.
        post_save.connect(user_changed, sender=get_user_model(), dispatch_uid="byok.keys.user_saved")
        post_delete.connect(user_changed, sender=get_user_model(), dispatch_uid="byok.keys.user_deleted")
        install_log_redaction()


class ByokAdminConfig(admin_apps.AdminConfig):
    """Django's admin with byok's site (byok.admin_site.ByokAdminSite) as ``admin.site``.

    Not the byok app's default configuration (``default = False``): INSTALLED_APPS names it explicitly.
    """

    default = False
    default_site = "byok.admin_site.ByokAdminSite"
