"""The shape of a gateway key: ``byok_`` + a 6-character lookup id + 43 characters of secret (256 bits).

    key, lookup, digest = new_key()          # show `key` once; store `lookup` and `digest`
    parsed = parse("byok_…")                 # (lookup, digest), or None for anything malformed

The lookup id is random and not secret (it finds the row and names the key as
``byok_<lookup>…``); the digest is SHA-256 of the whole key: a 256-bit random
secret needs no slow hash, and the stored digest is compared in constant time.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import secrets
import string

__all__ = ["KEY_PREFIX", "digest_of", "looks_like_key", "new_key", "parse", "same_digest"]

KEY_PREFIX = "byok_"
LOOKUP_LEN = 6
SECRET_BYTES = 32  # 256 bits, 43 characters of URL-safe base64
_LOOKUP_ALPHABET = string.ascii_lowercase + string.digits
_SHAPE = re.compile(r"byok_([a-z0-9]{6})([A-Za-z0-9_-]{43})")


def digest_of(key: str) -> str:
    return hashlib.sha256(key.encode("utf-8", "surrogatepass")).hexdigest()


def new_key() -> tuple[str, str, str]:
    """A new key, its lookup id and its digest."""
    lookup = "".join(secrets.choice(_LOOKUP_ALPHABET) for _ in range(LOOKUP_LEN))
    key = f"{KEY_PREFIX}{lookup}{secrets.token_urlsafe(SECRET_BYTES)}"
    return key, lookup, digest_of(key)


def looks_like_key(text: str) -> bool:
    """Whether a credential is meant as a gateway key (it starts with ``byok_``), well formed or not."""
    return text.startswith(KEY_PREFIX)


def parse(text: str) -> tuple[str, str] | None:
    """``(lookup, digest)`` of a well-formed key; None when it cannot be one."""
    match = _SHAPE.fullmatch(text)
    if match is None:
        return None
    return match.group(1), digest_of(text)


def same_digest(a: str, b: str) -> bool:
    return hmac.compare_digest(a.encode(), b.encode())
