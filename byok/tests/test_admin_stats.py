"""The admin's number formats and the dashboard's aggregation (byok.admin.formats, byok.admin.stats).

p95 is checked against a nearest-rank percentile computed in Python on both
databases, and against PostgreSQL's own ``percentile_disc`` there.
"""

from __future__ import annotations

import math
import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from itertools import count

import pytest

from byok.admin import formats, stats
from byok.models import UsageRecord

NOW = datetime(2026, 3, 10, 12, 30, tzinfo=UTC)
_ids = count()


def record(minutes_ago: float, provider: str = "openai", *, latency: float = 100.0, status: str = "ok", **fields):
    return UsageRecord.objects.create(
        created_at=NOW - timedelta(minutes=minutes_ago),
        request_id=f"req-{next(_ids)}",
        provider_name=provider,
        model=fields.pop("model", "gpt-4o"),
        status=status,
        latency_ms=latency,
        **fields,
    )


def nearest_rank_p95(values: list[float]) -> float:
    ordered = sorted(values)
    return ordered[math.ceil(0.95 * len(ordered)) - 1]


# -- formats -------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "text"),
    [(22.357187000125123, "22.4 ms"), (0, "0.0 ms"), (1234.56, "1,234.6 ms"), (None, "—"), (Decimal("5.05"), "5.0 ms")],
)
def test_milliseconds_have_one_decimal(value, text):
    assert formats.ms(value) == text


@pytest.mark.parametrize(
    ("value", "text"),
    [
        (Decimal("0.01234"), "$0.0123"),
        (Decimal("0.00001"), "<$0.0001"),
        (0, "$0.00"),
        (Decimal("1234.567"), "$1,234.57"),
        ("0.5", "$0.5000"),
        (None, "—"),
        (-2.5, "-$2.50"),
    ],
)
def test_money_carries_its_currency(value, text):
    assert formats.usd(value) == text


def test_token_counts_have_thousands_separators_and_axes_are_compact():
    assert formats.thousands(1234567) == "1,234,567" and formats.thousands(None) == "—"
    assert [formats.compact(v) for v in (0, 7, 950, 1200, 1_000_000, 3_450_000, 0.0123, 2.5)] == [
        "0",
        "7",
        "950",
        "1.2k",
        "1M",
        "3.5M",
        "0.012",
        "2.5",
    ]
    assert formats.percent(1, 8) == "12.5%" and formats.percent(0, 0) == "—"


def test_the_template_filters_are_the_formats():
    from django.template import Context, Template

    page = Template("{% load byok_format %}{{ a|ms }} {{ b|usd }} {{ c|thousands }}").render(
        Context({"a": 22.357, "b": Decimal("0.01234"), "c": 12345})
    )
    assert page == "22.4 ms $0.0123 12,345"


# -- aggregation -----------------------------------------------------------------------------------------


