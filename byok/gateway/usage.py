"""Usage accounting off the response path: one long-lived writer thread, a bounded queue, batched inserts.

    writer = UsageWriter()
    writer.add(entry)        # a non-blocking put; never waits for the database
    await writer.flush()     # tests, shutdown: everything queued so far is written
    writer.stats()           # queued, high-water mark, dropped, written, failed rows

`add()` puts the record on a bounded queue; one daemon thread (started on
first use, per process) takes what has gathered every `interval` seconds (at
once past `batch` records) and inserts it with one `bulk_create`. No thread,
task or executor is created per request. When the queue is full the record is
dropped and counted (`dropped`), so a stalled database can never grow memory
without bound or slow answers down.

One bad row never costs the others: if a batch insert fails, the batch is
written again row by row, and each row that still fails is logged (its request
id and the error class, never its content) and counted (`failed_rows`).
Text is cleaned of NUL and other control characters before it is stored
(PostgreSQL refuses NUL in text and JSON), whatever its source.
"""

from __future__ import annotations

import asyncio
import atexit
import logging
import os
import queue
import re
import sys
import threading
import time
import weakref
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from byok import metrics

__all__ = ["UsageEntry", "UsageWriter", "clean_text", "flush_all", "now_utc", "shared_writer"]

log = logging.getLogger("byok.usage")

# C0 controls but tab, newline and carriage return; DEL; C1 controls.
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f]")


def clean_text(value: str) -> str:
    """``value`` without NUL and other control characters (tab and newlines are kept)."""
    return _CONTROL.sub("", value) if _CONTROL.search(value) else value


def _clean_json(value: Any) -> Any:
    if isinstance(value, str):
        return clean_text(value)
    if isinstance(value, dict):
        return {clean_text(str(k)): _clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean_json(v) for v in value]
    return value


@dataclass(slots=True)
class UsageEntry:
    request_id: str
    created_at: datetime
    user_id: int | None
    interface: str
    stream: bool
    model: str = ""
    gateway_key_id: int | None = None  # the gateway key the caller used, and its team (byok.keys)
    team_id: int | None = None
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


def _record(e: UsageEntry, users: set[int], known: set[int], gateway: tuple[set[int], set[int]]):
    from byok.models import UsageRecord

    return UsageRecord(
        request_id=clean_text(e.request_id),
        created_at=e.created_at,
        user_id=e.user_id if e.user_id in users else None,
        gateway_key_id=e.gateway_key_id if e.gateway_key_id in gateway[0] else None,
        team_id=e.team_id if e.team_id in gateway[1] else None,
        interface=clean_text(e.interface),
        stream=e.stream,
        model=clean_text(e.model)[:200],
        provider_id=e.provider_id if e.provider_id in known else None,
        provider_name=clean_text(e.provider_name)[:64],
        key_fingerprint=clean_text(e.key_fingerprint),
        key_hint=clean_text(e.key_hint),
        status=e.status,
        error_code=clean_text(e.error_code)[:64],
        attempts=e.attempts,
        failover_path=_clean_json(e.failover_path),
        tokens_in=e.tokens_in,
        tokens_out=e.tokens_out,
        latency_ms=e.latency_ms,
        ttft_ms=e.ttft_ms,
        failover_ms=e.failover_ms,
        cost=e.cost,
        overhead_ms=e.overhead_ms,
    )


def _write(entries: list[UsageEntry]) -> int:
    """Insert the records (one statement; row by row if that fails); return how many rows failed."""
    from django.contrib.auth import get_user_model
    from django.db import transaction

    from byok.models import ApiKey, Provider, UsageRecord

    # Providers and users deleted while their request ran are recorded by name / as anonymous.
    known = set(
        Provider.objects.filter(pk__in={e.provider_id for e in entries if e.provider_id}).values_list("pk", flat=True)
    )
    users = set(
        get_user_model().objects.filter(pk__in={e.user_id for e in entries if e.user_id}).values_list("pk", flat=True)
    )
    gateway = _known_gateway(entries)
    records = [_record(e, users, known, gateway) for e in entries]
    failed = 0
    try:
        with transaction.atomic():
            UsageRecord.objects.bulk_create(records, ignore_conflicts=True)
    except Exception as exc:  # one bad row must not cost the others: write them one by one
        log.warning(
            "a batch of %d usage records failed (%s); writing them one by one", len(records), type(exc).__name__
        )
        for record in records:
            try:
                with transaction.atomic():
                    UsageRecord.objects.bulk_create([record], ignore_conflicts=True)
            except Exception as row_exc:
                failed += 1
                log.error("usage record %s not written: %s", record.request_id, type(row_exc).__name__)
    used: dict[int, datetime] = {}
    for e in entries:
        if e.key_id is not None and e.status == "ok":
            used[e.key_id] = max(used.get(e.key_id, e.created_at), e.created_at)
    for key_id, at in used.items():
        ApiKey.objects.filter(pk=key_id).update(last_used_at=at)
    _stamp_gateway_keys(entries)
    return failed


def _known_gateway(entries: list[UsageEntry]) -> tuple[set[int], set[int]]:
    """The gateway keys and teams of ``entries`` that still exist (a deleted one is recorded as none)."""
    from byok.models import GatewayKey, Team

    key_ids = {e.gateway_key_id for e in entries if e.gateway_key_id}
    team_ids = {e.team_id for e in entries if e.team_id}
    keys = set(GatewayKey.objects.filter(pk__in=key_ids).values_list("pk", flat=True)) if key_ids else set()
    teams = set(Team.objects.filter(pk__in=team_ids).values_list("pk", flat=True)) if team_ids else set()
    return keys, teams


