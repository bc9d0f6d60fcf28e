"""One request's usage record, from its start to its end: who served it, what it cost, how it ended.

    run, entry = ledger.start(req, user_id=..., interface="rest", stream=False, before_ms=...)
    ledger.fill(entry, run, target, key, usage)   # once a target served it (again when usage grows)
    ledger.finish(entry, run, error=None)         # exactly once: status, latency, overhead -> the writer
    await ledger.settle(state, ticket, run, usage, cost)  # the budget reservation: settled, or released

The handler (`byok.gateway.handler`) calls it for `complete()` (chats, embeddings) and `stream()` alike; the
records go to the usage writer (`byok.gateway.usage`), which inserts them off the request path, and the meter
(`byok.gateway.meter`: the log line and the metrics). `Result` is what a complete answer's caller gets.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from decimal import Decimal
from typing import Generic, Protocol, TypeVar

from byok.budgets import BudgetGate, Ticket
from byok.exceptions import ByokError
from byok.gateway.config_cache import KeyConfig
from byok.gateway.failover import Attempt, Run
from byok.gateway.meter import Meter
from byok.gateway.routing import Target
from byok.gateway.usage import UsageEntry, UsageWriter, now_utc
from byok.keys.grant import Grant
from byok.providers.types import ChatRequest, Usage
from byok.state import StateBackend

__all__ = ["Answer", "Ledger", "Result"]


class Answer(Protocol):
    """What a complete answer tells the ledger: the model that gave it and what it used."""

    @property
    def model(self) -> str: ...
    @property
    def usage(self) -> Usage | None: ...


A = TypeVar("A", bound=Answer)


@dataclass(slots=True)
class Result(Generic[A]):
    """A complete answer (a `ChatResponse`, an `EmbeddingResponse`) and how byok got it."""

    response: A
    provider: str
    model: str
    key_hint: str
    attempts: list[Attempt]
    latency_ms: float
    failover_ms: float
    request_id: str
    overhead_ms: float = 0.0  # time in byok, upstream excluded (the x-byok-overhead-ms header)


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

    async def settle(
        self, state: StateBackend, ticket: Ticket | None, run: Run, usage: Usage, cost: Decimal | None
    ) -> None:
        """The real usage in place of the reservation (none: released), shielded from a second cancel."""
        target, key = run.current if run.current is not None else (None, None)
        settle = self.gate.settle(
            state,
            ticket,
            key_id=key.id if key is not None else None,
            kind=target.provider.kind if target is not None else "",
            usage=usage,
            cost=cost,
        )
        await asyncio.shield(settle)

    def result(self, entry: UsageEntry, run: Run, answer: A, target: Target, key: KeyConfig) -> Result[A]:
        """What the caller of a finished request gets: the answer and the figures of its record."""
        return Result(
            response=answer,
            provider=target.provider.name,
            model=answer.model or target.model,
            key_hint=key.hint,
            attempts=run.attempts,
            latency_ms=entry.latency_ms,
            failover_ms=entry.failover_ms,
            request_id=run.request_id,
            overhead_ms=entry.overhead_ms or 0.0,
        )
