"""GET /api/usage: totals, latency percentiles and error counts per group, over a time range."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
from django.db import connection

from byok.api.views_audit import percentile
from byok.models import UsageRecord

pytestmark = pytest.mark.django_db

DAY1 = datetime(2025, 3, 1, 10, 0, tzinfo=UTC)
DAY2 = datetime(2025, 3, 2, 23, 30, tzinfo=UTC)


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


def usage(**kw) -> UsageRecord:
    values = {
        "request_id": uuid.uuid4().hex,
        "created_at": DAY1,
        "provider_name": "openai",
        "key_fingerprint": "fp-a",
        "key_hint": "sk-…aaaa",
        "model": "gpt-4o",
        "interface": "openai",
        "status": "ok",
        "attempts": 1,
        "tokens_in": 10,
        "tokens_out": 5,
        "latency_ms": 100.0,
    }
    values.update(kw)
    return UsageRecord.objects.create(**values)


@pytest.fixture
def rows(alice, bob):
    made = [
        usage(user=alice, latency_ms=10, ttft_ms=4, stream=True, cost=Decimal("0.001")),
        usage(user=alice, latency_ms=20, cost=Decimal("0.002")),
        usage(user=bob, latency_ms=30, key_fingerprint="fp-b", key_hint="sk-…bbbb"),
        usage(
            user=bob,
            latency_ms=40,
            status="error",
            error_code="upstream_timeout",
            attempts=3,
            tokens_out=0,
            created_at=DAY2,
        ),
        usage(
            user=None,
            latency_ms=100,
            provider_name="anthropic",
            key_fingerprint="fp-c",
            key_hint="sk-ant-…cccc",
            model="claude",
            status="error",
            error_code="upstream_failed",
            attempts=2,
            created_at=DAY2,
        ),
        usage(user=alice, latency_ms=50, status="cancelled", created_at=DAY2, tokens_in=7, tokens_out=1),
    ]
    return made


def report(client, **params) -> dict:
    response = client.get("/api/usage", params)
    assert response.status_code == 200, response.content
    return response.json()


def group(body, key):
    [found] = [g for g in body["groups"] if g["key"] == key]
    return found


def test_totals_and_percentiles(alice_client, rows):
    body = report(alice_client)
    assert body["group_by"] == "provider" and body["from"] is None and body["to"] is None
    totals = body["totals"]
    assert totals["requests"] == 6 and totals["ok"] == 3 and totals["errors"] == 2 and totals["cancelled"] == 1
    assert totals["error_codes"] == {"upstream_failed": 1, "upstream_timeout": 1}
    assert totals["tokens_in"] == 10 * 5 + 7 and totals["tokens_out"] == 5 * 4 + 0 + 1
    assert totals["attempts"] == 1 + 1 + 1 + 3 + 2 + 1
    assert totals["cost"] == "0.00300000"
    lat = totals["latency_ms"]  # over 10, 20, 30, 40, 50, 100
    assert lat["p50"] == pytest.approx(35.0) and lat["p95"] == pytest.approx(87.5) and lat["p99"] == pytest.approx(97.5)
    assert lat["max"] == 100 and lat["mean"] == pytest.approx(250 / 6)
    assert totals["ttft_ms"] == {"p50": 4.0, "p95": 4.0, "p99": 4.0, "mean": 4.0, "max": 4.0}
    openai, anthropic = group(body, "openai"), group(body, "anthropic")
    assert [g["key"] for g in body["groups"]] == ["anthropic", "openai"]
    assert openai["requests"] == 5 and openai["errors"] == 1 and openai["error_codes"] == {"upstream_timeout": 1}
    assert anthropic["requests"] == 1 and anthropic["cost"] is None and anthropic["ttft_ms"]["p50"] is None
    assert anthropic["latency_ms"]["p50"] == 100


def test_percentile_interpolates_like_percentile_cont():
    assert percentile([], 50) is None
    assert percentile([7], 99) == 7
    assert percentile([10, 20, 30, 40, 100], 50) == 30
    assert percentile([10, 20, 30, 40, 100], 95) == pytest.approx(88.0)
    assert percentile([10, 20, 30, 40, 100], 99) == pytest.approx(97.6)
    assert percentile([1, 2], 0) == 1 and percentile([1, 2], 100) == 2


@pytest.mark.postgres  # percentile_cont is PostgreSQL's
def test_percentiles_match_the_database_where_it_can_compute_them(alice_client, rows):
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT percentile_cont(ARRAY[0.5, 0.95, 0.99]) WITHIN GROUP (ORDER BY latency_ms) FROM byok_usagerecord"
        )
        p50, p95, p99 = cursor.fetchone()[0]
    lat = report(alice_client)["totals"]["latency_ms"]
    assert (lat["p50"], lat["p95"], lat["p99"]) == (pytest.approx(p50), pytest.approx(p95), pytest.approx(p99))


@pytest.mark.parametrize(
    "group_by, expected",
    [
        ("key", {"fp-a": 4, "fp-b": 1, "fp-c": 1}),
        ("user", {"alice": 3, "bob": 2, None: 1}),
        ("model", {"gpt-4o": 5, "claude": 1}),
        ("day", {"2025-03-01": 3, "2025-03-02": 3}),
        ("provider", {"openai": 5, "anthropic": 1}),
    ],
)
def test_group_by(alice_client, rows, group_by, expected):
    body = report(alice_client, group_by=group_by)
    assert {g["key"]: g["requests"] for g in body["groups"]} == expected
    assert sum(g["requests"] for g in body["groups"]) == body["totals"]["requests"]
    if group_by == "key":
        assert group(body, "fp-c")["provider"] == "anthropic" and group(body, "fp-c")["key_hint"] == "sk-ant-…cccc"
    if group_by == "user":
        assert body["groups"][-1]["key"] is None  # rows without a user come last


def test_time_range_and_filters(alice_client, rows):
    body = report(alice_client, **{"from": "2025-03-02", "to": "2025-03-03T00:00:00Z"})
    assert body["totals"]["requests"] == 3 and body["from"] == "2025-03-02T00:00:00Z"
    assert report(alice_client, **{"to": "2025-03-02"})["totals"]["requests"] == 3  # `to` is exclusive
    assert report(alice_client, **{"from": DAY1.isoformat()})["totals"]["requests"] == 6  # `from` is inclusive
    assert report(alice_client, provider="anthropic")["totals"]["requests"] == 1
    assert report(alice_client, user="bob")["totals"]["requests"] == 2
    assert report(alice_client, key="fp-a", status="ok")["totals"]["requests"] == 2
    assert report(alice_client, model="claude", interface="openai")["totals"]["requests"] == 1
    assert report(alice_client, interface="websocket")["totals"]["requests"] == 0
    assert report(alice_client, provider="")["totals"]["requests"] == 6  # a blank filter is no filter


@pytest.mark.parametrize(
    "params, field",
    [
        ({"group_by": "week"}, "group_by"),
        ({"group_by": ""}, "group_by"),
        ({"from": "yesterday"}, "from"),
        ({"from": ""}, "from"),
        ({"from": "2025-03-02", "to": "2025-03-01"}, "to"),
        ({"status": "fine"}, "status"),
        ({"user": "x" * 151}, "user"),
        ({"provider": "a\x00b"}, "provider"),
    ],
)
def test_invalid_queries_are_422(alice_client, params, field):
    response = alice_client.get("/api/usage", params)
    assert response.status_code == 422
    assert field in response.json()["errors"]


def test_usage_needs_staff(client, bob_client):
    assert client.get("/api/usage").status_code == 401
    assert bob_client.get("/api/usage").status_code == 403


def test_many_rows_in_one_pass(alice_client):
    start = DAY1
    UsageRecord.objects.bulk_create(
        [
            UsageRecord(
                request_id=f"r{i}",
                created_at=start + timedelta(minutes=i),
                provider_name="p",
                status="ok",
                latency_ms=float(i),
            )
            for i in range(1, 2501)
        ]
    )
    lat = report(alice_client, group_by="day")["totals"]["latency_ms"]
    assert lat["p50"] == pytest.approx(1250.5) and lat["p99"] == pytest.approx(percentile(list(range(1, 2501)), 99))
