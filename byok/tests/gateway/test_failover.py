"""byok.gateway.failover: what each error class does to keys, retries
and targets; waiting out cooldowns; final errors.
"""

from __future__ import annotations

import pytest

from byok.exceptions import (
    AllProvidersFailedError,
    AuthError,
    BadRequestError,
    NoUsableProviderError,
    RateLimitedError,
    RateLimitError,
    ServerError,
    UpstreamTimeout,
)
from byok.gateway.failover import MAX_COOLDOWN_WAIT_S, Failover, Run
from byok.gateway.keypool import KeyPool
from byok.state import MemoryStateBackend, key_scope
from byok.tests.gateway.factories import key_config, provider_config, target


class Clock:
    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def __call__(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


def _failover(clock: Clock) -> tuple[Failover, MemoryStateBackend]:
    state = MemoryStateBackend(now=clock)
    failover = Failover(
        pool=KeyPool(),
        state=lambda: state,
        secret=lambda key: f"secret-{key.id}",
        clock=clock,
        wall=clock,
        sleep=clock.sleep,
        rand=lambda: 0.0,
    )
    return failover, state


def _script(*outcomes):
    """A call that answers each attempt with the next outcome (an exception to raise, or a value)."""
    calls = []

    async def call(target, key, secret):
        calls.append((target.provider.name, key.id, secret))
        outcome = outcomes[len(calls) - 1]
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    return call, calls


A = provider_config(1, name="a", keys=(key_config(11, provider_id=1), key_config(12, provider_id=1)), max_retries=2)
B = provider_config(2, name="b", keys=(key_config(21, provider_id=2),))


async def _run(failover, clock, targets, call, deadline_s=300.0):
    run = Run("rid", clock())
    result = await failover.run(run, targets, lambda t: 10, call, deadline=clock() + deadline_s, blocked=None)
    return run, result


async def test_the_first_answer_wins_and_is_recorded_as_one_attempt():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script("ok")
    run, (result, tgt, key) = await _run(failover, clock, [target(A), target(B)], call)
    assert (result, tgt.provider.name, key.id) == ("ok", "a", 11)
    assert calls == [("a", 11, "secret-11")] and [a.status for a in run.attempts] == [200]


async def test_a_client_error_is_raised_at_once_without_retry_or_failover():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script(BadRequestError("bad", status=400))
    with pytest.raises(BadRequestError):
        await _run(failover, clock, [target(A), target(B)], call)
    assert len(calls) == 1 and clock.slept == []


@pytest.mark.django_db(transaction=True)
async def test_a_key_fault_takes_the_key_out_and_tries_the_next_key():
    clock = Clock()
    failover, state = _failover(clock)
    call, calls = _script(AuthError("no", status=401), "ok")
    run, (result, _, key) = await _run(failover, clock, [target(A)], call)
    assert result == "ok" and key.id == 12 and [c[1] for c in calls] == [11, 12]
    assert await state.cooldown_until([key_scope(11)]) is not None  # out of the pool in this process at once
    assert [a.error_class for a in run.attempts] == ["auth", None]


async def test_a_rate_limit_cools_the_key_down_and_moves_to_the_next_key_without_sleeping():
    clock = Clock()
    failover, state = _failover(clock)
    call, calls = _script(RateLimitError(retry_after=20.0, status=429), "ok")
    _, (_, _, key) = await _run(failover, clock, [target(A)], call)
    assert key.id == 12 and clock.slept == []
    assert await state.cooldown_until([key_scope(11)]) == pytest.approx(clock.now + 20.0)


async def test_transient_errors_are_retried_with_backoff_up_to_max_retries_then_the_next_target():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script(ServerError(status=500), ServerError(status=502), ServerError(status=503), "from b")
    run, (result, tgt, _) = await _run(failover, clock, [target(A, max_retries=2), target(B)], call)
    assert result == "from b" and tgt.provider.name == "b"
    assert [c[0] for c in calls] == ["a", "a", "a", "b"] and len(clock.slept) == 2 and clock.slept[0] < clock.slept[1]
    assert len(run.attempts) == 4 and run.failover_ms >= 0


async def test_a_retry_that_would_pass_the_deadline_is_not_made():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script(UpstreamTimeout(), "never")
    with pytest.raises(AllProvidersFailedError) as info:
        await _run(failover, clock, [target(A, max_retries=5)], call, deadline_s=0.01)
    assert len(calls) == 1 and info.value.status_code == 504  # the last error was a timeout


async def test_when_every_key_is_rate_limited_it_waits_once_for_the_earliest_recovery():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script(
        RateLimitError(retry_after=3.0), RateLimitError(retry_after=5.0), RateLimitError(retry_after=4.0), "ok"
    )
    _, (result, _, key) = await _run(failover, clock, [target(A), target(B)], call)
    assert result == "ok" and clock.slept == [pytest.approx(3.0)] and key.id == 11


async def test_when_recovery_is_too_far_off_it_answers_429_with_retry_after():
    clock = Clock()
    failover, _ = _failover(clock)
    far = MAX_COOLDOWN_WAIT_S + 50
    call, _ = _script(*(RateLimitError(retry_after=far) for _ in range(3)))
    with pytest.raises(RateLimitedError) as info:
        await _run(failover, clock, [target(A), target(B)], call)
    assert clock.slept == [] and info.value.retry_after == pytest.approx(far)
    assert len(info.value.attempts) == 3


async def test_no_usable_key_anywhere_is_a_503_without_any_call():
    clock = Clock()
    failover, _ = _failover(clock)
    empty = provider_config(3, name="c", keys=())
    call, calls = _script()
    with pytest.raises(NoUsableProviderError):
        await _run(failover, clock, [target(empty)], call)
    assert calls == []


async def test_a_budget_blocked_key_is_skipped():
    clock = Clock()
    failover, _ = _failover(clock)
    call, calls = _script("ok")

    async def blocked(key):
        return clock.now + 60 if key.id == 11 else None

    run = Run("rid", clock())
    _, _, key = await failover.run(run, [target(A)], lambda t: 1, call, deadline=clock() + 10, blocked=blocked)
    assert key.id == 12 and calls == [("a", 12, "secret-12")]


async def test_the_overhead_leaves_out_every_attempt_and_every_backoff_wait():
    clock = Clock()
    failover, _ = _failover(clock)

    async def slow(target, key, secret):  # each try spends 0.5 s upstream, the first two fail
        clock.now += 0.5
        if len(run.attempts) < 2:
            raise ServerError(status=503)
        return "ok"

    run = Run("rid", clock(), before_ms=1.5)
    clock.now += 0.002  # byok's own work before the first try
    await failover.run(run, [target(A, max_retries=2)], lambda t: 10, slow, deadline=clock() + 300, blocked=None)
    clock.now += 0.003  # and after the answer
    assert len(run.attempts) == 3 and len(clock.slept) == 2
    assert run.waited_ms == pytest.approx(sum(clock.slept) * 1000)
    assert run.overhead_ms(clock()) == pytest.approx(1.5 + 2 + 3, abs=0.01)
