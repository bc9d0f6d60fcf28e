"""Small helpers that read settings from the environment and fail loudly.

Each raises `ImproperlyConfigured` naming the variable, so a bad value stops
start-up with one clear line instead of a traceback deep inside a request.
"""

from __future__ import annotations

import base64
import binascii
import os
import secrets
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured

__all__ = [
    "env_bool",
    "env_int",
    "env_list",
    "env_secret",
    "load_local_secrets",
    "refuse_public_debug",
    "validate_master_key",
]

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None:
        return default
    value = raw.strip().lower()
    if value in _TRUE:
        return True
    if value in _FALSE:
        return False
    raise ImproperlyConfigured(f"{name} must be true or false, not {raw!r}.")


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise ImproperlyConfigured(f"{name} must be an integer, not {raw!r}.") from None


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None:
        return default
    return [item.strip() for item in raw.split(",") if item.strip()]


def env_secret(name: str) -> str:
    """A required secret: from NAME, or from the file named by NAME_FILE (Docker secrets)."""
    value = os.environ.get(name)
    path = os.environ.get(f"{name}_FILE")
    if not value and path:
        try:
            value = Path(path).read_text().strip()
        except OSError as exc:
            raise ImproperlyConfigured(
                f"{name}_FILE points at {path!r}, which cannot be read: {exc.strerror}."
            ) from None
    if not value:
        raise ImproperlyConfigured(
            f"{name} is not set. Set it in the environment (or {name}_FILE); "
            "`make serve` generates development values for you."
        )
    return value


LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1", "[::1]", "testserver"})


def refuse_public_debug(debug: bool, allowed_hosts: list[str]) -> None:
    """`DEBUG` shows tracebacks with local variables: only on a server nobody else can reach."""
    if not debug:
        return
    public = [h for h in allowed_hosts if h.lower() not in LOOPBACK_HOSTS and not h.startswith("127.")]
    if public:
        raise ImproperlyConfigured(
            f"DEBUG=true is only allowed when ALLOWED_HOSTS lists loopback names only (localhost, 127.0.0.1, ::1); "
            f"ALLOWED_HOSTS has {', '.join(public)}."
        )


def validate_master_key(value: str, name: str = "BYOK_MASTER_KEY") -> bytes:
    """A master key is 32 random bytes, urlsafe-base64 encoded (44 characters)."""
    try:
        raw = base64.urlsafe_b64decode(value.strip().encode())
    except (binascii.Error, ValueError):
        raw = b""
    if len(raw) != 32:
        raise ImproperlyConfigured(
            f"{name} must be 32 random bytes in urlsafe base64 (44 characters); generate one with "
            "`python manage.py generate_master_key`."
        )
    return raw


def new_master_key() -> str:
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def load_local_secrets(path: Path) -> None:
    """Development only: create `path` with fresh secrets once, then export them if unset."""
    if not path.exists():
        path.write_text(f"DJANGO_SECRET_KEY={secrets.token_urlsafe(50)}\nBYOK_MASTER_KEY={new_master_key()}\n")
        path.chmod(0o600)
    for line in path.read_text().splitlines():
        key, sep, value = line.partition("=")
        if sep and key.strip():
            os.environ.setdefault(key.strip(), value.strip())
