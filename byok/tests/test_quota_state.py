"""The request gate's engine in the shared state (``reserve`` / ``settle``), on memory and Redis alike.

Rate slots of gateway keys and teams, and budget reservations: all or nothing,
visible in the budget's figures, returned on settle or when a lease ends.
Time is a fake clock; nothing sleeps. Redis tests fail (never skip) when Redis is down.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from byok.state import NANO, MemoryStateBackend, MemoryStore, StateBackend
from byok.state.quota import Hold, Rate
from byok.tests.state_fakes import T0, Factory, FakeClock, redis_factory, ts

MIDNIGHT = ts(2025, 6, 16)  # the end of T0's day


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Factory]:
    """Backends sharing one state (processes sharing a Redis), on ``clock``."""
    if request.param == "memory":
        store = MemoryStore()
        yield lambda: MemoryStateBackend(now=clock, store=store)
    else:
        async with redis_factory(clock) as factory:
            yield factory


@pytest.fixture
def state(make: Factory) -> StateBackend:
    return make()


def spend_hold(limit_usd: float, usd: float, scope: str = "user:1", period: str = "day") -> Hold:
    return Hold(scope, period, token_limit=None, spend_limit=limit_usd, tokens=0, nanos=round(usd * NANO))


def token_hold(limit: int, tokens: int, scope: str = "user:1", period: str = "day") -> Hold:
    return Hold(scope, period, token_limit=limit, spend_limit=None, tokens=tokens, nanos=0)


async def test_rate_scopes_count_requests_and_refuse_with_retry_at(state, clock):
    rate = Rate("gk:1", rpm=3, tpm=None)
    for _ in range(3):
        assert await state.reserve(rates=[rate], tokens=10, holds=[])
    got = await state.reserve(rates=[rate], tokens=10, holds=[])
    assert not got and (got.reason, got.scope, got.retry_at) == ("rpm", "gk:1", T0 + 61)
    assert await state.reserve(rates=[Rate("gk:2", rpm=3, tpm=None)], tokens=10, holds=[])  # another scope
    clock.advance(61)
    assert await state.reserve(rates=[rate], tokens=10, holds=[])


async def test_all_or_nothing_a_refusing_team_takes_no_slot_of_the_key(state):
    key, team = Rate("gk:1", rpm=5, tpm=None), Rate("team:1", rpm=1, tpm=None)
    assert await state.reserve(rates=[key, team], tokens=0, holds=[])
    for _ in range(3):
        got = await state.reserve(rates=[key, team], tokens=0, holds=[])
        assert (got.reason, got.scope) == ("rpm", "team:1")
    for _ in range(4):  # the key's own window counted one request, not four
        assert await state.reserve(rates=[key], tokens=0, holds=[])
    assert not await state.reserve(rates=[key], tokens=0, holds=[])


async def test_tpm_counts_the_estimate_and_settle_corrects_it(state):
    rate = Rate("gk:1", rpm=None, tpm=100)
    got = await state.reserve(rates=[rate], tokens=90, holds=[])
    assert not await state.reserve(rates=[rate], tokens=20, holds=[])
    await state.settle(got.reservation, tokens=30, nanos=0)  # the answer used 30, not 90
    assert await state.reserve(rates=[rate], tokens=70, holds=[])
    never = await state.reserve(rates=[rate], tokens=101, holds=[])
    assert never.reason == "tpm" and never.retry_at is None


async def test_reservations_are_visible_and_settle_with_real_usage(state):
    first = await state.reserve(rates=[], tokens=0, holds=[spend_hold(1.0, 0.3)])
    second = await state.reserve(rates=[], tokens=0, holds=[spend_hold(1.0, 0.3)])
    status = await state.check_budget("user:1", token_limit=None, spend_limit=1.0, period="day")
    assert (status.used_spend, status.reserved_spend) == (0, pytest.approx(0.6))
    await state.settle(first.reservation, tokens=120, nanos=round(0.05 * NANO))
    await state.settle(second.reservation, tokens=0, nanos=0)  # a failure: the reservation returns
    status = await state.check_budget("user:1", token_limit=None, spend_limit=1.0, period="day")
    assert (status.used_tokens, status.used_spend, status.reserved_spend) == (120, pytest.approx(0.05), 0)
    assert status.reserved_tokens == 0 and status.ok


async def test_concurrent_reservations_never_exceed_the_budget(make):
    """50 requests from 5 'processes' at once against a budget that fits 10: exactly 10 reserved."""
    backends = [make() for _ in range(5)]
    results = await asyncio.gather(
        *(backends[i % 5].reserve(rates=[], tokens=0, holds=[spend_hold(1.0, 0.1)]) for i in range(50))
    )
    assert sum(bool(r) for r in results) == 10
    refused = [r for r in results if not r]
    assert {r.reason for r in refused} == {"spend"} and {r.retry_at for r in refused} == {MIDNIGHT}
    assert refused[0].reserved_nanos + refused[0].used_nanos == NANO


async def test_a_refusal_reports_the_budget_and_its_figures(state):
    await state.spend("user:1", tokens=50, cost=0.0, period="day")
    assert await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 30)])
    got = await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 30), spend_hold(5.0, 0.1, "gk:9")])
    assert not got and (got.reason, got.scope, got.limit) == ("tokens", "user:1", 100)
    assert (got.used_tokens, got.reserved_tokens, got.retry_at) == (50, 30, MIDNIGHT)
    # nothing of the refused request was held by the other budget
    status = await state.check_budget("gk:9", token_limit=None, spend_limit=5.0, period="day")
    assert status.reserved_spend == 0


async def test_a_lowered_limit_applies_to_the_next_reservation(state):
    await state.spend("user:1", tokens=0, cost=2.0, period="month")
    assert await state.reserve(rates=[], tokens=0, holds=[spend_hold(10.0, 0.5, period="month")])
    got = await state.reserve(rates=[], tokens=0, holds=[spend_hold(1.0, 0.0, period="month")])
    assert got.reason == "spend" and got.retry_at == ts(2025, 7, 1) and got.limit == 1.0


async def test_budget_refusal_wins_over_a_rate_refusal(state):
    assert await state.reserve(rates=[Rate("gk:1", rpm=1, tpm=None)], tokens=0, holds=[])
    got = await state.reserve(rates=[Rate("gk:1", rpm=1, tpm=None)], tokens=0, holds=[token_hold(5, 10)])
    assert got.reason == "tokens" and got.retry_at == MIDNIGHT  # the longer wait


async def test_an_unsettled_reservation_ends_with_its_lease(state, clock):
    assert await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 80)], lease_s=60)
    assert not await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 80)], lease_s=60)
    clock.advance(61)  # the process that held it is gone
    late = await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 80)], lease_s=60)
    assert late
    status = await state.check_budget("user:1", token_limit=100, spend_limit=None, period="day")
    assert status.reserved_tokens == 80


async def test_a_settle_after_the_lease_ended_adds_usage_without_returning_twice(state, clock):
    old = await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 80)], lease_s=60)
    clock.advance(61)
    new = await state.reserve(rates=[], tokens=0, holds=[token_hold(100, 80)], lease_s=60)
    await state.settle(old.reservation, tokens=10, nanos=0)
    status = await state.check_budget("user:1", token_limit=100, spend_limit=None, period="day")
    assert (status.used_tokens, status.reserved_tokens) == (10, 80)  # the new one still holds
    await state.settle(new.reservation, tokens=5, nanos=0)
    status = await state.check_budget("user:1", token_limit=100, spend_limit=None, period="day")
    assert (status.used_tokens, status.reserved_tokens) == (15, 0)


async def test_settle_counts_in_the_reservations_period_and_also_scopes(state, clock):
    clock.t = MIDNIGHT - 5
    got = await state.reserve(rates=[], tokens=0, holds=[token_hold(1000, 100)])
    clock.t = MIDNIGHT + 5
    await state.settle(got.reservation, tokens=40, nanos=7, also=[("apikey:3", "day")])
    clock.t = MIDNIGHT - 5
    yesterday = await state.check_budget("user:1", token_limit=None, spend_limit=None, period="day")
    clock.t = MIDNIGHT + 5
    key = await state.check_budget("apikey:3", token_limit=None, spend_limit=None, period="day")
    assert (yesterday.used_tokens, yesterday.reserved_tokens) == (40, 0)
    assert (key.used_tokens, key.used_spend) == (40, 7 / NANO)


async def test_nothing_to_reserve_is_an_empty_admission(state):
    got = await state.reserve(rates=[Rate("gk:1", rpm=None, tpm=None)], tokens=5, holds=[])
    assert got and got.reservation.empty
    await state.settle(got.reservation, tokens=5, nanos=0)  # nothing to do, no error
