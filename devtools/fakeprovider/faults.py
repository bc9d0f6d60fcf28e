"""Which fault a request gets, and the connection-level faults themselves.

Choice, first match wins:
- the API key says so (so a key stored in byok carries its behaviour):
  a key containing `invalid` -> that provider's invalid-key answer (401;
  Gemini 400 API_KEY_INVALID); a key ending in `fault-<name>` (or
  `fault_<name>`) -> that fault, e.g. `sk-test-abc-fault-insufficient_quota`;
  a key ending in `r<status>` -> that status fault, e.g. `sk-test-r429`.
- the settings: `fault`, applied to the first `fault_first` requests per key
  when that is set, else to a `fault_rate` fraction of requests (drawn from a
  per-`seed` random stream when a seed is given, so runs repeat).
"""

from __future__ import annotations

import asyncio
import random
import re

from aiohttp import web

from devtools.fakeprovider.settings import FAULTS, STATUS_FAULTS, Settings

__all__ = ["FaultPicker", "drop_connection", "wait_until_gone"]

_KEY_FAULT = re.compile(r"fault[-_]([a-z0-9_]+)$")
_KEY_STATUS = re.compile(r"r(\d{3})$")
_MAX_STATE = 100_000  # seeds / per-key counters kept before starting afresh


class FaultPicker:
    def __init__(self) -> None:
        self._rngs: dict[str, random.Random] = {}
        self._first: dict[tuple[str, str], int] = {}

    def reset(self) -> None:
        self._rngs.clear()
        self._first.clear()

    @staticmethod
    def from_key(provider: str, key: str) -> str:
        low = key.lower()
        if "invalid" in low:
            return "gemini_key_invalid" if provider == "gemini" else "401"
        match = _KEY_FAULT.search(low)
        if match and match.group(1) in FAULTS:
            return match.group(1)
        match = _KEY_STATUS.search(low)
        if match and match.group(1) in STATUS_FAULTS:
            return match.group(1)
        return ""

    def pick(self, provider: str, key: str, key_fp: str, s: Settings) -> str:
        fault = self.from_key(provider, key)
        if fault or not s.fault:
            return fault
        if s.fault_first > 0:
            slot = (key_fp, s.fault)
            if len(self._first) > _MAX_STATE:
                self._first.clear()
            seen = self._first.get(slot, 0)
            self._first[slot] = seen + 1
            return s.fault if seen < s.fault_first else ""
        if s.fault_rate >= 1:
            return s.fault
        if s.fault_rate <= 0:
            return ""
        if s.seed:
            rng = self._rngs.get(s.seed)
            if rng is None:
                if len(self._rngs) > _MAX_STATE:
                    self._rngs.clear()
                rng = self._rngs[s.seed] = random.Random(s.seed)
            draw = rng.random()
        else:
            draw = random.random()
        return s.fault if draw < s.fault_rate else ""


async def wait_until_gone(request: web.Request, max_s: float) -> bool:
    """Sleep until the client disconnects (True) or `max_s` passes (False).

    The server runs with handler cancellation, so a disconnect normally arrives
    as CancelledError here; polling the transport is the fallback.
    """
    loop = asyncio.get_running_loop()
    deadline = loop.time() + max_s
    while (left := deadline - loop.time()) > 0:
        transport = request.transport
        if transport is None or transport.is_closing():
            return True
        await asyncio.sleep(min(0.5, left))
    return False


def drop_connection(request: web.Request) -> None:
    """Close the TCP connection; data already written is still delivered first."""
    transport = request.transport
    if transport is not None:
        transport.close()