def test_spans_cover_their_window_in_buckets():
    hours = stats.SPANS["24h"].buckets(NOW)
    assert len(hours) == 24 and hours[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert hours[0] == datetime(2026, 3, 9, 13, tzinfo=UTC)
    days = stats.SPANS["30d"].buckets(NOW)
    assert len(days) == 30 and days[-1] == datetime(2026, 3, 10, tzinfo=UTC)
    week = stats.SPANS["7d"].buckets(NOW)
    assert len(week) == 42 and week[-1] == datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert week[0] == datetime(2026, 3, 3, 16, tzinfo=UTC)


@pytest.mark.django_db
def test_p95_is_the_nearest_rank_per_group():
    rng = random.Random(7)
    latencies = {
        "openai": [rng.uniform(50, 900) for _ in range(37)],
        "anthropic": [rng.uniform(10, 90) for _ in range(20)],
    }
    for provider, values in latencies.items():
        for i, value in enumerate(values):
            record(i, provider, latency=value)
    record(1, "tiny", latency=42.0)
    found = stats.p95_latency(UsageRecord.objects.all(), ("provider_name",))
    assert found == {
        ("openai",): pytest.approx(nearest_rank_p95(latencies["openai"])),
        ("anthropic",): pytest.approx(nearest_rank_p95(latencies["anthropic"])),
        ("tiny",): 42.0,
    }
    everything = latencies["openai"] + latencies["anthropic"] + [42.0]
    assert stats.p95_latency(UsageRecord.objects.all()) == {(): pytest.approx(nearest_rank_p95(everything))}


@pytest.mark.django_db
def test_p95_of_exact_ranks_and_ties():
    for i in range(1, 21):  # 20 values: rank ceil(19) = 19 -> 19.0
        record(i, "a", latency=float(i))
    for i in range(21):  # 21 values: rank ceil(19.95) = 20 -> 20.0 among ties
        record(i, "b", latency=5.0 if i < 18 else 20.0 + i)
    found = stats.p95_latency(UsageRecord.objects.all(), ("provider_name",))
    assert found[("a",)] == 19.0 and found[("b",)] == 39.0


@pytest.mark.django_db
def test_the_window_totals_and_series_match_the_records():
    record(10, "openai", latency=100, tokens_in=1000, tokens_out=200, cost=Decimal("0.0100"))
    record(20, "openai", latency=300, tokens_in=500, tokens_out=50, cost=Decimal("0.0050"))
    record(30, "openai", latency=900, status="error", error_code="upstream_error")
    record(100, "anthropic", latency=50, tokens_in=10, tokens_out=5)  # unpriced
    record(110, "anthropic", latency=70, status="cancelled", tokens_in=3)
    record(60 * 30, "openai", latency=5)  # 30 hours ago: outside 24 h, inside 7 d
    found = stats.usage(stats.SPANS["24h"], NOW)
    openai, anthropic = found.totals["openai"], found.totals["anthropic"]
    assert found.providers == ["openai", "anthropic"]
    assert (openai.requests, openai.errors, openai.tokens_in, openai.tokens_out) == (3, 1, 1500, 250)
    assert openai.spend == Decimal("0.015") and openai.unpriced == 1
    assert openai.p95_ms == 300.0  # successful requests only: the failed 900 ms one is not latency
    assert (anthropic.requests, anthropic.errors, anthropic.unpriced, anthropic.p95_ms) == (2, 0, 2, 50.0)
    assert found.overall.requests == 5 and found.overall.spend == Decimal("0.015")
    this_hour = datetime(2026, 3, 10, 12, tzinfo=UTC)
    assert found.series["openai"][this_hour].requests == 3 and found.series["openai"][this_hour].p95_ms == 300.0
    earlier = datetime(2026, 3, 10, 10, tzinfo=UTC)  # 100 and 110 minutes before 12:30
    assert found.series["anthropic"][earlier].requests == 2
    week = stats.usage(stats.SPANS["7d"], NOW)
    assert week.totals["openai"].requests == 4 and week.totals["openai"].p95_ms == 300.0
    four_hours = week.series["openai"]  # 4-hour buckets: 12:00-16:00 today, 04:00-08:00 yesterday
    assert four_hours[this_hour].requests == 3 and four_hours[this_hour].p95_ms == 300.0
    assert four_hours[datetime(2026, 3, 9, 4, tzinfo=UTC)].p95_ms == 5.0
    assert week.series["anthropic"][datetime(2026, 3, 10, 8, tzinfo=UTC)].requests == 2
    month = stats.usage(stats.SPANS["30d"], NOW).series["openai"]
    assert set(month) == {datetime(2026, 3, 10, tzinfo=UTC), datetime(2026, 3, 9, tzinfo=UTC)}


@pytest.mark.django_db
def test_an_empty_window_has_no_figures():
    found = stats.usage(stats.SPANS["30d"], NOW)
    assert found.providers == [] and found.overall.requests == 0 and found.overall.p95_ms is None


@pytest.mark.postgres
@pytest.mark.django_db
def test_p95_agrees_with_postgresqls_percentile_disc():
    from django.db import connection

    rng = random.Random(11)
    for provider in ("openai", "anthropic", "gemini"):
        for i in range(rng.randint(5, 60)):
            record(i, provider, latency=round(rng.lognormvariate(5, 1), 3))
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT provider_name, percentile_disc(0.95) WITHIN GROUP (ORDER BY latency_ms) "
            f"FROM {UsageRecord._meta.db_table} GROUP BY provider_name"
        )
        expected = {(name,): value for name, value in cursor.fetchall()}
    assert stats.p95_latency(UsageRecord.objects.all(), ("provider_name",)) == expected


# -- charts ------------------------------------------------------------------------------------------------


def test_axes_step_in_round_numbers():
    from byok.admin.charts import axis, nice_step

    assert [nice_step(v) for v in (0, 0.7, 3, 7, 12, 240, 1001)] == [1.0, 1.0, 5, 10, 20, 250, 2000]
    assert axis(0) == (1.0, 1) and axis(7) == (8, 4) and axis(40) == (40, 4) and axis(3) == (3, 3)
    assert axis(0.045) == (pytest.approx(0.06), 3)  # $0, $0.02, $0.04, $0.06


def test_a_chart_breaks_its_line_where_a_bucket_has_no_value_and_escapes_names():
    from byok.admin.charts import Series, line_chart

    buckets = stats.SPANS["24h"].buckets(NOW)[:6]
    values = [10.0, 20.0, None, 5.0, None, 40.0]
    svg = line_chart("p95 <ms>", buckets, [Series("a<b>", values)], label=lambda t: t.strftime("%H"))
    assert svg.startswith("<svg") and 'role="img"' in svg and "<title>p95 &lt;ms&gt;</title>" in svg
    assert svg.count("<polyline") == 1 and svg.count("<circle") == 2  # 10-20 a line; 5 and 40 lone dots
    assert "<ms>" not in svg and ">40<" in svg and ">30<" in svg  # grid lines at 0, 10 .. 40
    empty = line_chart("Requests", buckets, [], label=lambda t: t.strftime("%H"))
    assert "No requests in this period" in empty and "<polyline" not in empty
