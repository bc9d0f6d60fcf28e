"""Prompt budgets (max_tokens policy, context-window refusal), cost and spend accounting, user and key budgets.

The handler calls, per request (see ``byok.gateway.handler``)::

    targets = await handler.gate.admit(req, targets, user_id=..., state=..., snapshot=..., now=...)
    key, _ = await pool.pick(..., blocked=handler.gate.key_blocker(state))   # keys over budget are skipped
    entry.cost = handler.gate.cost(target, usage)                            # Decimal USD, or None = unknown
    await handler.gate.spend(state, user_id=..., key_id=..., target=..., usage=..., cost=...)

**max_tokens policy** (``prepare_request``), for a model the catalog knows:

- a ``max_tokens`` above the model's output limit is **clamped** to the limit
  (never refused): clients such as the OpenAI SDK often send a generic large
  value, and the provider would refuse it with a 400 otherwise;
- a missing ``max_tokens`` is filled: with the catalog's ``default_max_tokens``
  if it has one (DeepSeek's documented 4K / 32K defaults), else for providers
  that require one (Anthropic) with the adapter's default (4096), else with the
  model's output limit (what OpenAI and Gemini do themselves). The fill never
  exceeds the output limit nor the room the prompt leaves in the window
  (estimate + 10 % margin); when the room is the tighter bound, an optional
  ``max_tokens`` is left out so the provider uses what is left;
- ``ContextLengthExceededError`` (400 ``context_length_exceeded``, before any
  key is picked or upstream call made) when the estimated prompt exceeds the
  model's input limit, when estimated prompt + ``max_tokens`` (after the
  clamp) exceeds the context window, or when the prompt leaves no room at all.

For a model the catalog does not know nothing is enforced, except that
Anthropic always gets ``max_tokens`` (the adapter default). With failover,
the primary target is checked strictly; a fallback whose window cannot take
the request is dropped from the chain rather than failing the request.

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
import math
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from decimal import Decimal
from typing import Any, Protocol, TypeVar

from asgiref.sync import sync_to_async

from byok.catalog import COST_QUANTUM, Catalog, ModelInfo, billable_output_tokens, file_entries
from byok.exceptions import BudgetExceededError, ContextLengthExceededError
from byok.providers import get_adapter
from byok.providers.types import ChatRequest, Usage
from byok.tokens import estimate_prompt_tokens

__all__ = [
    "FILL_MARGIN",
    "Book",
    "BudgetGate",
    "BudgetRule",
    "Prepared",
    "budget_rows",
    "create_budget",
    "delete_budget",
    "load_book",
    "prepare_request",
    "Routed",
    "prepare_targets",
    "spend_summary",
    "update_budget",
]

log = logging.getLogger("byok.budgets")

# The prompt estimate's safety margin when filling max_tokens up to the room left in the window.
FILL_MARGIN = 1.10


# -- max_tokens and the context window ---------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request made ready for one model: its max_tokens settled, its prompt estimated."""

    request: ChatRequest
    prompt_tokens: int
    reserve: int  # what the key pool's rate windows count before the answer: prompt + the caller's max_tokens
    info: ModelInfo | None
    filled: bool = False
    clamped_from: int | None = None


def _requires_max_tokens(kind: str) -> tuple[bool, int]:
    try:
        adapter = get_adapter(kind)
    except Exception:  # an unknown kind: treat like an OpenAI-style endpoint
        return False, 4096
    return bool(getattr(adapter, "requires_max_tokens", False)), int(getattr(adapter, "default_max_tokens", 4096))