LAST_USED_EVERY_S = 60.0
_stamped: dict[int, float] = {}  # gateway key id -> when its last_used_at was last written (monotonic)


def _stamp_gateway_keys(entries: list[UsageEntry]) -> None:
    """Write gateway keys' `last_used_at`, at most once a minute per key (off the request path)."""
    from byok.models import GatewayKey

    latest: dict[int, datetime] = {}
    for e in entries:
        if e.gateway_key_id is not None:
            latest[e.gateway_key_id] = max(latest.get(e.gateway_key_id, e.created_at), e.created_at)
    now = time.monotonic()
    for key_id, at in latest.items():
        if now - _stamped.get(key_id, -LAST_USED_EVERY_S) >= LAST_USED_EVERY_S:
            _stamped[key_id] = now
            GatewayKey.objects.filter(pk=key_id).update(last_used_at=at)


class UsageWriter:
    """Queues `UsageEntry`s and writes them in batches from one long-lived thread."""

    def __init__(self, *, batch: int = 200, interval: float = 0.2, max_queue: int = 10_000) -> None:
        self.batch = batch
        self.interval = interval
        self.max_queue = max_queue
        self.high_water = 0  # the most records ever waiting at once
        self.dropped = 0  # records refused because the queue was full
        self.written = 0  # records handed to the database (rows that failed are counted apart)
        self.failed_rows = 0
        self._lock = threading.Lock()
        self._hurry = threading.Event()  # set by flush(): write without waiting for the batch to fill
        self._queue: queue.Queue[UsageEntry] = queue.Queue(maxsize=max_queue)
        self._thread: threading.Thread | None = None
        self._pid = os.getpid()
        _WRITERS.add(self)
        atexit.register(self._write_at_exit)  # a server stopping still records what it served

    # -- the request side ---------------------------------------------------------------

    def add(self, entry: UsageEntry) -> None:
        """Queue a record; never blocks (a full queue drops it and counts the drop)."""
        self._ensure_thread()
        try:
            self._queue.put_nowait(entry)
        except queue.Full:
            with self._lock:
                self.dropped += 1
                dropped = self.dropped
            if dropped == 1 or dropped % 1000 == 0:
                log.error("usage queue full (%d records): %d records dropped so far", self.max_queue, dropped)
            metrics.usage_queue(self.stats())
            return
        size = self._queue.qsize()
        metrics.QUEUE_DEPTH.set(size)
        if size > self.high_water:
            self.high_water = size

    def stats(self) -> dict[str, int]:
        """The writer's figures (`byok.metrics.usage_queue` exports queued and dropped)."""
        return {
            "queued": self._queue.qsize(),
            "high_water": self.high_water,
            "dropped": self.dropped,
            "written": self.written,
            "failed_rows": self.failed_rows,
        }

    async def flush(self) -> None:
        """Write everything queued so far and wait for it (tests, shutdown)."""
        if self._queue.unfinished_tasks:
            await asyncio.get_running_loop().run_in_executor(None, self.flush_sync)

    def flush_sync(self, timeout: float | None = None) -> bool:
        """Like `flush()`, from synchronous code; False if `timeout` passed first."""
        self._ensure_thread()
        self._hurry.set()
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._queue.all_tasks_done:
            while self._queue.unfinished_tasks:
                remaining = None if deadline is None else deadline - time.monotonic()
                if remaining is not None and remaining <= 0:
                    return False
                self._queue.all_tasks_done.wait(remaining)
        return True

    # -- the writer thread ----------------------------------------------------------------

    def _ensure_thread(self) -> None:
        thread = self._thread
        if thread is not None and thread.is_alive() and self._pid == os.getpid():
            return
        with self._lock:
            if self._pid != os.getpid():  # a forked child: the parent's thread and queue are not ours
                self._pid = os.getpid()
                self._queue = queue.Queue(maxsize=self.max_queue)
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._run, name="byok-usage-writer", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        from django.db import connection

        while True:
            first = self._queue.get()
            if not self._hurry.is_set() and self._queue.qsize() < self.batch - 1:
                self._hurry.wait(self.interval)  # let a batch gather
            entries = [first]
            while len(entries) < self.batch:
                try:
                    entries.append(self._queue.get_nowait())
                except queue.Empty:
                    break
            try:
                failed = _write(entries)
                self.written += len(entries) - failed
                self.failed_rows += failed
            except Exception:  # never let accounting kill the writer; say so loudly
                self.failed_rows += len(entries)
                log.exception("could not write %d usage records", len(entries))
            finally:
                if self._queue.empty():
                    self._hurry.clear()
                    connection.close()  # idle: hold no database connection between bursts
                for _ in entries:
                    self._queue.task_done()
                metrics.usage_queue(self.stats())

    def _write_at_exit(self) -> None:
        if self._pid != os.getpid() or not self._queue.unfinished_tasks:
            return
        try:
            if not self.flush_sync(timeout=10):
                print(f"byok: {self._queue.qsize()} usage records not written at exit", file=sys.stderr)
        except Exception as exc:  # logging may already be shut down
            print(f"byok: could not write usage records at exit: {type(exc).__name__}", file=sys.stderr)


_WRITERS: weakref.WeakSet[UsageWriter] = weakref.WeakSet()
_shared: UsageWriter | None = None


def shared_writer() -> UsageWriter:
    """The process's usage writer (every handler uses it unless given its own)."""
    global _shared
    if _shared is None:
        _shared = UsageWriter()
    return _shared


def flush_all(timeout: float = 10.0) -> None:
    """Write what every writer of the process has queued (synchronous; tests call it before the database goes)."""
    for writer in list(_WRITERS):
        if writer._queue.unfinished_tasks:
            writer.flush_sync(timeout)


def now_utc() -> datetime:
    return datetime.now(UTC)
