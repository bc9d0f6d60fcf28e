"""byok.gateway.retry: backoff with full jitter, Retry-After honoured and capped, what is worth retrying."""

from __future__ import annotations

import pytest

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    MalformedResponseError,
    OverloadedError,
    RateLimitError,
    ServerError,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from byok.gateway.retry import (
    BASE_DELAY_S,
    DEFAULT_COOLDOWN_S,
    MAX_DELAY_S,
    MAX_RETRY_AFTER_S,
    backoff_delay,
    is_retryable,
    rate_limit_until,
)


@pytest.mark.parametrize("retry", [1, 2, 3, 4, 5, 6, 10])
def test_backoff_is_exponential_with_jitter_between_half_and_the_whole_step(retry):
    step = min(MAX_DELAY_S, BASE_DELAY_S * 2 ** (retry - 1))
    assert backoff_delay(retry, rand=lambda: 0.0) == pytest.approx(step / 2)
    assert backoff_delay(retry, rand=lambda: 1.0) == pytest.approx(step)
    assert step / 2 <= backoff_delay(retry, rand=lambda: 0.37) <= step


def test_backoff_grows_then_stops_at_the_cap():
    delays = [backoff_delay(n, rand=lambda: 1.0) for n in range(1, 12)]
    assert delays == sorted(delays) and delays[0] == BASE_DELAY_S and delays[-1] == MAX_DELAY_S


def test_retry_after_is_a_floor_and_is_capped():
    assert backoff_delay(1, retry_after=3.0, rand=lambda: 0.0) == 3.0
    assert backoff_delay(6, retry_after=0.1, rand=lambda: 1.0) == min(
        MAX_DELAY_S, BASE_DELAY_S * 32
    )  # shorter hint: jitter wins
    assert backoff_delay(1, retry_after=3600.0, rand=lambda: 0.0) == MAX_RETRY_AFTER_S


@pytest.mark.parametrize(
    "exc, retryable",
    [
        (ServerError(status=500), True),
        (OverloadedError(status=529), True),
        (RateLimitError(status=429), True),
        (UpstreamTimeout(), True),
        (UpstreamConnectionError(), True),
        (MalformedResponseError(), True),
        (AuthError(status=401), False),
        (KeyQuotaError(status=402), False),
        (BadRequestError(status=400), False),
    ],
)
def test_transient_trouble_is_retried_key_faults_and_client_errors_are_not(exc, retryable):
    assert is_retryable(exc) is retryable


def test_a_rate_limit_cools_down_for_its_retry_after_or_the_default():
    assert rate_limit_until(RateLimitError(retry_after=12.5), now=1000.0) == 1012.5
    assert rate_limit_until(RateLimitError(), now=1000.0) == 1000.0 + DEFAULT_COOLDOWN_S
    assert rate_limit_until(RateLimitError(retry_after=-4), now=1000.0) == 1000.0  # a reset in the past: usable now
