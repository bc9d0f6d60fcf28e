"""Reading providers' rate-limit and retry headers into plain numbers.

Every value comes back as seconds from now (or a count), or None when the
header is absent or unreadable: a bad header must never break error handling.

    retry_after_seconds({"Retry-After": "7"})          # 7.0
    parse_duration("6m0s")                             # 360.0 (OpenAI x-ratelimit-reset-*)
    seconds_until("2030-01-01T00:00:00Z")              # Anthropic anthropic-ratelimit-*-reset
    int_header({"x-ratelimit-remaining-requests": "59"}, "x-ratelimit-remaining-requests")  # 59
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

__all__ = ["int_header", "parse_duration", "retry_after_seconds", "seconds_until"]

# OpenAI writes resets as Go durations: "6m0s", "1s", "20ms", "1h2m3.5s", "0.5s".
_DURATION_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ms|us|µs|ns|h|m|s)")
_UNIT_SECONDS = {"h": 3600.0, "m": 60.0, "s": 1.0, "ms": 1e-3, "us": 1e-6, "µs": 1e-6, "ns": 1e-9}


def _get(headers: Mapping[str, str], name: str) -> str | None:
    """A header by lower-case `name`, whatever case the mapping uses."""
    value = headers.get(name)
    if value is None:
        for key, candidate in headers.items():
            if key.lower() == name:
                return candidate
    return value


def _finite_non_negative(value: float) -> float | None:
    if math.isnan(value) or math.isinf(value):
        return None
    return max(value, 0.0)


def retry_after_seconds(headers: Mapping[str, str], now: float | None = None) -> float | None:
    """Seconds to wait: `retry-after-ms` first (OpenAI), then `retry-after` (seconds or an HTTP date)."""
    millis = _get(headers, "retry-after-ms")
    if millis is not None:
        try:
            seconds = _finite_non_negative(float(millis.strip()) / 1000.0)
        except ValueError:
            seconds = None
        if seconds is not None:
            return seconds
    value = _get(headers, "retry-after")
    if value is None:
        return None
    value = value.strip()
    try:
        return _finite_non_negative(float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when is None:
        return None
    if when.tzinfo is None:  # RFC 9110 dates are GMT
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def parse_duration(text: str) -> float | None:
    """A Go-style duration ("6m0s", "20ms", "1h2m3.5s") in seconds; a bare number is seconds."""
    if not text:
        return None
    text = text.strip()
    try:
        return _finite_non_negative(float(text))
    except ValueError:
        pass
    total = 0.0
    pos = 0
    for match in _DURATION_PART.finditer(text):
        if match.start() != pos:  # junk between parts: not a duration
            return None
        total += float(match.group(1)) * _UNIT_SECONDS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(text):
        return None
    return total


def seconds_until(timestamp: str, now: float | None = None) -> float | None:
    """An RFC 3339 timestamp as seconds from now, never negative."""
    if not timestamp:
        return None
    text = timestamp.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    # fromisoformat takes at most 6 fractional digits; providers sometimes send 9.
    text = re.sub(r"(\.\d{6})\d+", r"\1", text)
    try:
        when = datetime.fromisoformat(text)
    except ValueError:
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(when.timestamp() - (time.time() if now is None else now), 0.0)


def int_header(headers: Mapping[str, str], name: str) -> int | None:
    """An integer header (e.g. `x-ratelimit-remaining-tokens`), or None if absent or not an integer."""
    value = _get(headers, name.lower())
    if value is None:
        return None
    try:
        return int(value.strip())
    except ValueError:
        try:
            number = float(value)
        except ValueError:
            return None
        return int(number) if number.is_integer() else None
