"""Tests of the shared-state backends, every behaviour run against memory and Redis alike.

Redis comes from ``BYOK_TEST_REDIS_URL`` (default ``redis://127.0.0.1:6379/15``);
each test uses its own random key prefix and deletes its keys afterwards. If
Redis cannot be reached the Redis tests fail, on purpose: it is always there
on developer machines and in CI, and a silent skip would hide the backend.
Time is a fake clock; nothing sleeps.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator

import pytest

from byok.state import (
    MemoryStateBackend,
    MemoryStore,
    StateBackend,
    StateUnavailable,
    VersionWatcher,
    get_state_backend,
    group_scope,
    key_scope,
)
from byok.state.redis import RedisStateBackend
from byok.state.windows import calendar_period
from byok.tests.state_fakes import REDIS_URL, T0, Factory, FakeClock, redis_factory, ts


@pytest.fixture
def clock() -> FakeClock:
    return FakeClock()


@pytest.fixture(params=["memory", pytest.param("redis", marks=pytest.mark.redis)])
async def make(request: pytest.FixtureRequest, clock: FakeClock) -> AsyncIterator[Factory]:
    """A factory of backends that share one state (as processes sharing a Redis would), on ``clock``."""
    if request.param == "memory":
        store = MemoryStore()
        yield lambda: MemoryStateBackend(now=clock, store=store)
    else:
        async with redis_factory(clock) as factory:
            yield factory


@pytest.fixture
async def redis_state(clock: FakeClock) -> AsyncIterator[RedisStateBackend]:
    """One Redis backend, for what only Redis has."""
    async with redis_factory(clock) as factory:
        yield factory()  # type: ignore[misc]


@pytest.fixture
def state(make: Factory) -> StateBackend:
    return make()


# -- rate windows ---------------------------------------------------------------------------


async def test_rpm_limit_refuses_with_retry_at_and_resets_when_the_window_moves(state, clock):
    for _ in range(3):
        assert (await state.acquire("k", rpm=3, tpm=None, tokens=10)).ok
    got = await state.acquire("k", rpm=3, tpm=None, tokens=10)
    assert not got and got.reason == "rpm" and got.retry_at == T0 + 61
    clock.advance(60.5)
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=10)).reason == "rpm"
    clock.advance(0.5)
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=10)).ok


async def test_rpm_window_slides(state, clock):
    await state.acquire("k", rpm=3, tpm=None, tokens=0)
    await state.acquire("k", rpm=3, tpm=None, tokens=0)
    clock.advance(30)
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=0)).ok
    clock.advance(10)
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=0)).retry_at == T0 + 61
    clock.t = T0 + 61  # the first two leave; the one at +30 stays
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=0)).ok
    assert (await state.acquire("k", rpm=3, tpm=None, tokens=0)).ok
    got = await state.acquire("k", rpm=3, tpm=None, tokens=0)
    assert got.reason == "rpm" and got.retry_at == T0 + 30 + 61


async def test_tpm_counts_estimated_tokens(state, clock):
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=600)).ok
    got = await state.acquire("k", rpm=None, tpm=1000, tokens=500)
    assert got.reason == "tpm" and got.retry_at == T0 + 61
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=400)).ok
    never = await state.acquire("k2", rpm=None, tpm=1000, tokens=1001)
    assert never.reason == "tpm" and never.retry_at is None
    clock.advance(61)
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=1000)).ok


async def test_a_refusal_counts_nothing(state):
    assert (await state.acquire("k", rpm=1, tpm=100, tokens=200)).reason == "tpm"
    assert (await state.acquire("k", rpm=1, tpm=100, tokens=100)).ok


async def test_no_limits_means_unlimited_and_keys_are_independent(state):
    for _ in range(50):
        assert (await state.acquire("free", rpm=None, tpm=None, tokens=10_000)).ok
    assert (await state.acquire("a", rpm=1, tpm=None, tokens=1)).ok
    assert (await state.acquire("b", rpm=1, tpm=None, tokens=1)).ok
    assert not (await state.acquire("a", rpm=1, tpm=None, tokens=1)).ok


async def test_zero_rpm_never_fits(state):
    got = await state.acquire("k", rpm=0, tpm=None, tokens=1)
    assert got.reason == "rpm" and got.retry_at is None


async def test_bad_arguments_are_rejected(state):
    with pytest.raises(ValueError):
        await state.acquire("k", rpm=1, tpm=1, tokens=-1)
    with pytest.raises(ValueError):
        await state.acquire("k", rpm=1, tpm=1, tokens=1, quota=10)


# -- quota windows -----------------------------------------------------------------------


async def test_quota_window_resets_on_time(state, clock):
    q = {"rpm": None, "tpm": None, "quota": 1000, "quota_window_s": 3600}
    clock.advance(100)
    assert (await state.acquire("k", tokens=800, **q)).ok
    got = await state.acquire("k", tokens=300, **q)
    assert got.reason == "quota" and got.retry_at == T0 + 3600
    clock.t = T0 + 3599.9
    assert (await state.acquire("k", tokens=300, **q)).reason == "quota"
    clock.t = T0 + 3600
    assert (await state.acquire("k", tokens=1000, **q)).ok
    assert (await state.acquire("k", tokens=1, **q)).retry_at == T0 + 7200
    assert (await state.acquire("k2", tokens=1001, **q)).retry_at is None


async def test_refusal_reason_is_the_limit_that_keeps_the_request_out_longest(state, clock):
    assert (await state.acquire("k", rpm=1, tpm=None, tokens=100, quota=100, quota_window_s=3600)).ok
    got = await state.acquire("k", rpm=1, tpm=None, tokens=1, quota=100, quota_window_s=3600)
    assert got.reason == "quota" and got.retry_at == T0 + 3600
    await state.cooldown(key_scope("j"), T0 + 10)
    assert (await state.acquire("j", rpm=None, tpm=None, tokens=1)).reason == "cooldown"
    await state.acquire("x", rpm=1, tpm=None, tokens=1)
    await state.cooldown(key_scope("x"), T0 + 10)
    got = await state.acquire("x", rpm=1, tpm=None, tokens=1)
    assert got.reason == "rpm" and got.retry_at == T0 + 61


# -- record_tokens -------------------------------------------------------------------------


async def test_record_tokens_corrects_tpm_both_ways(state, clock):
    got = await state.acquire("k", rpm=None, tpm=1000, tokens=500)
    clock.advance(2)
    await state.record_tokens("k", +300, at=got.at)  # the answer was longer than estimated
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=300)).reason == "tpm"
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=200)).ok
    await state.record_tokens("k", -600, at=got.at)  # ...or shorter
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=600)).ok


async def test_record_tokens_corrects_the_quota(state, clock):
    q = {"rpm": None, "tpm": None, "quota": 1000, "quota_window_s": 3600}
    got = await state.acquire("k", tokens=900, **q)
    await state.record_tokens("k", -500, at=got.at)
    assert (await state.acquire("k", tokens=600, **q)).ok
    await state.record_tokens("k", +1)  # defaults to now
    assert (await state.acquire("k", tokens=0, **q)).reason == "quota"


async def test_record_tokens_for_an_ended_window_is_dropped(state, clock):
    got = await state.acquire("k", rpm=None, tpm=1000, tokens=100, quota=1000, quota_window_s=60)
    clock.advance(61)
    await state.record_tokens("k", +5000, at=got.at)
    assert (await state.acquire("k", rpm=None, tpm=1000, tokens=1000, quota=1000, quota_window_s=60)).ok


async def test_clear_quota_forgets_the_window_count_and_nothing_else(state, clock):
    q = {"rpm": None, "tpm": None, "quota": 3, "quota_window_s": 300}
    for _ in range(3):
        assert (await state.acquire("k", tokens=1, **q)).ok
    assert (await state.acquire("other", tokens=3, **q)).ok
    assert (await state.acquire("k", tokens=1, **q)).reason == "quota"
    await state.clear_quota("k")
    await state.clear_quota("never-counted")
    assert (await state.acquire("k", tokens=3, **q)).ok
    assert (await state.acquire("other", tokens=1, **q)).reason == "quota"


# -- cooldowns -------------------------------------------------------------------------------


async def test_cooldown_extends_and_never_shortens(state, clock):
    g = group_scope("org-1")
    assert await state.cooldown(g, T0 + 30) == T0 + 30
    assert await state.cooldown(g, T0 + 10) == T0 + 30
    assert await state.cooldown_until([g]) == T0 + 30
    assert await state.cooldown(g, T0 + 50.25) == T0 + 50.25
    assert await state.cooldown_until([key_scope("x"), g]) == T0 + 50.25
    clock.advance(50.25)
    assert await state.cooldown_until([g]) is None
    assert await state.cooldown_until([]) is None


async def test_group_cooldown_refuses_every_key_of_the_group(state, clock):
    g = group_scope("org-1")
    await state.cooldown(g, T0 + 20)
    for key in ("a", "b"):
        got = await state.acquire(key, rpm=None, tpm=None, tokens=1, groups=[g])
        assert got.reason == "cooldown" and got.retry_at == T0 + 20
    assert (await state.acquire("c", rpm=None, tpm=None, tokens=1, groups=[group_scope("org-2")])).ok
    assert (await state.acquire("a", rpm=None, tpm=None, tokens=1)).ok  # not asked about the group
    clock.advance(20)
    assert (await state.acquire("a", rpm=None, tpm=None, tokens=1, groups=[g])).ok


async def test_key_cooldown_applies_without_naming_it_and_can_be_cleared(state):
    await state.cooldown(key_scope("k"), T0 + 300)
    got = await state.acquire("k", rpm=None, tpm=None, tokens=1)
    assert got.reason == "cooldown" and got.retry_at == T0 + 300
    await state.clear_cooldown(key_scope("k"))
    assert await state.cooldown_until([key_scope("k")]) is None
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=1)).ok


async def test_a_cooldown_in_the_past_changes_nothing(state):
    assert await state.cooldown(group_scope("g"), T0 - 5) == T0 - 5
    assert await state.cooldown_until([group_scope("g")]) is None


# -- steering on remaining headers --------------------------------------------------------


async def test_steers_away_when_no_requests_remain(state, clock):
    await state.note_remaining("k", remaining_requests=0, remaining_tokens=None, reset_at=T0 + 5)
    got = await state.acquire("k", rpm=None, tpm=None, tokens=1)
    assert got.reason == "steer" and got.retry_at == T0 + 5
    clock.advance(5)
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=1)).ok


async def test_steering_counts_down_from_the_remaining_headers(state):
    await state.note_remaining("k", remaining_requests=2, remaining_tokens=100, reset_at=T0 + 9)
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=150)).reason == "steer"
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=50)).ok
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=60)).reason == "steer"  # 50 left
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=10)).ok
    got = await state.acquire("k", rpm=None, tpm=None, tokens=0)  # no requests left
    assert got.reason == "steer" and got.retry_at == T0 + 9


async def test_a_fresh_or_expired_note_lifts_steering(state):
    await state.note_remaining("k", remaining_requests=0, remaining_tokens=0, reset_at=T0 + 60)
    await state.note_remaining("k", remaining_requests=10, remaining_tokens=None, reset_at=T0 + 60)
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=1)).ok
    await state.note_remaining("k", remaining_requests=0, remaining_tokens=None, reset_at=T0 - 1)
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=1)).ok
    await state.note_remaining("k", remaining_requests=0, remaining_tokens=None, reset_at=None)
    assert (await state.acquire("k", rpm=None, tpm=None, tokens=1)).ok


# -- budgets -------------------------------------------------------------------------------


async def test_daily_budget_counts_and_resets_at_utc_midnight(state, clock):
    clock.t = ts(2025, 3, 31, 23, 59)
    spent = await state.spend("user:1", tokens=100, cost=0.1, period="day")
    assert (spent.used_tokens, spent.reset_at) == (100, ts(2025, 4, 1))
    spent = await state.spend("user:1", tokens=40, cost=0.2, period="day")
    assert spent.used_tokens == 140 and spent.used_spend == pytest.approx(0.3)
    status = await state.check_budget("user:1", token_limit=150, spend_limit=None, period="day")
    assert status.ok and status.used_tokens == 140 and status.reset_at == ts(2025, 4, 1)
    status = await state.check_budget("user:1", token_limit=None, spend_limit=0.3, period="day")
    assert not status.ok and status.reason == "spend"  # 0.1 + 0.2 is exactly 0.3 here
    await state.spend("user:1", tokens=10, cost=0, period="day")
    status = await state.check_budget("user:1", token_limit=150, spend_limit=1.0, period="day")
    assert not status.ok and status.reason == "tokens"
    assert (await state.check_budget("user:2", token_limit=1, spend_limit=1, period="day")).ok
    clock.t = ts(2025, 4, 1)
    status = await state.check_budget("user:1", token_limit=150, spend_limit=0.3, period="day")
    assert status.ok and status.used_tokens == 0 and status.used_spend == 0 and status.reset_at == ts(2025, 4, 2)


async def test_monthly_budget_resets_on_the_first(state, clock):
    clock.t = ts(2025, 12, 31, 12)
    await state.spend("key:7", tokens=1000, cost=2.5, period="month")
    await state.spend("key:7", tokens=5, cost=0.01, period="day")  # days and months are apart
    status = await state.check_budget("key:7", token_limit=1000, spend_limit=None, period="month")
    assert not status.ok and status.used_spend == 2.5 and status.reset_at == ts(2026, 1, 1)
    clock.t = ts(2026, 1, 1)
    status = await state.check_budget("key:7", token_limit=1000, spend_limit=None, period="month")
    assert status.ok and status.used_tokens == 0 and status.reset_at == ts(2026, 2, 1)


def test_calendar_periods():
    assert calendar_period(ts(2024, 2, 29, 23, 59, 59), "day") == ("2024-02-29", ts(2024, 3, 1))
    assert calendar_period(ts(2024, 2, 1), "month") == ("2024-02", ts(2024, 3, 1))
    assert calendar_period(ts(2024, 12, 31, 23), "month") == ("2024-12", ts(2025, 1, 1))
    with pytest.raises(ValueError):
        calendar_period(T0, "week")


# -- configuration version ----------------------------------------------------------------


async def test_version_bump_is_seen_by_a_second_instance(make):
    a, b = make(), make()
    assert await b.version() == 0
    assert await a.bump_version() == 1
    assert await b.version() == 1
    assert await b.bump_version() == 2
    assert await a.version() == 2


async def test_version_watcher_polls_at_most_every_max_age(make):
    a, b = make(), make()
    mono = FakeClock(100.0)
    calls = 0
    real_version = b.version

    async def counting_version() -> int:
        nonlocal calls
        calls += 1
        return await real_version()

    b.version = counting_version
    watcher = VersionWatcher(b, max_age_s=0.5, now=mono)
    assert await watcher.changed()  # first look: nothing known yet
    assert not await watcher.changed()
    await a.bump_version()
    for _ in range(100):
        assert not await watcher.changed()  # within max_age: free, and blind
    assert calls == 1
    mono.advance(0.5)
    assert await watcher.changed() and watcher.current == 1
    mono.advance(0.5)
    assert not await watcher.changed()
    assert calls == 3


# -- concurrency -------------------------------------------------------------------------------


async def test_concurrent_acquires_from_two_instances_are_exact(make):
    a, b = make(), make()
    results = await asyncio.gather(
        *(backend.acquire("hot", rpm=10, tpm=None, tokens=1) for _ in range(15) for backend in (a, b))
    )
    assert sum(r.ok for r in results) == 10
    assert {r.reason for r in results if not r.ok} == {"rpm"}


async def test_concurrent_tpm_and_quota_are_exact(make):
    a, b = make(), make()
    results = await asyncio.gather(
        *(backend.acquire("t", rpm=None, tpm=1000, tokens=100) for _ in range(10) for backend in (a, b)),
        *(
            backend.acquire("q", rpm=None, tpm=None, tokens=70, quota=700, quota_window_s=86400)
            for backend in (a, b)
            for _ in range(10)
        ),
    )  # fmt: skip
    assert sum(r.ok for r in results[:20]) == 10
    assert sum(r.ok for r in results[20:]) == 10


# -- Redis specifics ---------------------------------------------------------------------------


@pytest.mark.redis
async def test_redis_keys_are_prefixed_and_expire(redis_state):
    state = redis_state
    await state.acquire("k", rpm=5, tpm=500, tokens=10, quota=100, quota_window_s=3600)
    await state.note_remaining("k", remaining_requests=3, remaining_tokens=None, reset_at=T0 + 30)
    await state.cooldown(group_scope("g"), T0 + 30)
    await state.spend("user:1", tokens=1, cost=0.01, period="month")
    await state.bump_version()
    keys = [k async for k in state.redis.scan_iter(match=f"{state.prefix}*")]
    assert len(keys) == 6
    for key in keys:
        ttl = await state.redis.pttl(key)
        assert ttl > 0 or key == f"{state.prefix}version", key


@pytest.mark.redis
async def test_redis_recovers_when_the_server_forgot_its_scripts(redis_state):
    state = redis_state
    await state.redis.script_flush()
    assert (await state.acquire("k", rpm=1, tpm=None, tokens=1)).ok
    assert await state.cooldown(key_scope("k"), T0 + 1) == T0 + 1


@pytest.mark.redis
async def test_redis_burst_beyond_the_pool_waits_instead_of_failing(clock):
    async with redis_factory(clock) as factory:
        state = factory(max_connections=3)
        results = await asyncio.gather(*(state.acquire("k", rpm=40, tpm=None, tokens=1) for _ in range(50)))
        assert sum(r.ok for r in results) == 40


async def test_unreachable_redis_raises_state_unavailable():
    state = RedisStateBackend("redis://127.0.0.1:1/0", socket_timeout=0.2, retries=0)
    try:
        with pytest.raises(StateUnavailable) as info:
            await state.ping()
        assert info.value.retryable and info.value.status_code == 503
    finally:
        await state.close()


# -- memory specifics and the factory -----------------------------------------------------


async def test_memory_store_forgets_what_expired(clock):
    store = MemoryStore()
    state = MemoryStateBackend(now=clock, store=store)
    await state.acquire("k", rpm=5, tpm=500, tokens=10, quota=100, quota_window_s=3600)
    await state.note_remaining("k", remaining_requests=3, remaining_tokens=None, reset_at=T0 + 30)
    await state.cooldown(group_scope("g"), T0 + 30)
    await state.spend("user:1", tokens=1, cost=0.01, period="day")
    clock.advance(2 * 86400)
    await state.acquire("other", rpm=None, tpm=None, tokens=1)
    assert not (store.windows or store.quotas or store.steer or store.cooldowns or store.budgets)


async def test_factory_picks_the_backend_from_the_url(clock):
    memory = get_state_backend(None)
    assert isinstance(memory, MemoryStateBackend) and await memory.ping()
    assert get_state_backend("").store is memory.store  # one per process
    redis_backend = get_state_backend(REDIS_URL, prefix="byok-test:factory:", now=clock)
    try:
        assert isinstance(redis_backend, RedisStateBackend) and redis_backend.prefix == "byok-test:factory:"
    finally:
        await redis_backend.close()


# -- revoked keys -------------------------------------------------------------------------------


async def test_a_disabled_key_is_refused_by_every_backend_sharing_the_state_and_never_retried(make, clock):
    a, b = make(), make()  # two processes
    assert (await b.acquire("7", rpm=None, tpm=None, tokens=1)).ok
    await a.disable_key("7")
    got = await b.acquire("7", rpm=None, tpm=None, tokens=1)
    assert (got.ok, got.reason, got.retry_at) == (False, "disabled", None)
    assert (await b.acquire("8", rpm=None, tpm=None, tokens=1)).ok  # other keys are untouched
    clock.advance(3600)
    assert not (await b.acquire("7", rpm=5, tpm=100, tokens=1)).ok


async def test_the_registrys_synchronous_mark_reaches_the_redis_acquire(redis_state):
    from asgiref.sync import sync_to_async

    from byok.state import disable_keys

    await sync_to_async(disable_keys)([42], redis_url=REDIS_URL, prefix=redis_state.prefix, ttl_s=60)
    got = await redis_state.acquire("42", rpm=None, tpm=None, tokens=1)
    assert (got.ok, got.reason) == (False, "disabled")
    assert (await redis_state.acquire("43", rpm=None, tpm=None, tokens=1)).ok
