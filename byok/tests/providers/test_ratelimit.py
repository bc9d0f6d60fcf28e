"""The shared rate-limit header helpers (byok.providers.ratelimit)."""

from __future__ import annotations

from datetime import UTC, datetime
from email.utils import format_datetime

import httpx
import pytest

from byok.providers.ratelimit import int_header, parse_duration, retry_after_seconds, seconds_until

NOW = 1_700_000_000.0


def test_it_reads_retry_after_in_seconds():
    assert retry_after_seconds({"retry-after": "7"}) == 7.0


def test_it_reads_fractional_retry_after():
    assert retry_after_seconds({"retry-after": "1.5"}) == 1.5


def test_it_reads_retry_after_whatever_the_header_case():
    assert retry_after_seconds({"Retry-After": "3"}) == 3.0
    assert retry_after_seconds(httpx.Headers({"RETRY-AFTER": "4"})) == 4.0


def test_it_prefers_retry_after_ms_over_retry_after():
    assert retry_after_seconds({"Retry-After-Ms": "250", "Retry-After": "9"}) == 0.25


def test_it_falls_back_to_retry_after_when_retry_after_ms_is_junk():
    assert retry_after_seconds({"retry-after-ms": "soon", "retry-after": "2"}) == 2.0


def test_it_reads_retry_after_as_an_http_date():
    when = datetime.fromtimestamp(NOW + 30, tz=UTC)
    assert retry_after_seconds({"retry-after": format_datetime(when, usegmt=True)}, now=NOW) == pytest.approx(30.0)


def test_it_never_returns_a_negative_wait():
    past = datetime.fromtimestamp(NOW - 30, tz=UTC)
    assert retry_after_seconds({"retry-after": format_datetime(past, usegmt=True)}, now=NOW) == 0.0
    assert retry_after_seconds({"retry-after": "-5"}) == 0.0
    assert retry_after_seconds({"retry-after-ms": "-5"}) == 0.0


@pytest.mark.parametrize("value", ["", "soon", "nan", "inf", "Someday, 99 Foo 2024"])
def test_it_ignores_an_unreadable_retry_after(value):
    assert retry_after_seconds({"retry-after": value}) is None


def test_it_returns_none_without_retry_headers():
    assert retry_after_seconds({}) is None
    assert retry_after_seconds({"content-type": "application/json"}) is None


@pytest.mark.parametrize(
    ("text", "seconds"),
    [
        ("6m0s", 360.0),
        ("1s", 1.0),
        ("20ms", 0.02),
        ("1h2m3.5s", 3723.5),
        ("0.5s", 0.5),
        ("17ms", 0.017),
        ("1m30s", 90.0),
        ("2", 2.0),
        (" 3s ", 3.0),
    ],
)
def test_it_parses_openai_reset_durations(text, seconds):
    assert parse_duration(text) == pytest.approx(seconds)


@pytest.mark.parametrize("text", ["", "s", "abc", "1x", "5s later", "m1s", "1s2"])
def test_it_rejects_what_is_not_a_duration(text):
    assert parse_duration(text) is None


def test_it_turns_an_rfc3339_timestamp_into_seconds_from_now():
    assert seconds_until("2023-11-14T22:13:30Z", now=NOW) == pytest.approx(10.0)


def test_it_reads_timestamps_with_offsets_and_nanoseconds():
    assert seconds_until("2023-11-14T23:13:30.000000000+01:00", now=NOW) == pytest.approx(10.0)


def test_it_clamps_a_past_timestamp_at_zero():
    assert seconds_until("2001-01-01T00:00:00Z", now=NOW) == 0.0


@pytest.mark.parametrize("text", ["", "tomorrow", "2024-13-01T00:00:00Z"])
def test_it_ignores_an_unreadable_timestamp(text):
    assert seconds_until(text) is None


def test_it_reads_an_integer_header_whatever_the_case():
    headers = {"X-RateLimit-Remaining-Tokens": "149984"}
    assert int_header(headers, "x-ratelimit-remaining-tokens") == 149984
    assert int_header(httpx.Headers(headers), "x-ratelimit-remaining-tokens") == 149984


def test_it_returns_none_for_a_missing_or_non_integer_header():
    assert int_header({}, "x-ratelimit-remaining-tokens") is None
    assert int_header({"x-ratelimit-remaining-tokens": "lots"}, "x-ratelimit-remaining-tokens") is None
    assert int_header({"x-ratelimit-remaining-tokens": "1.5"}, "x-ratelimit-remaining-tokens") is None
