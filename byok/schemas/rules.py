"""The request rules every chat dialect shares (OpenAI chat completions, `/api/chat`, the websocket).

One place for the limits, so the dialects cannot disagree again:

- content parts (OpenAI's `[{"type": "text", "text": ...}]`) are joined with "\\n": parts are
  separate pieces of text (a pasted document, then a question), and gluing them with "" can
  join two words into one;
- at most `MAX_STOP` stop sequences (OpenAI's own limit) and `MAX_MESSAGES` messages;
- `temperature` 0-2, `top_p` 0-1, `max_tokens` 1-`MAX_TOKENS` (no model answers more; larger
  values would only overflow the budget and rate-limit arithmetic downstream);
- strings that end up stored (model, provider, user, metadata ...: usage rows, audit, logs) may
  not hold control characters (PostgreSQL refuses NUL in text, and the others are never
  meaningful there); message content may hold \\t, \\n and \\r but no other control character.

Pure functions returning a problem (a message) or None; each dialect turns a problem into its own
error shape (OpenAI: 400 naming `param`; `/api/chat`: 422 per field; websocket: `bad_request`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from typing import Any

__all__ = [
    "MAX_MESSAGES",
    "MAX_STOP",
    "MAX_TOKENS",
    "PART_SEPARATOR",
    "TEMPERATURE",
    "TOP_P",
    "content_problem",
    "int_problem",
    "join_parts",
    "number_problem",
    "stored_text_problem",
]

MAX_MESSAGES = 1000
MAX_STOP = 4
MAX_TOKENS = 10_000_000
TEMPERATURE = (0.0, 2.0)
TOP_P = (0.0, 1.0)
PART_SEPARATOR = "\n"

_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]")  # C0, DEL and C1
_CONTENT_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")  # the same but \t \n \r


def join_parts(texts: Iterable[str]) -> str:
    return PART_SEPARATOR.join(texts)


def _describe(char: str) -> str:
    return f"U+{ord(char):04X}"


def stored_text_problem(value: str) -> str | None:
    """A string that is stored: no control characters at all."""
    found = _CONTROL.search(value)
    return None if found is None else f"must not contain control characters (found {_describe(found.group())})"


def content_problem(value: str) -> str | None:
    """Message text: tabs and line breaks are fine, other control characters are not."""
    found = _CONTENT_CONTROL.search(value)
    return (
        None
        if found is None
        else f"must not contain control characters other than tab and line breaks (found {_describe(found.group())})"
    )


def is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def number_problem(value: Any, low: float, high: float) -> str | None:
    if not is_number(value):
        return "must be a number"
    if not low <= value <= high:
        return f"must be between {low:g} and {high:g} (got {value})"
    return None


def int_problem(value: Any, low: int = 1, high: int = MAX_TOKENS) -> str | None:
    if not is_int(value):
        return "must be an integer"
    if not low <= value <= high:
        return f"must be from {low} to {high} (got {value})"
    return None
