"""Usage accounting off the response path: records are queued, then written in batches.

`add()` costs a list append; a task on the running loop writes what has
gathered every `interval` seconds (or at once past `batch` records), so the
answer never waits for the database. Writes go through asgiref's
thread-sensitive executor like every other ORM call, which keeps SQLite (one
writer) safe. `flush()` writes everything now (tests, shutdown).
"""

from __future__ import annotations

import asyncio
import atexit
import contextvars
import logging
import sys
import threading
from dataclasses import dataclass, field
from datetime import datetime, timezone
from decimal import Decimal

from asgiref.sync import sync_to_async

__all__ = ["UsageEntry", "UsageWriter", "now_utc"]

log = logging.getLogger("byok.usage")


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    created_at: datetime
    user_id: int | None
    interface: str
    stream: bool
    model: str = ""
    provider_id: int | None = None
    provider_name: str = ""
    key_id: int | None = None
    key_fingerprint: str = ""
    key_hint: str = ""
    status: str = "ok"
    error_code: str = ""
    attempts: int = 0
    failover_path: list[dict] = field(default_factory=list)
    tokens_in: int = 0
    tokens_out: int = 0
    latency_ms: float = 0.0
    ttft_ms: float | None = None
    failover_ms: float = 0.0
    cost: Decimal | None = None
    overhead_ms: float | None = None


def _write(entries: list[UsageEntry]) -> None:
    from byok.models import ApiKey, Provider, UsageRecord

    from django.contrib.auth import get_user_model

    # Providers and users deleted while their request ran are recorded by name / as anonymous.
    known = set(Provider.objects.filter(pk__in={e.provider_id for e in entries if e.provider_id}).values_list("pk", flat=True))
    users = set(get_user_model().objects.filter(pk__in={e.user_id for e in entries if e.user_id}).values_list("pk", flat=True))
    UsageRecord.objects.bulk_create([
        UsageRecord(
            request_id=e.request_id, created_at=e.created_at, user_id=e.user_id if e.user_id in users else None, interface=e.interface, stream=e.stream,
            model=e.model[:200], provider_id=e.provider_id if e.provider_id in known else None,
            provider_name=e.provider_name, key_fingerprint=e.key_fingerprint, key_hint=e.key_hint, status=e.status,
            error_code=e.error_code, attempts=e.attempts, failover_path=e.failover_path, tokens_in=e.tokens_in,
            tokens_out=e.tokens_out, latency_ms=e.latency_ms, ttft_ms=e.ttft_ms, failover_ms=e.failover_ms, cost=e.cost,
            overhead_ms=e.overhead_ms,
        )
        for e in entries
    ], ignore_conflicts=True)
    used: dict[int, datetime] = {}
    for e in entries:
        if e.key_id is not None and e.status == "ok":
            used[e.key_id] = max(used.get(e.key_id, e.created_at), e.created_at)
    for key_id, at in used.items():
        ApiKey.objects.filter(pk=key_id).update(last_used_at=at)


def _safe_write(entries: list[UsageEntry]) -> None:
    try:
        _write(entries)
    except Exception:  # never fail a request over accounting; say so loudly
        log.exception("could not write %d usage records", len(entries))


class UsageWriter:
    """Queues `UsageEntry`s and writes them in batches."""

    def __init__(self, *, batch: int = 200, interval: float = 0.2) -> None:
        self.batch = batch
        self.interval = interval
        self._pending: list[UsageEntry] = []
        self._lock = threading.Lock()
        self._scheduled: set[int] = set()
        self._tasks: set[asyncio.Task] = set()
        atexit.register(self._write_at_exit)  # a server stopping (SIGTERM) still records what it served

    def _write_at_exit(self) -> None:
        entries = self._take()
        if entries:
            try:
                _write(entries)
            except Exception as exc:  # logging may already be shut down
                print(f"byok: could not write {len(entries)} usage records at exit: {type(exc).__name__}", file=sys.stderr)

    def write_pending(self) -> None:
        """Write what is queued, synchronously (at exit, when no event loop runs any more)."""
        entries = self._take()
        if entries:
            _safe_write(entries)

    def add(self, entry: UsageEntry) -> None:
        with self._lock:
            self._pending.append(entry)
            many = len(self._pending) >= self.batch
        try:
            loop = asyncio.get_running_loop()
        except RuntimeError:
            self.write_pending()
            return
        if many or id(loop) not in self._scheduled:
            self._scheduled.add(id(loop))
            # A fresh context: the request's own (with its asgiref thread executor) may be gone by then.
            loop.call_later(0 if many else self.interval, self._start_write, loop, context=contextvars.Context())

    def _take(self) -> list[UsageEntry]:
        with self._lock:
            entries, self._pending = self._pending, []
        return entries

    def _start_write(self, loop: asyncio.AbstractEventLoop) -> None:
        self._scheduled.discard(id(loop))
        entries = self._take()
        if entries:
            task = loop.create_task(sync_to_async(_safe_write, thread_sensitive=True)(entries))
            self._tasks.add(task)
            task.add_done_callback(self._tasks.discard)

    async def flush(self) -> None:
        """Write everything queued so far, and wait for writes already under way."""
        entries = self._take()
        if entries:
            await sync_to_async(_safe_write, thread_sensitive=True)(entries)
        pending = [t for t in self._tasks if t.get_loop() is asyncio.get_running_loop()]
        if pending:
            await asyncio.gather(*pending, return_exceptions=True)


def now_utc() -> datetime:
    return datetime.now(timezone.utc)
