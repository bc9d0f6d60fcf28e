"""What the fake provider was asked and what it did, for tests to assert on.

Each request becomes one record (a plain dict) as soon as its body is read,
with outcome "open"; it is finished exactly once: "completed", "fault" (the
fake injected one and ended the exchange itself), "cancelled" (the client went
away first; `fault` still says which fault was running, if any) or "rejected"
(missing auth, unreadable body, bad settings). Credentials are never kept:
credential headers and `key=` query values become `fp:<sha256 first 12 hex>`
(the first 12 hex digits of byok's own 16-digit key fingerprint).
"""

from __future__ import annotations

import hashlib
import time
from collections import deque
from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qsl, urlencode

__all__ = ["Recorder", "fingerprint"]

CREDENTIAL_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-api-key",
        "x-goog-api-key",
        "api-key",
        "cookie",
    }
)
_MAX_HEADERS = 64
_MAX_VALUE = 2048
OUTCOMES = ("completed", "fault", "cancelled", "rejected")


def fingerprint(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()[:12]


def _scrub(name: str, value: str, key: str | None, fp: str) -> str:
    if name in CREDENTIAL_HEADERS:
        scheme, _, rest = value.partition(" ")
        if rest and scheme.lower() in ("bearer", "basic", "token"):
            return f"{scheme} fp:{fingerprint(rest)}"
        return f"fp:{fingerprint(value)}"
    if key and key in value:  # a key copied into some other header is scrubbed too
        return value.replace(key, f"fp:{fp}")
    return value[:_MAX_VALUE]


class Recorder:
    def __init__(self, maxlen: int = 10_000) -> None:
        self._items: deque[dict[str, Any]] = deque(maxlen=maxlen)
        self._next_id = 1
        self._counts: dict[str, dict[str, int]] = {}
        self.open_requests = 0
        self.open_streams = 0

    def start(
        self,
        *,
        method: str,
        path: str,
        cfg: str | None,
        query: str,
        provider: str,
        headers: Mapping[str, str],
        key: str | None,
        body: Any,
        model: str = "",
        stream: bool = False,
    ) -> dict[str, Any]:
        fp = fingerprint(key) if key else ""
        recorded: dict[str, str] = {}
        for name, value in list(headers.items())[:_MAX_HEADERS]:
            lname = name.lower()
            value = _scrub(lname, value, key, fp)
            recorded[lname] = f"{recorded[lname]}, {value}" if lname in recorded else value
        if query:
            pairs = [(k, f"fp:{fingerprint(v)}" if k.lower() == "key" else v) for k, v in parse_qsl(query, True)]
            query = urlencode(pairs)
        rec: dict[str, Any] = {
            "id": self._next_id,
            "time": time.time(),
            "method": method,
            "path": path,
            "cfg": cfg,
            "query": query,
            "provider": provider,
            "model": model,
            "stream": stream,
            "key_fp": fp,
            "headers": recorded,
            "body": body,
            "fault": None,
            "outcome": "open",
            "status": None,
            "chunks_sent": 0,
            "disconnected": False,
            "duration_ms": None,
        }
        self._next_id += 1
        self._items.append(rec)
        self.open_requests += 1
        return rec

    def finish(self, rec: dict[str, Any], outcome: str, status: int | None = None) -> None:
        """First call wins; later ones (a disconnect after a drop) only add `disconnected`."""
        if outcome == "cancelled":
            rec["disconnected"] = True
        if rec["outcome"] != "open":
            return
        rec["outcome"] = outcome
        if status is not None:
            rec["status"] = status
        rec["duration_ms"] = round((time.time() - rec["time"]) * 1000, 3)
        self.open_requests -= 1
        by_outcome = self._counts.setdefault(rec["provider"] or "unknown", {})
        by_outcome[outcome] = by_outcome.get(outcome, 0) + 1

    def list(self, query: Mapping[str, str]) -> list[dict[str, Any]]:
        """Records, oldest first, filtered by provider / outcome / key_fp / fault / since_id; limit keeps the newest."""
        items: list[dict[str, Any]] = list(self._items)
        for field in ("provider", "outcome", "key_fp", "fault", "model"):
            if query.get(field):
                items = [r for r in items if str(r.get(field)) == query[field]]
        if query.get("since_id", "").isdigit():
            since = int(query["since_id"])
            items = [r for r in items if r["id"] > since]
        if query.get("limit", "").isdigit():
            items = items[-int(query["limit"]) :] if int(query["limit"]) else []
        return items

    def clear(self) -> None:
        """Forget records and counts (open requests keep being tracked)."""
        self._items.clear()
        self._counts = {}

    def stats(self) -> dict[str, Any]:
        by_provider = {p: sum(c.values()) for p, c in self._counts.items()}
        by_outcome: dict[str, int] = {}
        for counts in self._counts.values():
            for outcome, n in counts.items():
                by_outcome[outcome] = by_outcome.get(outcome, 0) + n
        return {
            "finished": sum(by_provider.values()),
            "by_provider": by_provider,
            "by_outcome": by_outcome,
            "by_provider_outcome": {p: dict(c) for p, c in self._counts.items()},
            "open_requests": self.open_requests,
            "open_streams": self.open_streams,
            "recorded": len(self._items),
        }
