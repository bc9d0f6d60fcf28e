"""Log formats: `BYOK_LOG_FORMAT=text` (default) or `json`, chosen in settings' LOGGING.

    text   2026-12-01 03:04:05,678 INFO byok.request chat request_id=… dialect=openai … overhead_ms=0.8
    json   {"time": "2026-12-01T03:04:05.678Z", "level": "INFO", "logger": "byok.request",
            "message": "chat request_id=…", "request_id": "…", "dialect": "openai", …}

A record's `fields` (a dict given as `extra={"fields": ...}`, as the per-request
line of `byok.gateway.meter` does) become top-level JSON keys, so a log
pipeline can filter on them without parsing the message. Whatever the format,
the finished line is scrubbed of key-shaped text once more (`byok.secrets.redact`)
after the handler's `RedactingFilter`: the JSON keys and a traceback included.
"""

from __future__ import annotations

import logging
import time

import orjson

from byok.secrets import redact

__all__ = ["JsonFormatter", "TextFormatter"]

TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s %(message)s"
_RESERVED = frozenset({"time", "level", "logger", "message", "exception"})


class TextFormatter(logging.Formatter):
    """The plain `time level logger message` line, scrubbed."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ms), level, logger, message, the record's `fields`, exception."""

    def format(self, record: logging.LogRecord) -> str:
        stamp = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(record.created))
        line: dict[str, object] = {
            "time": f"{stamp}.{int(record.msecs):03d}Z",
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        fields = getattr(record, "fields", None)
        if isinstance(fields, dict):
            line.update((k, v) for k, v in fields.items() if k not in _RESERVED)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return redact(orjson.dumps(line, default=str).decode())
