"""The dashboard's figures, aggregated by the database: requests, errors, p95 latency, tokens and spend.

Every figure is grouped by provider, and the series also by time bucket (an
hour for the last 24 h, four hours for 7 days, a day for 30 days): a bucket is
the UTC day plus the hour divided by the bucket's hours, so the same integer
expressions group on SQLite and PostgreSQL. Counts and sums are one GROUP BY; the
95th percentile of latency is a window query, because SQLite has no
percentile aggregate: each record is ranked by latency within its group, and
the record at rank ``ceil(0.95 * n)`` is the group's p95 (the nearest-rank
definition, which PostgreSQL's ``percentile_disc(0.95)`` also uses). The same
SQL runs on SQLite and PostgreSQL; only the chosen rows leave the database.

Latency percentiles cover successful requests (a refusal in 3 ms is not a
fast answer); errors are records with status ``error`` (a cancel is not one).
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

from django.db import connections
from django.db.models import Count, ExpressionWrapper, F, IntegerField, Q, QuerySet, Sum, Value, Window
from django.db.models.functions import Cast, ExtractHour, RowNumber, Substr, Trunc

from byok.models import UsageRecord


@dataclass(frozen=True)
class Span:
    """A dashboard window: how far back, and the width of one chart bucket."""

    name: str
    label: str
    length: timedelta
    hours: int  # per bucket: a divisor of 24

    @property
    def step(self) -> timedelta:
        return timedelta(hours=self.hours)

    def bucket_of(self, moment: datetime) -> datetime:
        """The start of the bucket holding ``moment`` (UTC)."""
        moment = moment.astimezone(UTC)
        return moment.replace(hour=moment.hour - moment.hour % self.hours, minute=0, second=0, microsecond=0)

    def buckets(self, now: datetime) -> list[datetime]:
        """The start of every bucket in the window, oldest first, the current (partial) one last."""
        last = self.bucket_of(now)
        count = int(self.length / self.step)
        return [last - self.step * i for i in range(count - 1, -1, -1)]

    def annotate(self, qs: QuerySet) -> QuerySet:
        """``qs`` with ``day`` (the UTC date) and ``block`` (hour // hours): together, the bucket.

        SQLite stores a moment as UTC text (``2026-03-10 12:30:05.123456``): the date and hour are read
        with ``substr``, in C, instead of Django's date functions, which SQLite runs as Python callbacks
        once per row (measured: they made the 30-day figures several times slower).
        """
        if connections[qs.db].vendor == "sqlite":
            day: Any = Substr("created_at", 1, 10)
            hour: Any = Cast(Substr("created_at", 12, 2), IntegerField())
        else:
            day = Trunc("created_at", "day", tzinfo=UTC)
            hour = Cast(ExtractHour("created_at", tzinfo=UTC), IntegerField())
        return qs.annotate(day=day, block=ExpressionWrapper(hour / Value(self.hours), output_field=IntegerField()))

    def start(self, day: datetime | str, block: int) -> datetime:
        """The bucket's start from the database's ``day`` (a datetime, or SQLite's ``YYYY-MM-DD``) and ``block``."""
        if isinstance(day, str):
            day = datetime.fromisoformat(day).replace(tzinfo=UTC)
        return day.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0) + self.step * block


SPANS = {
    "24h": Span("24h", "last 24 hours", timedelta(hours=24), 1),
    "7d": Span("7d", "last 7 days", timedelta(days=7), 4),
    "30d": Span("30d", "last 30 days", timedelta(days=30), 24),
}
DEFAULT_SPAN = "24h"


@dataclass
class Totals:
    """One provider's (or everyone's) figures over a window or a bucket."""

    requests: int = 0
    errors: int = 0
    tokens_in: int = 0
    tokens_out: int = 0
    spend: Decimal = Decimal(0)
    unpriced: int = 0
    p95_ms: float | None = None

    @property
    def tokens(self) -> int:
        return self.tokens_in + self.tokens_out


@dataclass
class Usage:
    """A window's figures: totals per provider, and per provider per bucket (the charts)."""

    span: Span
    since: datetime
    buckets: list[datetime]
    providers: list[str]
    totals: dict[str, Totals] = field(default_factory=dict)
    series: dict[str, dict[datetime, Totals]] = field(default_factory=dict)
    overall: Totals = field(default_factory=Totals)


def _sums(qs: QuerySet, fields: Sequence[str]) -> Iterable[dict[str, Any]]:
    return (
        qs.order_by()
        .values(*fields)
        .annotate(
            requests=Count("id"),
            errors=Count("id", filter=Q(status=UsageRecord.Status.ERROR)),
            tokens_in=Sum("tokens_in"),
            tokens_out=Sum("tokens_out"),
            spend=Sum("cost"),
            unpriced=Count("id", filter=Q(cost__isnull=True)),
        )
    )


def p95_latency(qs: QuerySet, fields: Sequence[str] = ()) -> dict[tuple, float]:
    """The nearest-rank 95th percentile of ``latency_ms`` per group of ``fields`` (annotations allowed).

    One query: a window ranks each record by latency within its group and
    counts the group; the row whose rank is ``ceil(0.95 * n)``, computed in
    integers as ``(95 n + 99) // 100``, is the answer. Keys are tuples of the
    group's values (``()`` for no grouping).
    """
    partition = [F(name) for name in fields] or None
    ranked = qs.order_by().annotate(
        rank=Window(RowNumber(), partition_by=partition, order_by=[F("latency_ms").asc(), F("id").asc()]),
        size=Window(Count("id"), partition_by=partition),
    )
    target = ExpressionWrapper((F("size") * 95 + 99) / 100, output_field=IntegerField())
    rows = ranked.annotate(target=target).filter(rank=F("target")).values_list(*fields, "latency_ms")
    return {tuple(row[:-1]): float(row[-1]) for row in rows}


def _fill(totals: Totals, row: dict[str, Any]) -> None:
    totals.requests += row["requests"]
    totals.errors += row["errors"]
    totals.tokens_in += row["tokens_in"] or 0
    totals.tokens_out += row["tokens_out"] or 0
    totals.spend += row["spend"] or Decimal(0)
    totals.unpriced += row["unpriced"]


def usage(span: Span, now: datetime, queryset: QuerySet | None = None) -> Usage:
    """Figures for ``span`` ending at ``now``: four queries whatever the number of records."""
    buckets = span.buckets(now)
    since = buckets[0]
    qs = (queryset if queryset is not None else UsageRecord.objects.all()).filter(created_at__gte=since)
    result = Usage(span=span, since=since, buckets=buckets, providers=[])
    for row in _sums(span.annotate(qs), ("provider_name", "day", "block")):
        name, bucket = row["provider_name"] or "(none)", span.start(row["day"], row["block"])
        _fill(result.series.setdefault(name, {}).setdefault(bucket, Totals()), row)
        _fill(result.totals.setdefault(name, Totals()), row)
        _fill(result.overall, row)
    ok = qs.filter(status=UsageRecord.Status.OK)
    for (name, day, block), value in p95_latency(span.annotate(ok), ("provider_name", "day", "block")).items():
        bucket = span.start(day, block)
        result.series.setdefault(name or "(none)", {}).setdefault(bucket, Totals()).p95_ms = value
    for (name,), value in p95_latency(ok, ("provider_name",)).items():
        result.totals.setdefault(name or "(none)", Totals()).p95_ms = value
    result.overall.p95_ms = p95_latency(ok).get(())
    result.providers = sorted(result.totals, key=lambda n: (-result.totals[n].requests, n))
    return result
