"""Describing keys without revealing them, and scrubbing them from text.

`hint()` and `fingerprint()` are what byok shows and stores beside a key;
`redact()` and `RedactingFilter` are defence in depth for anything that might
carry one into a log line or an error message.
"""

from __future__ import annotations

import hashlib
import logging
import re

__all__ = ["RedactingFilter", "fingerprint", "hint", "install_log_redaction", "redact", "remember_secret"]

# Key shapes of the providers byok speaks to, plus bearer/x-api-key headers.
_KEY_PATTERNS = re.compile(
    r"(sk-ant-[A-Za-z0-9_\-]{8,}"  # Anthropic
    r"|sk-(?:proj-|svcacct-|admin-)?[A-Za-z0-9_\-]{16,}"  # OpenAI, DeepSeek
    r"|AIza[0-9A-Za-z_\-]{20,}"  # Google / Gemini
    r"|(?i:bearer)\s+[A-Za-z0-9_\-.=]{16,}"
    r"|(?i:(?:x-api-key|x-goog-api-key|api[_-]?key)[\"']?\s*[:=]\s*[\"']?)[A-Za-z0-9_\-]{12,})"
)
REDACTED = "[REDACTED]"

# Exact secrets seen by this process (decrypted for a request), so that keys of
# any shape are scrubbed too. Bounded: old entries are dropped first.
_known: dict[str, None] = {}
_KNOWN_MAX = 4096


def remember_secret(secret: str) -> None:
    """Scrub this exact value from every later `redact()`."""
    if len(secret) < 8:
        return
    _known[secret] = None
    if len(_known) > _KNOWN_MAX:
        del _known[next(iter(_known))]


def redact(text: str) -> str:
    """Replace anything that looks like (or is) a provider key."""
    if not text:
        return text
    for secret in _known:
        if secret in text:
            text = text.replace(secret, REDACTED)
    return _KEY_PATTERNS.sub(REDACTED, text)


def hint(secret: str) -> str:
    """A short, non-secret reminder such as `sk-…c3f9`: a known prefix and the last four characters."""
    secret = secret.strip()
    tail = secret[-4:] if len(secret) >= 12 else ""
    for prefix in ("sk-ant-", "sk-proj-", "sk-", "AIza"):
        if secret.startswith(prefix) and len(secret) >= 12:
            return f"{prefix}…{tail}"
    return f"…{tail}" if tail else "…"


def fingerprint(secret: str) -> str:
    """A stable identifier for a key (SHA-256, first 16 hex digits): safe to log and audit."""
    return hashlib.sha256(secret.strip().encode()).hexdigest()[:16]


class RedactingFilter(logging.Filter):
    """A logging filter that scrubs keys from the message and its arguments."""

    def filter(self, record: logging.LogRecord) -> bool:
        try:
            message = record.getMessage()
        except Exception:  # a broken format string is not ours to fix here
            return True
        cleaned = redact(message)
        if cleaned != message or record.args:
            record.msg, record.args = cleaned, None
        if record.exc_info and record.exc_info[1] is not None:
            # Render the traceback now, scrubbed, so no handler formats the raw one.
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def install_log_redaction() -> None:
    """Put a `RedactingFilter` on every handler of the root logger and on every named logger."""
    redacting = RedactingFilter()
    loggers = [logging.getLogger()] + [logging.getLogger(name) for name in list(logging.root.manager.loggerDict)]
    for name in ("httpx", "httpcore", "django", "django.request", "daphne", "channels", "byok"):
        loggers.append(logging.getLogger(name))
    for logger in loggers:
        if not any(isinstance(f, RedactingFilter) for f in logger.filters):
            logger.addFilter(redacting)
        for handler in logger.handlers:
            if not any(isinstance(f, RedactingFilter) for f in handler.filters):
                handler.addFilter(redacting)
