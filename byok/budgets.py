"""The budget gate on the request path: rate slots and budget reservations, and the cost of an answer.

The handler calls, per request (see ``byok.gateway.handler``)::

    pairs, ticket = await handler.gate.admit(req, targets, user_id=..., state=..., snapshot=..., now=...,
                                             grant=grant)  # the gateway key's and team's limits; may raise 429
    key, _ = await pool.pick(..., blocked=handler.gate.key_blocker(state))   # keys over budget are skipped
    entry.cost = handler.gate.cost(target, usage)                            # Decimal USD, or None = unknown
    await handler.gate.settle(state, ticket, key_id=..., kind=..., usage=..., cost=...)  # always, even on failure

No ORM here: the gate works from a `Book` (the catalog with overrides and the
enabled budgets) that the handler loads together with its configuration
snapshot (``byok.budget_store.load_book``); counters live in the shared state.
``admit`` applies the max_tokens policy of ``byok.maxtokens`` first.

**Budgets** (``Budget`` rows, and the rules of a gateway key or team): a token
limit and/or a spend limit (USD) per UTC day or month, counted in the shared
state (Redis with ``REDIS_URL``, so every process sees one counter). Tokens
counted are input + output (+ Gemini's thinking tokens); spend is the catalog
cost (usage of a model with unknown price adds tokens but no spend).

**Reservations**: before any upstream call, ``admit`` reserves the request's
worst case (``byok.quota.worst_case``: estimated prompt + max_tokens, or the
model's output limit, priced from the catalog) in every budget of the caller,
and takes a slot in every rate scope (rpm/tpm of a gateway key or team), all
or nothing in one round trip (``StateBackend.reserve``). A budget whose spent
+ reserved + this worst case exceeds its limit refuses with 429
``budget_exceeded`` and ``retry_after`` = seconds to the period's reset; a full
rate window with 429 ``rate_limited`` and the window's retry time. So N
concurrent requests against a budget that fits K are served at most K times.
``settle`` (one round trip) returns the reservation and adds the real usage;
after an upstream failure or a cancel the usage is what was consumed (often
nothing), so the reservation comes back. A lowered limit applies to the next
request; counters start when a budget exists and keep the period's count when
limits change.

Provider-key budgets are not reserved: a key over its budget is skipped by
the pool like a key over quota (when every key is, 429 ``rate_limited`` with
the earliest reset), and the answer's usage is counted against it on settle.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from asgiref.sync import sync_to_async

from byok.catalog import Catalog, billable_output_tokens, file_entries
from byok.maxtokens import Prepared, R, Routed, prepare_targets
from byok.providers.types import ChatRequest, Usage
from byok.quota import grant_limits, hold, refusal_error, reset_time, worst_case
from byok.state import NANO
from byok.state.quota import Reservation

__all__ = ["Book", "BudgetGate", "BudgetRule", "Ticket", "reset_time"]

log = logging.getLogger("byok.budgets")


@dataclass(frozen=True, slots=True)
class BudgetRule:
    """One enabled budget: its counter scope, limits and period."""

    id: int
    scope: str
    period: str
    token_limit: int | None
    spend_limit: float | None


@dataclass(frozen=True, slots=True)
class Ticket:
    """A request's admission: what it reserved, to settle once it is over (``BudgetGate.settle``)."""

    reservation: Reservation


@dataclass(frozen=True, slots=True)
class Book:
    """What the hot path needs from the database: the catalog with overrides, and the enabled budgets."""

    catalog: Catalog
    users: dict[int, tuple[BudgetRule, ...]] = field(default_factory=dict)
    keys: dict[int, tuple[BudgetRule, ...]] = field(default_factory=dict)


