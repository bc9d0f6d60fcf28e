"""Retry policy as small pure functions: how long to wait, and whether to try again."""

from __future__ import annotations

from collections.abc import Callable

from byok.exceptions import ByokError, ClientError, KeyFaultError, RateLimitError

__all__ = ["MAX_RETRY_AFTER_S", "backoff_delay", "is_retryable", "rate_limit_until"]

BASE_DELAY_S = 0.25
MAX_DELAY_S = 8.0
# A provider may ask for minutes; a request waits at most this long for one retry.
MAX_RETRY_AFTER_S = 30.0
# A 429 without any reset hint cools the key down this long.
DEFAULT_COOLDOWN_S = 5.0


def backoff_delay(retry: int, *, retry_after: float | None = None, rand: Callable[[], float]) -> float:
    """Seconds to wait before retry number `retry` (1, 2, …): exponential with full jitter,
    never shorter than the provider's Retry-After, capped at MAX_RETRY_AFTER_S."""
    exp = min(MAX_DELAY_S, BASE_DELAY_S * (2 ** (retry - 1)))
    delay = exp / 2 + rand() * exp / 2
    if retry_after is not None:
        delay = max(delay, retry_after)
    return min(delay, MAX_RETRY_AFTER_S)


def is_retryable(exc: ByokError) -> bool:
    """Transient upstream trouble is retried; key faults and client errors are not."""
    if isinstance(exc, (KeyFaultError, ClientError)):
        return False
    return bool(exc.retryable)


def rate_limit_until(exc: RateLimitError, now: float) -> float:
    """When a rate-limited key or group may be used again."""
    wait = exc.retry_after if exc.retry_after is not None else DEFAULT_COOLDOWN_S
    return now + max(0.0, wait)
