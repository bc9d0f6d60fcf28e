"""Encryption of stored provider keys under `BYOK_MASTER_KEY`.

django-cryptography's field encrypts with `CRYPTOGRAPHY_KEY` but signs with
`SECRET_KEY`, which would tie stored keys to the Django secret. byok derives
both the AES key and the HMAC key from the master key alone (HKDF-SHA256), so
`DJANGO_SECRET_KEY` can change freely and the master key can be rotated with
`manage.py rotate_master_key`.
"""

from __future__ import annotations

import pickle
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django_cryptography.core.signing import FernetSigner
from django_cryptography.utils.crypto import FernetBytes

from byok_project.envconfig import validate_master_key

__all__ = ["SealedSecret", "current_fernet", "fernet_for"]


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"byok-master-key-v1", info=purpose).derive(master)


@lru_cache(maxsize=4)
def fernet_for(master_key: str) -> FernetBytes:
    """The cipher for one master key (cached: derivation is cheap but not free)."""
    raw = validate_master_key(master_key)
    return FernetBytes(key=_derive(raw, b"encrypt"), signer=FernetSigner(key=_derive(raw, b"sign")))


def current_fernet() -> FernetBytes:
    return fernet_for(settings.BYOK_MASTER_KEY)


class SealedSecret:
    """An encrypted secret as loaded from the database; decrypted only by `reveal()`.

    It prints as a placeholder, so a template, a log line or a repr can never
    show the key, and saving a row that holds one writes the same ciphertext
    back without re-encrypting.
    """

    __slots__ = ("token",)

    def __init__(self, token: bytes) -> None:
        self.token = bytes(token)

    @classmethod
    def seal(cls, secret: str, fernet: FernetBytes | None = None) -> SealedSecret:
        return cls((fernet or current_fernet()).encrypt(pickle.dumps(secret)))

    def reveal(self, fernet: FernetBytes | None = None) -> str:
        # The token is authenticated (HMAC) before unpickling, so only byok's own data is loaded.
        return pickle.loads((fernet or current_fernet()).decrypt(self.token))

    def __repr__(self) -> str:
        return "SealedSecret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedSecret) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)
