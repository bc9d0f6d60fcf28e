"""Per-request behaviour of the fake provider, and where it comes from.

Every knob has one canonical name. It can be set, lowest precedence first, by:

1. the server's start-up config (`start_server(config=...)`, `--config JSON`);
2. `POST /_control/config` (defaults for later requests; `{}` resets);
3. a per-key override from that same config (`{"keys": {"<fp or suffix>": {...}}}`);
4. a `/cfg/<segment>/` path prefix (`k=v;k=v` or url-encoded JSON);
5. request headers `x-fake-<name with - for _>`, e.g. `x-fake-chunk-size`.

Why so many: byok builds its own upstream requests, so a gateway test can only
steer the fake through the provider base URL (path prefix) or the key it uses.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping
from dataclasses import dataclass, fields
from typing import Any
from urllib.parse import unquote

__all__ = ["FAULTS", "HEADER_NAMES", "Settings", "SettingError", "parse_cfg_segment", "resolve", "validate"]

# Fault names: HTTP-status faults answer before any body; the others shape the body.
STATUS_FAULTS = (
    "400",
    "401",
    "402",
    "403",
    "404",
    "429",
    "500",
    "502",
    "503",
    "504",
    "529",
    "insufficient_quota",
    "gemini_key_invalid",
)
BODY_FAULTS = ("stream_error", "drop", "stall", "malformed", "slow")
FAULTS = frozenset(STATUS_FAULTS + BODY_FAULTS)


class SettingError(ValueError):
    """A knob with an unknown name or an unusable value; answered with a 400."""


@dataclass(slots=True, frozen=True)
class Settings:
    chunks: int = 8  # content chunks in the answer (output tokens)
    chunk_size: int = 0  # characters per chunk; 0 = one word per chunk
    first_delay_ms: float = 0.0  # before the first content chunk (time to first token)
    delay_ms: float = 0.0  # between content chunks
    fault: str = ""  # one of FAULTS, or "" for none
    fault_rate: float = 1.0  # fraction of requests that get the fault
    fault_after: int = -1  # K: content chunks sent before a mid-stream fault; -1 = chunks // 2
    fault_first: int = 0  # N > 0: only the first N requests per key get the fault
    retry_after: float = 1.0  # seconds, for 429 (Retry-After, reset headers, Gemini RetryInfo)
    seed: str = ""  # makes fault_rate draws reproducible (one random stream per seed)
    slow_ms: float = 3000.0  # delay before the response headers for fault=slow
    stall_max_s: float = 300.0  # a stall ends (connection closed) after this even if the client stays
    tool_call: bool = False  # answer with a call of the first tool even without "weather"
    echo: bool = False  # answer with the last user message's text instead of filler
    reasoning_chunks: int = 3  # reasoning deltas when the request asks for reasoning
    keepalive_every: int = 4  # DeepSeek: a ': keep-alive' comment after every N chunks; 0 = never
    replay: str = ""  # a corpus case name: send that recorded body instead
    remaining_requests: int = -1  # >= 0: successful answers carry rate-limit headers with this many left

    def mid_stream_k(self) -> int:
        return self.chunks // 2 if self.fault_after < 0 else self.fault_after


_BOUNDS: dict[str, tuple[float, float]] = {
    "chunks": (0, 100_000),
    "chunk_size": (0, 100_000),
    "first_delay_ms": (0, 600_000),
    "delay_ms": (0, 60_000),
    "fault_rate": (0, 1),
    "fault_after": (-1, 100_000),
    "fault_first": (0, 1_000_000),
    "retry_after": (0, 86_400),
    "slow_ms": (0, 600_000),
    "stall_max_s": (0, 3_600),
    "reasoning_chunks": (0, 10_000),
    "keepalive_every": (0, 100_000),
    "remaining_requests": (-1, 1_000_000_000),
}
_TYPES: dict[str, type] = {f.name: type(f.default) for f in fields(Settings)}
DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(Settings)}
HEADER_NAMES: dict[str, str] = {name: "x-fake-" + name.replace("_", "-") for name in _TYPES}
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off", ""}


def _coerce(name: str, value: Any) -> Any:
    kind = _TYPES.get(name)
    if kind is None:
        raise SettingError(f"unknown setting {name!r}; known: {', '.join(sorted(_TYPES))}")
    try:
        if kind is bool:
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text in _TRUE or text in _FALSE:
                return text in _TRUE
            raise ValueError(value)
        if kind is str:
            text = str(value).strip()
            if name == "fault":
                text = "" if text.lower() in ("", "none") else text.lower()
                if text and text not in FAULTS:
                    raise SettingError(f"unknown fault {text!r}; known: {', '.join(sorted(FAULTS))}")
            return text[:200]
        number = kind(float(value)) if kind is int else float(value)
    except SettingError:
        raise
    except (TypeError, ValueError):
        raise SettingError(f"bad value for {name}: {value!r}") from None
    lo, hi = _BOUNDS.get(name, (float("-inf"), float("inf")))
    if not lo <= number <= hi:
        raise SettingError(f"{name}={value!r} is outside {lo:g}..{hi:g}")
    return number


def validate(values: Mapping[str, Any]) -> dict[str, Any]:
    """Canonical names (dashes allowed) and typed values; raises SettingError."""
    return {str(k).strip().replace("-", "_"): _coerce(str(k).strip().replace("-", "_"), v) for k, v in values.items()}


@functools.lru_cache(maxsize=1024)
def _parse_cfg_cached(segment: str) -> tuple[tuple[str, Any], ...]:
    text = unquote(segment).strip()
    if text.startswith("{"):
        try:
            raw = json.loads(text)
        except ValueError as exc:
            raise SettingError(f"/cfg/ JSON does not parse: {exc}") from None
        if not isinstance(raw, dict):
            raise SettingError("/cfg/ JSON must be an object")
        return tuple(validate(raw).items())
    pairs: dict[str, str] = {}
    for part in text.replace("&", ";").split(";"):
        if not part.strip():
            continue
        name, eq, value = part.partition("=")
        if not eq:
            raise SettingError(f"/cfg/ item {part!r} is not name=value")
        pairs[name] = value
    return tuple(validate(pairs).items())


def parse_cfg_segment(segment: str) -> dict[str, Any]:
    """`chunks=5;delay_ms=10` or url-encoded `{"chunks": 5}`; cached since a base URL repeats."""
    return dict(_parse_cfg_cached(segment))


def from_headers(headers: Mapping[str, str]) -> dict[str, Any]:
    found = {name: headers[h] for name, h in HEADER_NAMES.items() if h in headers}
    return validate(found) if found else {}


def resolve(*layers: Mapping[str, Any]) -> Settings:
    """Later layers win. Layers are already validated dicts."""
    merged = dict(DEFAULTS)
    for layer in layers:
        if layer:
            merged.update(layer)
    return Settings(**merged)
