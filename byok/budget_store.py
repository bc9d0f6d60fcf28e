"""The budgets' rows: read for the gate, changed audited (admin and API), reported with their usage.

    book = load_book()                                    # catalog overrides + enabled budgets, for BudgetGate
    budget = create_budget(actor=actor, user="carol", token_limit=100_000, period="day")
    rows = spend_summary(by=("provider", "day"))          # GET /api/usage's spend figures

The ORM side of ``byok.budgets`` (the gate itself is pure). Every change is one
``audited_change``: one audit event, every process told after commit.
"""

from __future__ import annotations

from collections import defaultdict
from decimal import Decimal
from typing import Any

from django.contrib.auth import get_user_model
from django.db.models import Count, Q, Sum
from django.db.models.functions import TruncDate

from byok.audit import Actor
from byok.budgets import Book, BudgetRule, reset_time
from byok.catalog import COST_QUANTUM
from byok.catalog_overrides import load_catalog
from byok.changes import audited_change
from byok.exceptions import ConflictError, InvalidConfigError, NotFound
from byok.models import ApiKey, Budget, UsageRecord

__all__ = [
    "BUDGET_FIELDS",
    "budget_rows",
    "create_budget",
    "delete_budget",
    "figures",
    "get_budget",
    "load_book",
    "spend_summary",
    "update_budget",
]


def load_book() -> Book:
    """Read overrides and budgets (synchronous ORM; two queries)."""
    catalog = load_catalog()
    users: dict[int, list[BudgetRule]] = defaultdict(list)
    keys: dict[int, list[BudgetRule]] = defaultdict(list)
    for b in Budget.objects.filter(enabled=True).order_by("id"):
        rule = BudgetRule(
            b.pk, b.scope, b.period, b.token_limit, float(b.spend_limit) if b.spend_limit is not None else None
        )
        (users[b.user_id] if b.user_id is not None else keys[b.key_id]).append(rule)  # type: ignore[index]  # one of the two is set
    return Book(catalog, {k: tuple(v) for k, v in users.items()}, {k: tuple(v) for k, v in keys.items()})


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
    if (
        not partial
        and values.get("token_limit") is None
        and values.get("spend_limit") is None
        and "token_limit" not in errors
    ):
        errors["token_limit"] = ["Set a token limit, a spend limit, or both."]
    if not partial and (values.get("user") is None) == (values.get("key") is None):
        errors["user"] = ["Give exactly one of user or key."]
    return errors


def _resolve_scope(values: dict[str, Any], errors: dict[str, list[str]]) -> dict[str, Any]:
    out = dict(values)
    if values.get("user") is not None:
        user = values["user"]
        if not hasattr(user, "pk"):
            user = (
                get_user_model().objects.filter(pk=user).first()
                if str(user).isdigit()
                else get_user_model().objects.filter(username=user).first()
            )
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
        "scope": b.scope,
        "period": b.period,
        "token_limit": b.token_limit,
        "spend_limit": str(b.spend_limit) if b.spend_limit is not None else None,
        "enabled": b.enabled,
    }


def create_budget(*, actor: Actor | None = None, **values: Any) -> Budget:
    """Create a budget (one audit event). ``user`` (id, username or user)
    or ``key`` (id or ApiKey), ``period``, limits.
    """
    values.setdefault("period", "day")
    errors = _validate_budget(values, partial=False)
    resolved = _resolve_scope(values, errors) if not errors else values
    if errors:
        raise InvalidConfigError(errors)
    budget = Budget(**resolved)
    scope = "user" if budget.user_id else "key"
    with audited_change(
        actor, conflict=lambda: ConflictError(f"A {values['period']} budget for this {scope} exists already.")
    ) as change:
        budget.save()
        change.record("budget.create", target=budget, key=budget.key, details=_budget_details(budget))
    return budget


def update_budget(budget_id: Any, changes: dict[str, Any], *, actor: Actor | None = None) -> Budget:
    """Change a budget's limits, period, enabled flag or note (one audit event with before and after)."""
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
    with audited_change(
        actor, conflict=lambda: ConflictError("A budget for this scope and period exists already.")
    ) as change:
        budget = Budget.objects.select_for_update().get(pk=budget.pk)
        for name, value in changes.items():
            setattr(budget, name, value)
        budget.save()
        change.record(
            "budget.update",
            target=budget,
            key=budget.key,
            details={"fields": sorted(changes), "before": before, "after": _budget_details(budget)},
        )
    return budget