class BudgetGate:
    """The handler's prompt-budget, cost and budget checks over the `Book` of the handler's current snapshot.

    The handler hands the gate each book it loads with its snapshot (`preload`); ``load``, when given,
    is called (in the ORM thread) for a snapshot that came without one.
    """

    def __init__(self, load: Callable[[], Book] | None = None) -> None:
        self._load = load
        self._snapshot: object | None = None
        self._book: Book | None = None

    async def book(self, snapshot: object) -> Book:
        if self._load is not None and (self._book is None or snapshot is not self._snapshot):
            book = await sync_to_async(self._load, thread_sensitive=True)()
            self._book, self._snapshot = book, snapshot
        return self.current

    def preload(self, snapshot: object, book: Book) -> None:
        """Take a book loaded together with the handler's snapshot (saves a trip to the ORM thread)."""
        self._book, self._snapshot = book, snapshot

    @property
    def current(self) -> Book:
        """The last book loaded (the file catalog alone before any)."""
        return self._book or Book(Catalog(file_entries()))

    async def admit(
        self,
        req: ChatRequest,
        targets: Sequence[R],
        *,
        user_id: int | None,
        state,
        snapshot: object,
        now: float,
        grant: Any = None,
    ) -> tuple[list[tuple[R, Prepared]], Ticket]:
        """Prepare every target (max_tokens, context window), then take the request's rate slots and reserve its
        worst case in every budget (the user's, and the gateway key's and its team's when ``grant``, a
        ``byok.keys.grant.Grant``, is given) in one atomic step; raise 429 before any upstream call. The `Ticket`
        must be settled (``settle``) whatever happens next.
        """
        book = await self.book(snapshot)
        prepared = prepare_targets(req, targets, book.catalog)
        rates, budgets = grant_limits(grant) if grant is not None else ([], [])
        all_rules = [
            *(book.users.get(user_id, ()) if user_id is not None else ()),
            *(BudgetRule(0, *budget) for budget in budgets),
        ]
        rate_tokens = max((p.reserve for _, p in prepared), default=0)
        if not all_rules and not any(r.rpm is not None or r.tpm is not None for r in rates):
            return prepared, Ticket(Reservation.new(now, (), rate_tokens, ()))
        tokens, nanos = worst_case(prepared)
        got = await state.reserve(rates=rates, tokens=rate_tokens, holds=[hold(r, tokens, nanos) for r in all_rules])
        if not got:
            raise refusal_error(got, now)
        return prepared, Ticket(got.reservation)

    def key_blocker(self, state):
        """For ``KeyPool.pick``: an async function giving a key's budget reset time if it is over budget, else None."""
        keys = self.current.keys

        async def blocked(key) -> float | None:
            until = None
            for rule in keys.get(key.id, ()):
                status = await state.check_budget(
                    rule.scope, token_limit=rule.token_limit, spend_limit=rule.spend_limit, period=rule.period
                )
                if not status.ok:
                    until = status.reset_at if until is None else max(until, status.reset_at)
            return until

        return blocked if keys else None

    def cost(self, target: Routed, usage: Usage, reported_model: str | None = None) -> Decimal | None:
        """USD for ``usage`` on ``target`` from the catalog, or None when the model or its price is unknown."""
        catalog = self.current.catalog
        provider = target.provider
        info = catalog.lookup(provider.kind, target.model, provider.name)
        if info is None and reported_model:
            info = catalog.lookup(provider.kind, reported_model, provider.name)
        return info.cost(usage) if info is not None else None

    async def settle(
        self, state, ticket: Ticket | None, *, key_id: int | None, kind: str, usage: Usage, cost: Decimal | None
    ) -> None:
        """Replace the ticket's reservation by the answer's real tokens and cost (none: a release), and count them
        against the serving provider key's budgets too; one round trip. Never raises: the answer is given already.
        """
        tokens = max(usage.input_tokens + billable_output_tokens(kind, usage), 0)
        reservation = ticket.reservation if ticket is not None else Reservation.new(0.0, (), 0, ())
        held = {(p.hold.scope, p.hold.period) for p in reservation.holds}
        rules = self.current.keys.get(key_id, ()) if key_id is not None and (tokens or cost) else ()
        also = [(rule.scope, rule.period) for rule in rules]
        also = [a for i, a in enumerate(also) if a not in held and a not in also[:i]]
        if reservation.empty and not also:
            return
        try:
            await state.settle(reservation, tokens=tokens, nanos=int((cost or 0) * NANO), also=also)
        except Exception:  # never fail an answer already given over accounting; say so loudly
            log.exception("could not settle the usage of request reservation %s", reservation.id)
