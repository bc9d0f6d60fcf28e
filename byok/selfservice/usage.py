"""A user's own usage over 24 h, 7 days or 30 days: totals, one point per time bucket, a table by day/model/key.

    data = own_usage(user, SPANS["7d"], now)    # only records whose user is ``user``
    as_json(data)                               # the body of GET /api/me/usage

The buckets and totals come from the dashboard's `byok.admin.stats.usage` over the user's
records alone (the same SQL on SQLite and PostgreSQL), summed over providers.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from django.db.models import Count, Sum

from byok.admin.stats import Span, Totals, usage
from byok.models import GatewayKey, UsageRecord

__all__ = ["OwnUsage", "as_json", "own_usage"]


@dataclass
class OwnUsage:
    span: Span
    since: datetime
    until: datetime
    totals: Totals
    points: list[tuple[datetime, Totals]]
    rows: list[dict[str, Any]]


def _add(into: Totals, part: Totals) -> None:
    into.requests += part.requests
    into.errors += part.errors
    into.tokens_in += part.tokens_in
    into.tokens_out += part.tokens_out
    into.spend += part.spend


def _day(value: datetime | str) -> str:
    return value[:10] if isinstance(value, str) else value.astimezone(UTC).date().isoformat()


def _rows(user, span: Span, since: datetime) -> list[dict[str, Any]]:
    """Requests, tokens and spend per UTC day, model and gateway key (None: the session or an API token)."""
    qs = span.annotate(UsageRecord.objects.filter(user=user, created_at__gte=since))
    groups = (
        qs.order_by()
        .values("day", "model", "gateway_key_id")
        .annotate(requests=Count("id"), tokens_in=Sum("tokens_in"), tokens_out=Sum("tokens_out"), spend=Sum("cost"))
    )
    keys = {k.pk: k for k in GatewayKey.objects.filter(user=user)}
    rows = []
    for g in groups:
        key = keys.get(g["gateway_key_id"])
        rows.append(
            {
                "day": _day(g["day"]),
                "model": g["model"],
                "key_id": key.pk if key else None,
                "key_prefix": key.prefix if key else None,
                "key_name": key.name if key else None,
                "requests": g["requests"],
                "tokens_in": g["tokens_in"] or 0,
                "tokens_out": g["tokens_out"] or 0,
                "spend": g["spend"] or Decimal(0),
            }
        )
    rows.sort(key=lambda r: (r["day"], r["requests"]), reverse=True)
    return rows


def own_usage(user, span: Span, now: datetime) -> OwnUsage:
    """``user``'s figures for ``span`` ending at ``now``."""
    figures = usage(span, now, UsageRecord.objects.filter(user=user))
    points = []
    for bucket in figures.buckets:
        total = Totals()
        for per_bucket in figures.series.values():
            if bucket in per_bucket:
                _add(total, per_bucket[bucket])
        points.append((bucket, total))
    return OwnUsage(span, figures.since, now, figures.overall, points, _rows(user, span, figures.since))


def _figures(t: Totals) -> dict[str, Any]:
    return {
        "requests": t.requests,
        "errors": t.errors,
        "tokens_in": t.tokens_in,
        "tokens_out": t.tokens_out,
        "spend_usd": float(t.spend),
    }


def as_json(data: OwnUsage) -> dict[str, Any]:
    return {
        "span": data.span.name,
        "from": data.since.isoformat(),
        "to": data.until.isoformat(),
        "bucket_hours": data.span.hours,
        "totals": _figures(data.totals),
        "series": [{"start": start.isoformat(), **_figures(t)} for start, t in data.points],
        "rows": [{**row, "spend_usd": float(row.pop("spend"))} for row in (dict(r) for r in data.rows)],
    }
