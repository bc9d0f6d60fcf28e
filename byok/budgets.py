"""The budget gate on the request path: user and key budgets, and the cost of an answer.

The handler calls, per request (see ``byok.gateway.handler``)::

    # [(target, Prepared)]
    pairs = await handler.gate.admit(req, targets, user_id=..., state=..., snapshot=..., now=...)
    key, _ = await pool.pick(..., blocked=handler.gate.key_blocker(state))   # keys over budget are skipped
    entry.cost = handler.gate.cost(target, usage)                            # Decimal USD, or None = unknown
    await handler.gate.spend(state, user_id=..., key_id=..., target=..., usage=..., cost=...)

No ORM here: the gate works from a `Book` (the catalog with overrides and the
enabled budgets) that the handler loads together with its configuration
snapshot (``byok.budget_store.load_book``); counters live in the shared state.
``admit`` applies the max_tokens policy of ``byok.maxtokens`` first.

**Budgets** (``Budget`` rows): per user or per provider key, a token limit
and/or a spend limit (USD) per UTC day or month, counted in the shared state
(``StateBackend.spend`` / ``check_budget``: Redis with ``REDIS_URL``, so every
process sees one counter). Tokens counted are input + output (+ Gemini's
thinking tokens); spend is the catalog cost (usage of a model with unknown
price adds tokens but no spend). A user over a limit, or whose request's
estimated prompt would take it over, is refused with 429 ``budget_exceeded``
and ``retry_after`` = seconds to the period's reset. A key over its budget is
skipped by the pool like a key over quota; when every key is, the caller gets
429 ``rate_limited`` with the earliest reset. The check is not a reservation:
concurrent requests that all pass may overshoot by their own output. Counters
start when a budget exists (usage before a budget was created is not counted
against it); changing limits keeps the period's count.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal

from asgiref.sync import sync_to_async

from byok.catalog import Catalog, billable_output_tokens, file_entries
from byok.exceptions import BudgetExceededError
from byok.maxtokens import Prepared, R, Routed, prepare_targets
from byok.providers.types import ChatRequest, Usage

__all__ = ["Book", "BudgetGate", "BudgetRule", "reset_time"]

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
class Book:
    """What the hot path needs from the database: the catalog with overrides, and the enabled budgets."""

    catalog: Catalog
    users: dict[int, tuple[BudgetRule, ...]] = field(default_factory=dict)
    keys: dict[int, tuple[BudgetRule, ...]] = field(default_factory=dict)


def reset_time(ts: float) -> str:
    """A period's reset time as shown to people (UTC, ISO 8601)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
    ) -> list[tuple[R, Prepared]]:
        """Prepare every target (max_tokens, context window), then check the user's budgets; raise before any upstream
        call.
        """
        book = await self.book(snapshot)
        prepared = prepare_targets(req, targets, book.catalog)
        rules = book.users.get(user_id, ()) if user_id is not None else ()
        if rules:
            first = prepared[0][1]
            prompt, info = first.prompt_tokens, first.info
            prompt_cost = (
                float(info.prices_for(prompt)[0] * prompt / Decimal(1_000_000))
                if info is not None and info.priced
                else 0.0
            )
            for rule in rules:
                await self._check_user(state, rule, prompt, prompt_cost, now)
        return prepared

    @staticmethod
    async def _check_user(state, rule: BudgetRule, prompt: int, prompt_cost: float, now: float) -> None:
        status = await state.check_budget(
            rule.scope, token_limit=rule.token_limit, spend_limit=rule.spend_limit, period=rule.period
        )
        reason = status.reason
        if reason is None and rule.token_limit is not None and status.used_tokens + prompt > rule.token_limit:
            reason = "tokens"
        if reason is None and rule.spend_limit is not None and status.used_spend + prompt_cost > rule.spend_limit:
            reason = "spend"
        if reason is None:
            return
        period = "daily" if rule.period == "day" else "monthly"
        limit: float | None
        if reason == "tokens":
            what, limit, used = (
                f"{period} token budget ({rule.token_limit} tokens)",
                rule.token_limit,
                status.used_tokens,
            )
        else:
            what, limit, used = f"{period} spend budget (${rule.spend_limit:g})", rule.spend_limit, status.used_spend
        raise BudgetExceededError(
            f"Your {what} is used up or would be exceeded by this request; it resets at {reset_time(status.reset_at)}.",
            retry_after=status.reset_at - now,
            period=rule.period,
            reason=reason,
            limit=limit,
            used=used,
        )

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

    async def spend(
        self, state, *, user_id: int | None, key_id: int | None, kind: str, usage: Usage, cost: Decimal | None
    ) -> None:
        """Count a finished answer's tokens and cost against the user's and the key's budgets (each period once)."""
        tokens = usage.input_tokens + billable_output_tokens(kind, usage)
        if tokens <= 0 and not cost:
            return
        book = self.current
        rules = [
            *(book.users.get(user_id, ()) if user_id is not None else ()),
            *(book.keys.get(key_id, ()) if key_id is not None else ()),
        ]
        done: set[tuple[str, str]] = set()
        for rule in rules:
            if (rule.scope, rule.period) in done:
                continue
            done.add((rule.scope, rule.period))
            try:
                await state.spend(rule.scope, tokens=max(tokens, 0), cost=float(cost or 0), period=rule.period)
            except Exception:  # never fail an answer already given over accounting; say so loudly
                log.exception("could not count spend for %s (%s)", rule.scope, rule.period)