def prepare_request(req: ChatRequest, *, kind: str, model: str, info: ModelInfo | None) -> Prepared:
    """Apply the max_tokens policy (module doc) for ``model`` of a ``kind`` provider; may raise ContextLengthExceededError."""
    required, adapter_default = _requires_max_tokens(kind)
    prompt = estimate_prompt_tokens(req, kind, info)
    asked = req.max_tokens
    if info is None:
        if asked is None and required:
            return Prepared(replace(req, max_tokens=adapter_default), prompt, prompt, None, filled=True)
        return Prepared(req, prompt, prompt + (asked or 0), None)
    limit = info.prompt_limit
    if limit is not None and prompt > limit:
        raise ContextLengthExceededError(
            f"The prompt (about {prompt} tokens) is longer than {model}'s input limit of {limit} tokens.",
            model=model, prompt_tokens=prompt, max_tokens=asked, context_window=info.context_window,
            max_input_tokens=info.max_input_tokens,
        )
    window = info.context_window
    clamped_from = None
    if asked is not None:
        if info.max_output_tokens is not None and asked > info.max_output_tokens:
            clamped_from, asked = asked, info.max_output_tokens
        if window is not None and prompt + asked > window:
            raise ContextLengthExceededError(
                f"The prompt (about {prompt} tokens) plus max_tokens ({asked}) exceeds {model}'s context window "
                f"of {window} tokens; shorten the conversation or lower max_tokens.",
                model=model, prompt_tokens=prompt, max_tokens=asked, context_window=window,
                max_input_tokens=info.max_input_tokens,
            )
        out = req if asked == req.max_tokens else replace(req, max_tokens=asked)
        return Prepared(out, prompt, prompt + asked, info, clamped_from=clamped_from)
    if window is not None and prompt >= window:
        raise ContextLengthExceededError(
            f"The prompt (about {prompt} tokens) leaves no room for an answer in {model}'s context window of {window} tokens.",
            model=model, prompt_tokens=prompt, max_tokens=None, context_window=window, max_input_tokens=info.max_input_tokens,
        )
    default = info.default_max_tokens or (adapter_default if required else info.max_output_tokens)
    if default is None:  # no output limit known: leave it to the provider (or the adapter's default)
        return Prepared(req, prompt, prompt, info)
    if info.max_output_tokens is not None:
        default = min(default, info.max_output_tokens)
    if window is not None:
        room = window - math.ceil(prompt * FILL_MARGIN)
        if default > room:
            if not required:
                return Prepared(req, prompt, prompt, info)
            default = max(room, min(default, window - prompt), 1)
    return Prepared(replace(req, max_tokens=default), prompt, prompt, info, filled=True)


class Routed(Protocol):
    """What the gate reads of a routing target (``byok.gateway.routing.Target``): its provider and model."""

    @property
    def provider(self) -> Any: ...  # kind, name

    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=Routed)


def prepare_targets(req: ChatRequest, targets: Sequence[R], catalog: Catalog) -> list[tuple[R, Prepared]]:
    """The request prepared for every target, as (target, `Prepared`) pairs; the targets are left as they are.

    The first target's refusal is raised; a later target that cannot take the request is dropped.
    """
    kept: list[tuple[R, Prepared]] = []
    for i, target in enumerate(targets):
        provider = target.provider
        info = catalog.lookup(provider.kind, target.model, provider.name)
        try:
            prepared = prepare_request(replace(req, model=target.model) if target.model != req.model else req,
                                       kind=provider.kind, model=target.model, info=info)
        except ContextLengthExceededError:
            if i == 0:
                raise
            continue
        kept.append((target, prepared))
    return kept


# -- the budgets' configuration, cached per handler snapshot ----------------------------------------


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


def load_book() -> Book:
    """Read overrides and budgets (synchronous ORM; two queries)."""
    from byok.models import Budget, CatalogOverride

    catalog = Catalog(file_entries(), list(CatalogOverride.objects.filter(enabled=True).order_by("id")))
    users: dict[int, list[BudgetRule]] = defaultdict(list)
    keys: dict[int, list[BudgetRule]] = defaultdict(list)
    for b in Budget.objects.filter(enabled=True).order_by("id"):
        rule = BudgetRule(b.pk, b.scope, b.period, b.token_limit, float(b.spend_limit) if b.spend_limit is not None else None)
        (users[b.user_id] if b.user_id is not None else keys[b.key_id]).append(rule)
    return Book(catalog, {k: tuple(v) for k, v in users.items()}, {k: tuple(v) for k, v in keys.items()})


