"""One request's usage record, from its start to its end: who served it, what it cost, how it ended.

    run, entry = ledger.start(req, user_id=..., interface="rest", stream=False, before_ms=...)
    ledger.fill(entry, run, target, key, usage)   # once a target served it (again when usage grows)
    ledger.finish(entry, run, error=None)         # exactly once: status, latency, overhead -> the writer

The handler (`byok.gateway.handler`) calls it for `chat()` and `stream()` alike; the records go to
the usage writer (`byok.gateway.usage`), which inserts them off the request path, and the meter
(`byok.gateway.meter`: the log line and the metrics).
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable

from byok.budgets import BudgetGate
from byok.exceptions import ByokError
from byok.gateway.config_cache import KeyConfig
from byok.gateway.failover import Run
from byok.gateway.meter import Meter
from byok.gateway.routing import Target
from byok.gateway.usage import UsageEntry, UsageWriter, now_utc
from byok.keys.grant import Grant
from byok.providers.types import ChatRequest, Usage

__all__ = ["Ledger"]


class Ledger:
    """Fills and finishes usage records; costs through the budget gate, time from the handler's clock."""

    def __init__(self, gate: BudgetGate, writer: UsageWriter, meter: Meter, clock: Callable[[], float]) -> None:
        self.gate, self.writer, self.meter, self.clock = gate, writer, meter, clock

    def start(
        self,
        req: ChatRequest,
        *,
        user_id: int | None,
        interface: str,
        stream: bool,
        before_ms: float,
        grant: Grant | None = None,
    ) -> tuple[Run, UsageEntry]:
        """A new request: its failover run (id, start time) and its usage record (naming the gateway key and
        its team when the caller used one)."""
        run = Run(uuid.uuid4().hex, self.clock(), before_ms=before_ms)
        entry = UsageEntry(
            request_id=run.request_id,
            created_at=now_utc(),
            user_id=user_id,
            gateway_key_id=grant.key_id if grant is not None else None,
            team_id=grant.team_id if grant is not None else None,
            interface=interface,
            stream=stream,
            model=req.model,
        )
        return run, entry

    def fill(self, entry: UsageEntry, run: Run, target: Target, key: KeyConfig, usage: Usage) -> None:
        entry.provider_id, entry.provider_name, entry.model = target.provider.id, target.provider.name, target.model
        entry.key_id, entry.key_fingerprint, entry.key_hint = key.id, key.fingerprint, key.hint
        entry.tokens_in, entry.tokens_out = usage.input_tokens, usage.output_tokens
        entry.cost = self.gate.cost(target, usage)
        entry.failover_ms = run.failover_ms

    def finish(self, entry: UsageEntry, run: Run, *, error: BaseException | None = None) -> None:
        """Close the record (ok, error with its code, or cancelled), hand it to the writer, count it (meter)."""
        if not entry.provider_name and run.current is not None:
            target, key = run.current
            self.fill(entry, run, target, key, Usage())
        now = self.clock()
        entry.latency_ms = (now - run.started) * 1000
        if entry.overhead_ms is None:
            entry.overhead_ms = run.overhead_ms(now)
        if isinstance(error, ByokError):
            error.overhead_ms = entry.overhead_ms
        entry.attempts = len(run.attempts)
        entry.failover_path = [a.to_dict() for a in run.attempts]
        if error is None:
            entry.status = "ok"
        elif isinstance(error, ByokError):
            entry.status, entry.error_code = "error", error.code
        elif isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            entry.status, entry.error_code = "cancelled", "cancelled"
        else:
            entry.status, entry.error_code = "error", "internal_error"
        self.writer.add(entry)
        self.meter.finished(entry, run.attempts, error)
