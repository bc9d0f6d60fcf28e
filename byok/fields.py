"""`SecretField`: django-cryptography's encrypted field, keyed by the master key, loaded sealed."""

from __future__ import annotations

from typing import Any

from django.db import models
from django_cryptography.fields import EncryptedMixin

from byok.crypto import SealedSecret, current_fernet

__all__ = ["SecretField"]


class _MasterKeyed:
    """Encrypts with the current master key and hands back `SealedSecret`s instead of plaintext."""

    @property
    def _fernet(self):
        return current_fernet()

    @_fernet.setter
    def _fernet(self, value) -> None:  # EncryptedMixin.__init__ assigns one; the master key decides
        pass

    def from_db_value(self, value, *args, **kwargs) -> Any:
        return None if value is None else SealedSecret(bytes(value))

    def to_python(self, value: Any) -> Any:
        return value

    def get_db_prep_value(self, value: Any, connection, prepared: bool = False) -> Any:
        if isinstance(value, SealedSecret):
            return connection.Database.Binary(value.token)
        return super().get_db_prep_value(value, connection, prepared)  # type: ignore[misc]  # BinaryField's

    def value_to_string(self, obj) -> str:
        return ""  # serialisers (dumpdata) never see the secret


class SecretField(_MasterKeyed, EncryptedMixin, models.TextField):
    """A provider key, encrypted at rest. Assign a `str`; read back a `SealedSecret`."""

    base_class = models.TextField
    wasinstance = True