def delete_budget(budget_id: Any, *, actor: Actor | None = None) -> None:
    """Delete a budget (one audit event); its counters expire with their period."""
    budget = get_budget(budget_id)
    with audited_change(actor) as change:
        if Budget.objects.filter(pk=budget.pk).delete()[0]:
            change.record("budget.delete", target=budget, key=budget.key, details=_budget_details(budget))


def get_budget(budget_id: Any) -> Budget:
    try:
        return Budget.objects.select_related("user", "key").get(pk=int(budget_id))
    except (Budget.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No budget with id {budget_id!r}.") from None


async def figures(state, scope: str, period: str, token_limit: int | None, spend_limit: Any) -> dict[str, Any]:
    """One budget's use this period from the shared state: spent, reserved by requests in flight, remaining."""
    status = await state.check_budget(
        scope,
        token_limit=token_limit,
        spend_limit=float(spend_limit) if spend_limit is not None else None,
        period=period,
    )
    return {
        "used_tokens": status.used_tokens,
        "used_spend": round(status.used_spend, 8),
        "reserved_tokens": status.reserved_tokens,
        "reserved_spend": round(status.reserved_spend, 8),
        **remaining(token_limit, spend_limit, status),
        "exceeded": not status.ok,
        "resets_at": reset_time(status.reset_at),
    }


async def budget_rows(state, budgets: list[Any]) -> list[dict[str, Any]]:
    """Budgets as JSON-ready dicts with this period's usage from the shared state (for the API and admin)."""
    rows = []
    for b in budgets:
        rows.append(
            {
                "id": b.pk,
                "scope": "user" if b.user_id is not None else "key",
                "user": b.user_id,
                "key": b.key_id,
                "period": b.period,
                "token_limit": b.token_limit,
                "spend_limit": str(b.spend_limit) if b.spend_limit is not None else None,
                "enabled": b.enabled,
                "note": b.note,
                **await figures(state, b.scope, b.period, b.token_limit, b.spend_limit),
            }
        )
    return rows


def remaining(token_limit: int | None, spend_limit: Any, status) -> dict[str, Any]:
    """What is left of a budget's limits after what was spent and what requests in flight hold (never negative)."""
    tokens = max(token_limit - status.used_tokens - status.reserved_tokens, 0) if token_limit is not None else None
    spend = (
        round(max(float(spend_limit) - status.used_spend - status.reserved_spend, 0.0), 8)
        if spend_limit is not None
        else None
    )
    return {"remaining_tokens": tokens, "remaining_spend": spend}


# -- spend reports over the usage records -----------------------------------------------------------

SPEND_GROUPS = {
    "provider": "provider_name",
    "key": "key_fingerprint",
    "user": "user_id",
    "model": "model",
    "day": "day",
}


def spend_summary(
    queryset=None, *, by: tuple[str, ...] | list[str] = ("provider",), since=None, until=None
) -> list[dict[str, Any]]:
    """Requests, tokens and spend (USD, as a string) per group of usage records, for ``GET /api/usage``.

    ``by``: any of provider, key, user, model, day. ``unpriced`` counts the
    records whose cost is unknown (their tokens are in the sums, their spend is not).
    """

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
        qs.order_by()
        .values(*fields)
        .annotate(
            requests=Count("id"),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            spend=Sum("cost"),
            unpriced=Count("id", filter=Q(cost__isnull=True)),
        )
        .order_by(*fields)
    )
    out = []
    for r in rows:
        row = {g: r[SPEND_GROUPS[g]] for g in by}
        if "day" in row and row["day"] is not None:
            row["day"] = row["day"].isoformat()
        row.update(
            requests=r["requests"],
            tokens_in=r["tokens_in"] or 0,
            tokens_out=r["tokens_out"] or 0,
            spend=format(Decimal(r["spend"] or 0).quantize(COST_QUANTUM), "f"),
            unpriced=r["unpriced"],
        )
        out.append(row)
    return out
