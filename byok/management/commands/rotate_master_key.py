"""Re-encrypt every stored provider key from the old master key to a new one.

    BYOK_OLD_MASTER_KEY=... BYOK_NEW_MASTER_KEY=... python manage.py rotate_master_key

The keys are read from the environment (not the command line, where they would
show in `ps` and shell history). Everything happens in one transaction with
the rows locked: each key is decrypted with the old master key, encrypted with
the new one and decrypted again to verify; any failure rolls all of it back,
so an interrupted run leaves every key readable with the old key. Keys that
the new master key opens already (written by processes that run with it during
a rollout, `BYOK_MASTER_KEY_PREVIOUS`) are left as they are. A key in use
(active or parked) that an HTTP header cannot carry (stored before keys were
checked) stops the run, named: revoke or replace it first. Afterwards, set
BYOK_MASTER_KEY to the new key and restart (README: "Rotating the master key").
"""

import os

from django.core.exceptions import ImproperlyConfigured
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction

from byok import audit
from byok.audit import Actor
from byok.crypto import SealedSecret, fernet_for
from byok.exceptions import InvalidConfigError
from byok.models import ApiKey
from byok.registry import validate_secret
from byok.secrets import fingerprint


class Command(BaseCommand):
    help = "Re-encrypt all stored API keys from BYOK_OLD_MASTER_KEY to BYOK_NEW_MASTER_KEY in one transaction."

    def add_arguments(self, parser):
        parser.add_argument("--old-env", default="BYOK_OLD_MASTER_KEY", help="Variable holding the old master key.")
        parser.add_argument("--new-env", default="BYOK_NEW_MASTER_KEY", help="Variable holding the new master key.")

    def _key(self, name: str):
        value = os.environ.get(name, "").strip()
        if not value:
            raise CommandError(f"{name} is not set.")
        try:
            return fernet_for(value)
        except ImproperlyConfigured as exc:
            raise CommandError(str(exc).replace("BYOK_MASTER_KEY", name)) from None

    def handle(self, *args, old_env, new_env, **options):
        old, new = self._key(old_env), self._key(new_env)
        if os.environ[old_env].strip() == os.environ[new_env].strip():
            raise CommandError("The old and new master keys are the same.")
        with transaction.atomic():
            keys = list(ApiKey.objects.select_for_update().select_related("provider").order_by("pk"))
            done = 0
            for key in keys:
                try:
                    plain = key.secret.reveal(old)
                except Exception:
                    if _opens(key, new):  # written during the rollout under the new key already: nothing to do
                        continue
                    raise CommandError(
                        f"Key {key.pk} ({key.provider.name}:{key.hint}) cannot be decrypted with {old_env}; nothing "
                        f"was changed."
                    ) from None
                if key.status in (ApiKey.Status.ACTIVE, ApiKey.Status.PARKED):
                    try:
                        validate_secret(plain)
                    except InvalidConfigError as exc:
                        raise CommandError(
                            f"Key {key.pk} ({key.provider.name}:{key.hint}) is not a usable API key: "
                            f"{exc.errors['api_key'][0]} "
                            "Revoke or replace it first; nothing was changed."
                        ) from None
                sealed = SealedSecret.seal(plain, new)
                if sealed.reveal(new) != plain or fingerprint(plain) != key.fingerprint:
                    raise CommandError(f"Key {key.pk} did not verify after re-encryption; nothing was changed.")
                ApiKey.objects.filter(pk=key.pk).update(secret=sealed)
                done += 1
            details = {"keys": done, **({"already_new": len(keys) - done} if done < len(keys) else {})}
            audit.record("master_key.rotate", actor=Actor("manage.py"), details=details)
        self.stdout.write(
            self.style.SUCCESS(
                f"Re-encrypted {done} keys ({len(keys) - done} were under the new key already). "
                "Now set BYOK_MASTER_KEY to the new key (and drop BYOK_MASTER_KEY_PREVIOUS) and restart byok."
            )
        )


def _opens(key: ApiKey, fernet) -> bool:
    try:
        key.secret.reveal(fernet)  # type: ignore[attr-defined]  # the field reads a SealedSecret
    except Exception:
        return False
    return True
