"""Django's technical 500 page (DEBUG) without secrets.

With `DEBUG=true` Django shows every frame's local variables, the request's
headers and the settings to whoever triggered the error. Django's own filter
hides settings and headers whose names look secret; this one also hides any
local variable or header whose value is (or contains) a provider key, a key
byok decrypted in this process, or a byok token, and scrubs the rendered page
once more before it leaves. A `SealedSecret` already prints as a placeholder.
byok refuses `DEBUG` unless `ALLOWED_HOSTS` is loopback-only (settings.py),
so this page is only ever shown to the machine's own user.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit, urlunsplit

from django.views.debug import ExceptionReporter, SafeExceptionReporterFilter

from byok.crypto import SealedSecret
from byok.secrets import REDACTED, redact

__all__ = ["RedactingExceptionReporter", "RedactingExceptionReporterFilter"]

_SECRET_NAME = re.compile(r"secret|api_?key|token|password|passwd|authorization|credential|plain", re.I)


def _contains_secret(value: object) -> bool:
    if isinstance(value, SealedSecret):
        return False  # its repr is a placeholder
    try:
        text = value if isinstance(value, str) else repr(value)
    except Exception:  # a broken __repr__ is shown by Django as such
        return False
    return redact(text) != text


def _without_url_password(value: str) -> str:
    try:
        parts = urlsplit(value)
    except ValueError:
        return value
    if parts.password:
        host = parts.hostname or ""
        netloc = f"{parts.username or ''}:{REDACTED}@{host}" + (f":{parts.port}" if parts.port else "")
        return urlunsplit(parts._replace(netloc=netloc))
    return value


class RedactingExceptionReporterFilter(SafeExceptionReporterFilter):
    """Django's filter, plus: values that are or contain secrets, and passwords in URLs, are hidden."""

    def cleanse_setting(self, key, value):
        value = super().cleanse_setting(key, value)
        if isinstance(value, str):
            if _contains_secret(value):
                return self.cleansed_substitute
            return _without_url_password(value)
        return value

    def get_safe_request_meta(self, request):
        meta = super().get_safe_request_meta(request)
        return {k: (self.cleansed_substitute if _contains_secret(v) else v) for k, v in meta.items()}

    def get_traceback_frame_variables(self, request, tb_frame):
        cleansed = []
        for name, value in super().get_traceback_frame_variables(request, tb_frame):
            if value is not self.cleansed_substitute and (
                _contains_secret(value) or (isinstance(value, str | bytes) and _SECRET_NAME.search(name))
            ):
                value = self.cleansed_substitute
            cleansed.append((name, value))
        return cleansed


class RedactingExceptionReporter(ExceptionReporter):
    """The technical 500 page, scrubbed once more as a whole (exception messages included)."""

    def get_traceback_html(self):
        return redact(super().get_traceback_html())

    def get_traceback_text(self):
        return redact(super().get_traceback_text())
