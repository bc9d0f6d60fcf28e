"""Encryption of stored provider keys under `BYOK_MASTER_KEY`.

django-cryptography's field encrypts with `CRYPTOGRAPHY_KEY` but signs with
`SECRET_KEY`, which would tie stored keys to the Django secret. byok derives
both the AES key and the HMAC key from the master key alone (HKDF-SHA256), so
`DJANGO_SECRET_KEY` can change freely and the master key can be rotated with
`manage.py rotate_master_key`.

During a rollout of a new master key over several processes,
`BYOK_MASTER_KEY_PREVIOUS` names the old one: it is tried after the current key
when decrypting (new writes always use the current key). A key that neither
opens raises `MasterKeyMismatchError` (503 `master_key_mismatch`), and
`undecryptable()` counts the keys this process cannot read (over the stored
keys: `byok.models.undecryptable_key_count()`, for readiness checks).
"""

from __future__ import annotations

import pickle
from collections.abc import Iterable
from functools import lru_cache

from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from django.conf import settings
from django.core.signing import BadSignature
from django_cryptography.core.signing import FernetSigner
from django_cryptography.utils.crypto import FernetBytes, InvalidToken

from byok.exceptions import MasterKeyMismatchError
from byok_project.envconfig import validate_master_key

__all__ = [
    "SealedSecret",
    "current_fernet",
    "decrypting_fernets",
    "fernet_for",
    "undecryptable",
]


def _derive(master: bytes, purpose: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=b"byok-master-key-v1", info=purpose).derive(master)


@lru_cache(maxsize=4)
def fernet_for(master_key: str) -> FernetBytes:
    """The cipher for one master key (cached: derivation is cheap but not free)."""
    raw = validate_master_key(master_key)
    return FernetBytes(key=_derive(raw, b"encrypt"), signer=FernetSigner(key=_derive(raw, b"sign")))


def current_fernet() -> FernetBytes:
    """The cipher of `BYOK_MASTER_KEY`: every write uses it."""
    return fernet_for(settings.BYOK_MASTER_KEY)


def decrypting_fernets() -> list[FernetBytes]:
    """The ciphers tried to read a key: the current master key, then `BYOK_MASTER_KEY_PREVIOUS` if set."""
    previous = getattr(settings, "BYOK_MASTER_KEY_PREVIOUS", "")
    return [current_fernet(), fernet_for(previous)] if previous else [current_fernet()]


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
        """The secret, decrypted with ``fernet``, else with the current then the previous master key.

        Raises `MasterKeyMismatchError` when none of the master keys opens it.
        """
        # The token is authenticated (HMAC) before unpickling, so only byok's own data is loaded.
        if fernet is not None:
            return pickle.loads(fernet.decrypt(self.token))
        for candidate in decrypting_fernets():
            try:
                return pickle.loads(candidate.decrypt(self.token))
            except (BadSignature, InvalidToken):
                continue
        raise MasterKeyMismatchError()

    def __repr__(self) -> str:
        return "SealedSecret(<hidden>)"

    __str__ = __repr__

    def __eq__(self, other: object) -> bool:
        return isinstance(other, SealedSecret) and other.token == self.token

    def __hash__(self) -> int:
        return hash(self.token)


def undecryptable(sealed: Iterable[SealedSecret]) -> int:
    """How many of ``sealed`` none of this process's master keys opens (a wrong key, or a damaged token)."""
    count = 0
    for secret in sealed:
        try:
            secret.reveal()
        except Exception:  # MasterKeyMismatchError, or a token that is not byok's at all
            count += 1
    return count
