"""Shared-state test helpers: a hand-moved clock, timestamps, and Redis backends under a throw-away prefix
(shared by test_state and test_quota_state; a test module never imports another test module).
"""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from typing import Any

import pytest
import redis.asyncio as aioredis

from byok.state import StateBackend
from byok.state.redis import RedisStateBackend

__all__ = ["REDIS_URL", "T0", "Factory", "FakeClock", "redis_factory", "ts"]

REDIS_URL = os.environ.get("BYOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
T0 = 1_749_999_600.0  # aligned to the hour (and so to the minute)


def ts(year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0) -> float:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC).timestamp()


class FakeClock:
    """A clock tests move by hand."""

    def __init__(self, t: float = T0) -> None:
        self.t = t

    def __call__(self) -> float:
        return self.t

    def advance(self, seconds: float) -> None:
        self.t += seconds


Factory = Callable[[], StateBackend]


@contextlib.asynccontextmanager
async def redis_factory(clock: FakeClock) -> AsyncIterator[Factory]:
    """Redis backends under a fresh random prefix, all closed and their keys deleted afterwards."""
    prefix = f"byok-test:{uuid.uuid4().hex}:"
    admin = aioredis.Redis.from_url(REDIS_URL, decode_responses=True, socket_connect_timeout=2)
    try:
        await admin.ping()
    except Exception as exc:
        await admin.aclose()
        pytest.fail(
            f"Redis is not reachable at {REDIS_URL} ({type(exc).__name__}: {exc}). "
            "The state tests need a running Redis: start one, or point BYOK_TEST_REDIS_URL at it.",
            pytrace=False,
        )
    made: list[RedisStateBackend] = []

    def factory(**options: Any) -> RedisStateBackend:
        made.append(RedisStateBackend(REDIS_URL, prefix=prefix, now=clock, **options))
        return made[-1]

    try:
        yield factory
    finally:
        for backend in made:
            await backend.close()
        keys = [k async for k in admin.scan_iter(match=f"{prefix}*")]
        if keys:
            await admin.delete(*keys)
        await admin.aclose()