def _at(ts: float) -> str:
    return datetime.fromtimestamp(ts, timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ")


class BudgetGate:
    """The handler's prompt-budget, cost and budget checks; reloads its `Book` whenever the handler's snapshot changes."""

    def __init__(self) -> None:
        self._snapshot: object | None = None
        self._book: Book | None = None

    async def book(self, snapshot: object) -> Book:
        if self._book is None or snapshot is not self._snapshot:
            book = await sync_to_async(load_book, thread_sensitive=True)()
            self._book, self._snapshot = book, snapshot
        return self._book

    def preload(self, snapshot: object, book: Book) -> None:
        """Take a book loaded together with the handler's snapshot (saves a trip to the ORM thread)."""
        self._book, self._snapshot = book, snapshot

    @property
    def current(self) -> Book:
        """The last book loaded (the file catalog alone before any)."""
        return self._book or Book(Catalog(file_entries()))

    async def admit(
        self, req: ChatRequest, targets: Sequence[R], *, user_id: int | None, state, snapshot: object, now: float,
    ) -> list[tuple[R, Prepared]]:
        """Prepare every target (max_tokens, context window), then check the user's budgets; raise before any upstream call."""
        book = await self.book(snapshot)
        prepared = prepare_targets(req, targets, book.catalog)
        rules = book.users.get(user_id, ()) if user_id is not None else ()
        if rules:
            first = prepared[0][1]
            prompt, info = first.prompt_tokens, first.info
            prompt_cost = float(info.prices_for(prompt)[0] * prompt / Decimal(1_000_000)) if info is not None and info.priced else 0.0
            for rule in rules:
                await self._check_user(state, rule, prompt, prompt_cost, now)
        return prepared

    @staticmethod
    async def _check_user(state, rule: BudgetRule, prompt: int, prompt_cost: float, now: float) -> None:
        status = await state.check_budget(rule.scope, token_limit=rule.token_limit, spend_limit=rule.spend_limit, period=rule.period)
        reason = status.reason
        if reason is None and rule.token_limit is not None and status.used_tokens + prompt > rule.token_limit:
            reason = "tokens"
        if reason is None and rule.spend_limit is not None and status.used_spend + prompt_cost > rule.spend_limit:
            reason = "spend"
        if reason is None:
            return
        period = "daily" if rule.period == "day" else "monthly"
        if reason == "tokens":
            what, limit, used = f"{period} token budget ({rule.token_limit} tokens)", rule.token_limit, status.used_tokens
        else:
            what, limit, used = f"{period} spend budget (${rule.spend_limit:g})", rule.spend_limit, status.used_spend
        raise BudgetExceededError(
            f"Your {what} is used up or would be exceeded by this request; it resets at {_at(status.reset_at)}.",
            retry_after=status.reset_at - now, period=rule.period, reason=reason, limit=limit, used=used,
        )

    def key_blocker(self, state):
        """For ``KeyPool.pick``: an async function giving a key's budget reset time if it is over budget, else None."""
        keys = self.current.keys

        async def blocked(key) -> float | None:
            until = None
            for rule in keys.get(key.id, ()):
                status = await state.check_budget(rule.scope, token_limit=rule.token_limit, spend_limit=rule.spend_limit, period=rule.period)
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

    async def spend(self, state, *, user_id: int | None, key_id: int | None, kind: str, usage: Usage, cost: Decimal | None) -> None:
        """Count a finished answer's tokens and cost against the user's and the key's budgets (each period once)."""
        tokens = usage.input_tokens + billable_output_tokens(kind, usage)
        if tokens <= 0 and not cost:
            return
        book = self.current
        rules = [*(book.users.get(user_id, ()) if user_id is not None else ()), *(book.keys.get(key_id, ()) if key_id is not None else ())]
        done: set[tuple[str, str]] = set()
        for rule in rules:
            if (rule.scope, rule.period) in done:
                continue
            done.add((rule.scope, rule.period))
            try:
                await state.spend(rule.scope, tokens=max(tokens, 0), cost=float(cost or 0), period=rule.period)
            except Exception:  # never fail an answer already given over accounting; say so loudly
                log.exception("could not count spend for %s (%s)", rule.scope, rule.period)


# -- audited budget mutations (admin and API) ------------------------------------------------------

BUDGET_FIELDS = ("user", "key", "period", "token_limit", "spend_limit", "enabled", "note")


def _validate_budget(values: dict[str, Any], *, partial: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in set(values) - set(BUDGET_FIELDS):
        errors[name] = ["Unknown or read-only field."]
    if "period" in values and values["period"] not in ("day", "month"):
        errors["period"] = ["Must be 'day' or 'month'."]
    if "token_limit" in values and values["token_limit"] is not None:
        v = values["token_limit"]
        if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
            errors["token_limit"] = ["Must be a positive integer or null."]
    if "spend_limit" in values and values["spend_limit"] is not None:
        try:
            if Decimal(str(values["spend_limit"])) <= 0:
                raise ValueError
        except Exception:
            errors["spend_limit"] = ["Must be a positive amount in USD or null."]
    if not partial and values.get("token_limit") is None and values.get("spend_limit") is None and "token_limit" not in errors:
        errors["token_limit"] = ["Set a token limit, a spend limit, or both."]
    if not partial and (values.get("user") is None) == (values.get("key") is None):
        errors["user"] = ["Give exactly one of user or key."]
    return errors


def _resolve_scope(values: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    from django.contrib.auth import get_user_model

    from byok.models import ApiKey

    out = dict(values)
    if values.get("user") is not None:
        user = values["user"]
        if not hasattr(user, "pk"):
            user = get_user_model().objects.filter(pk=user).first() if str(user).isdigit() else \
                get_user_model().objects.filter(username=user).first()
        if user is None:
            errors.setdefault("user", []).append("No such user.")
        out["user"] = user
    if values.get("key") is not None:
        key = values["key"]
        if not hasattr(key, "pk"):
            key = ApiKey.objects.filter(pk=key).first() if str(key).isdigit() else None
        if key is None:
            errors.setdefault("key", []).append("No such key.")
        out["key"] = key
    return out


def _budget_details(b) -> dict[str, Any]:
    return {
        "scope": b.scope, "period": b.period, "token_limit": b.token_limit,
        "spend_limit": str(b.spend_limit) if b.spend_limit is not None else None, "enabled": b.enabled,
    }


def create_budget(*, actor=None, **values: Any):
    """Create a budget (one audit event). ``user`` (id, username or user) or ``key`` (id or ApiKey), ``period``, limits."""
    from django.db import IntegrityError, transaction

    from byok import audit, registry
    from byok.audit import SYSTEM
    from byok.exceptions import ConflictError, InvalidConfigError
    from byok.models import Budget

    values.setdefault("period", "day")
    errors = _validate_budget(values, partial=False)
    resolved = _resolve_scope(values, errors) if not errors else values
    if errors:
        raise InvalidConfigError(errors)
    budget = Budget(**{k: v for k, v in resolved.items()})
    try:
        with transaction.atomic():
            budget.save()
            audit.record("budget.create", actor=actor or SYSTEM, target=budget, key=budget.key, details=_budget_details(budget))
            registry._announce(None)
    except IntegrityError:
        raise ConflictError(f"A {values['period']} budget for this {'user' if budget.user_id else 'key'} exists already.") from None
    return budget


def update_budget(budget_id, changes: dict[str, Any], *, actor=None):
    """Change a budget's limits, period, enabled flag or note (one audit event with before and after)."""
    from django.db import IntegrityError, transaction

    from byok import audit, registry
    from byok.audit import SYSTEM
    from byok.exceptions import ConflictError, InvalidConfigError
    from byok.models import Budget

    budget = get_budget(budget_id)
    errors = _validate_budget(changes, partial=True)
    for name in ("user", "key"):
        if name in changes:
            errors[name] = ["The scope of a budget cannot change; delete it and create another."]
    merged_tokens = changes.get("token_limit", budget.token_limit)
    merged_spend = changes.get("spend_limit", budget.spend_limit)
    if merged_tokens is None and merged_spend is None:
        errors.setdefault("token_limit", ["Set a token limit, a spend limit, or both."])
    if errors:
        raise InvalidConfigError(errors)
    before = _budget_details(budget)
    try:
        with transaction.atomic():
            budget = Budget.objects.select_for_update().get(pk=budget.pk)
            for name, value in changes.items():
                setattr(budget, name, value)
            budget.save()
            audit.record("budget.update", actor=actor or SYSTEM, target=budget, key=budget.key,
                         details={"fields": sorted(changes), "before": before, "after": _budget_details(budget)})
            registry._announce(None)
    except IntegrityError:
        raise ConflictError("A budget for this scope and period exists already.") from None
    return budget


def delete_budget(budget_id, *, actor=None) -> None:
    """Delete a budget (one audit event); its counters expire with their period."""
    from django.db import transaction

    from byok import audit, registry
    from byok.audit import SYSTEM

    budget = get_budget(budget_id)
    with transaction.atomic():
        audit.record("budget.delete", actor=actor or SYSTEM, target=budget, key=budget.key, details=_budget_details(budget))
        budget.delete()
        registry._announce(None)


def get_budget(budget_id):
    from byok.exceptions import NotFound
    from byok.models import Budget

    try:
        return Budget.objects.select_related("user", "key").get(pk=int(budget_id))
    except (Budget.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No budget with id {budget_id!r}.") from None


async def budget_rows(state, budgets: list[Any]) -> list[dict[str, Any]]:
    """Budgets as JSON-ready dicts with this period's usage from the shared state (for the API and admin)."""
    rows = []
    for b in budgets:
        status = await state.check_budget(
            b.scope, token_limit=b.token_limit, spend_limit=float(b.spend_limit) if b.spend_limit is not None else None,
            period=b.period,
        )
        rows.append({
            "id": b.pk, "scope": "user" if b.user_id is not None else "key", "user": b.user_id, "key": b.key_id,
            "period": b.period, "token_limit": b.token_limit,
            "spend_limit": str(b.spend_limit) if b.spend_limit is not None else None, "enabled": b.enabled, "note": b.note,
            "used_tokens": status.used_tokens, "used_spend": round(status.used_spend, 8),
            "exceeded": not status.ok, "resets_at": _at(status.reset_at),
        })
    return rows


# -- spend reports over the usage records -----------------------------------------------------------

SPEND_GROUPS = {
    "provider": "provider_name",
    "key": "key_fingerprint",
    "user": "user_id",
    "model": "model",
    "day": "day",
}


def spend_summary(queryset=None, *, by: tuple[str, ...] | list[str] = ("provider",), since=None, until=None) -> list[dict[str, Any]]:
    """Requests, tokens and spend (USD, as a string) per group of usage records, for ``GET /api/usage``.

    ``by``: any of provider, key, user, model, day. ``unpriced`` counts the
    records whose cost is unknown (their tokens are in the sums, their spend is not).
    """
    from django.db.models import Count, Q, Sum
    from django.db.models.functions import TruncDate

    from byok.models import UsageRecord

    unknown = [g for g in by if g not in SPEND_GROUPS]
    if unknown:
        raise ValueError(f"cannot group spend by {', '.join(unknown)}; choose from {', '.join(SPEND_GROUPS)}")
    qs = queryset if queryset is not None else UsageRecord.objects.all()
    if since is not None:
        qs = qs.filter(created_at__gte=since)
    if until is not None:
        qs = qs.filter(created_at__lt=until)
    if "day" in by:
        qs = qs.annotate(day=TruncDate("created_at"))
    fields = [SPEND_GROUPS[g] for g in by]
    rows = (
        qs.order_by().values(*fields)
        .annotate(requests=Count("id"), tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), spend=Sum("cost"),
                  unpriced=Count("id", filter=Q(cost__isnull=True)))
        .order_by(*fields)
    )
    out = []
    for r in rows:
        row = {g: r[SPEND_GROUPS[g]] for g in by}
        if "day" in row and row["day"] is not None:
            row["day"] = row["day"].isoformat()
        row.update(requests=r["requests"], tokens_in=r["tokens_in"] or 0, tokens_out=r["tokens_out"] or 0,
                   spend=format(Decimal(r["spend"] or 0).quantize(COST_QUANTUM), "f"), unpriced=r["unpriced"])
        out.append(row)
    return out
