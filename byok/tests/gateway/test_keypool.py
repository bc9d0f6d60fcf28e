"""byok.gateway.keypool: round-robin over usable keys, limits from the shared state, header steering, budget blocks."""

from __future__ import annotations

from byok.gateway.keypool import KeyPool
from byok.providers.types import RateLimitInfo, Usage
from byok.state import MemoryStateBackend, group_scope, key_scope
from byok.tests.gateway.factories import key_config, provider_config

NOW = 1_700_000_000.0


def _state() -> MemoryStateBackend:
    return MemoryStateBackend(now=lambda: NOW)


async def _picks(pool, state, provider, n, **kw):
    out = []
    for _ in range(n):
        key, _ = await pool.pick(state, provider, tokens=10, exclude=set(), now=NOW, **kw)
        out.append(key.id if key else None)
    return out


async def test_keys_are_taken_round_robin():
    provider = provider_config(keys=(key_config(1), key_config(2), key_config(3)))
    assert await _picks(KeyPool(), _state(), provider, 6) == [1, 2, 3, 1, 2, 3]


async def test_excluded_and_unusable_keys_are_skipped():
    provider = provider_config(keys=(key_config(1), key_config(2, status="invalid"), key_config(3)))
    pool, state = KeyPool(), _state()
    key, _ = await pool.pick(state, provider, tokens=1, exclude={1}, now=NOW)
    assert key.id == 3
    assert await pool.pick(state, provider, tokens=1, exclude={1, 3}, now=NOW) == (None, None)


async def test_a_key_over_its_rpm_is_refused_with_the_time_it_frees_up():
    provider = provider_config(keys=(key_config(1, rpm=2),))
    pool, state = KeyPool(), _state()
    assert await _picks(pool, state, provider, 2) == [1, 1]
    key, retry_at = await pool.pick(state, provider, tokens=10, exclude=set(), now=NOW)
    assert key is None and retry_at is not None and NOW < retry_at <= NOW + 61


async def test_a_cooling_group_takes_every_key_of_the_group_out():
    provider = provider_config(
        keys=(key_config(1, quota_group="org-a"), key_config(2, quota_group="org-a"), key_config(3))
    )
    pool, state = KeyPool(), _state()
    assert KeyPool.scope(provider.keys[0]) == group_scope("org-a") and KeyPool.scope(provider.keys[2]) == key_scope(3)
    await state.cooldown(group_scope("org-a"), NOW + 30)
    assert await _picks(pool, state, provider, 3) == [3, 3, 3]


async def test_a_budget_blocker_skips_a_key_and_reports_when_it_may_serve():
    provider = provider_config(keys=(key_config(1), key_config(2)))

    async def blocked(key):
        return NOW + 100 if key.id == 1 else None

    pool, state = KeyPool(), _state()
    assert await _picks(pool, state, provider, 3, blocked=blocked) == [2, 2, 2]

    async def all_blocked(key):
        return NOW + 100 + key.id

    assert await pool.pick(state, provider, tokens=1, exclude=set(), now=NOW, blocked=all_blocked) == (None, NOW + 101)


async def test_remaining_headers_steer_away_before_a_429():
    provider = provider_config(keys=(key_config(1), key_config(2)))
    pool, state = KeyPool(), _state()
    await pool.note_headers(state, provider.keys[0], RateLimitInfo(remaining_requests=0, reset_requests_s=20.0), NOW)
    assert await _picks(pool, state, provider, 4) == [2, 2, 2, 2]
    # Headers without counts change nothing.
    await pool.note_headers(state, provider.keys[1], RateLimitInfo(), NOW)
    assert await _picks(pool, state, provider, 1) == [2]


async def test_recorded_usage_corrects_the_token_window():
    key = key_config(1, tpm=100)
    provider = provider_config(keys=(key,))
    pool, state = KeyPool(), _state()
    got, _ = await pool.pick(state, provider, tokens=90, exclude=set(), now=NOW)
    assert got is key
    # The answer used 20 tokens, not the 90 reserved: 80 more fit in the window again.
    await pool.record_usage(state, key, Usage(input_tokens=12, output_tokens=8), estimated=90)
    got, _ = await pool.pick(state, provider, tokens=80, exclude=set(), now=NOW)
    assert got is key
    assert (await pool.pick(state, provider, tokens=1, exclude=set(), now=NOW))[0] is None
