"""The failover loop: keys, retries and targets tried in turn until one answers.

    failover = Failover(pool=pool, state=state, secret=secret_of, clock=..., wall=..., sleep=..., rand=...)
    result, target, key = await failover.run(run, targets, tokens_for, call, deadline=..., blocked=None)

`call(target, key, secret)` makes one attempt. What happens on its failure is
decided by the error's class (the adapter classified it):

- ClientError: raised to the caller at once (neither retried nor failed over);
- KeyFaultError: the key leaves the pool (cooldown here, invalid/parked in the
  database, audited) and the next key is tried;
- RateLimitError: the key (or its quota group) cools down, the next key is tried;
- any other ProviderError: retried with backoff up to the target's max_retries
  (within the deadline), then the next target.

When everything is cooling down it waits once for the earliest recovery if the
deadline allows, else raises 429 with Retry-After (RateLimitedError); otherwise
AllProvidersFailedError / NoUsableProviderError.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from asgiref.sync import sync_to_async

from byok import registry
from byok.exceptions import (
    AllProvidersFailedError,
    ByokError,
    ClientError,
    KeyFaultError,
    KeyQuotaError,
    MasterKeyMismatchError,
    NoUsableProviderError,
    ProviderError,
    RateLimitedError,
    RateLimitError,
    UpstreamTimeout,
)
from byok.gateway.config_cache import KeyConfig
from byok.gateway.keypool import KeyPool
from byok.gateway.retry import MAX_RETRY_AFTER_S, backoff_delay, is_retryable, rate_limit_until
from byok.gateway.routing import Target
from byok.netguard import BLOCKED_MESSAGE, BlockedAddressError
from byok.state import StateBackend, key_scope

__all__ = ["MAX_COOLDOWN_WAIT_S", "Attempt", "Failover", "Run"]

log = logging.getLogger("byok.request")

# How long a request may wait for the earliest cooldown to end before answering 429.
MAX_COOLDOWN_WAIT_S = 10.0

T = TypeVar("T")


@dataclass(slots=True)
class Attempt:
    """One try at one provider with one key; what `failover_path` records."""

    provider: str
    key_hint: str
    status: int | None
    error_class: str | None
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {
            "provider": self.provider,
            "key_hint": self.key_hint,
            "status": self.status,
            "error_class": self.error_class,
            "ms": round(self.ms, 2),
        }


@dataclass(slots=True)
class Run:
    """The bookkeeping of one request across its attempts."""

    request_id: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    earliest_recovery: float | None = None
    only_rate_limited: bool = True
    last_error: ByokError | None = None
    current: tuple[Target, KeyConfig] | None = None  # the attempt under way, for accounting on cancel
    before_ms: float = 0.0  # time the request spent in byok before the handler (server, middleware, parsing)
    waited_ms: float = 0.0  # backoff and cooldown sleeps between attempts

    def overhead_ms(self, now: float) -> float:
        """Time in byok so far, upstream excluded: since arrival, less every attempt's and every wait's time."""
        spent = self.before_ms + (now - self.started) * 1000
        return max(0.0, spent - sum(a.ms for a in self.attempts) - self.waited_ms)

    def note_recovery(self, at: float | None) -> None:
        if at is not None and (self.earliest_recovery is None or at < self.earliest_recovery):
            self.earliest_recovery = at

    def attempt_dicts(self) -> list[dict[str, Any]]:
        return [a.to_dict() for a in self.attempts]

    @property
    def failover_ms(self) -> float:
        """Time spent on the tries before the last one."""
        return sum(a.ms for a in self.attempts[:-1])


Call = Callable[[Target, KeyConfig, str], Awaitable[T]]
Blocker = Callable[[KeyConfig], Awaitable[float | None]]


class Failover:
    """Tries a call across keys, retries and targets (see the module doc)."""

    def __init__(
        self,
        *,
        pool: KeyPool,
        state: Callable[[], StateBackend],
        secret: Callable[[KeyConfig], str],
        clock: Callable[[], float],
        wall: Callable[[], float],
        sleep: Callable[[float], Awaitable[Any]],
        rand: Callable[[], float],
    ) -> None:
        self.pool, self._state, self._secret = pool, state, secret
        self.clock, self.wall, self.sleep, self.rand = clock, wall, sleep, rand

    async def run(
        self,
        run: Run,
        targets: list[Target],
        tokens_for: Callable[[Target], int],
        call: Call[T],
        *,
        deadline: float,
        blocked: Blocker | None,
    ) -> tuple[T, Target, KeyConfig]:
        """Try `call(target, key, secret)` until one succeeds; return (result, target, key) or raise."""
        state = self._state()
        for round_ in range(2):
            for target in targets:
                retries, tried = 0, set[int]()
                tokens = tokens_for(target)
                while True:
                    key, retry_at = await self.pool.pick(
                        state, target.provider, tokens=tokens, exclude=tried, now=self.wall(), blocked=blocked
                    )
                    if key is None:
                        run.note_recovery(retry_at)
                        if retry_at is None:
                            run.only_rate_limited = run.only_rate_limited and bool(tried)
                        break
                    started = self.clock()
                    run.current = (target, key)
                    try:
                        result = await call(target, key, self._secret(key))
                    except MasterKeyMismatchError as exc:  # unreadable here, maybe not elsewhere: skip, mark nothing
                        run.last_error, run.only_rate_limited = exc, False
                        tried.add(key.id)
                    except ClientError as exc:
                        self._attempt(run, target, key, started, exc)
                        raise
                    except KeyFaultError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error, run.only_rate_limited = exc, False
                        tried.add(key.id)
                        await self._key_fault(state, key, exc)
                    except RateLimitError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error = exc
                        until = await state.cooldown(self.pool.scope(key), rate_limit_until(exc, self.wall()))
                        run.note_recovery(until)
                        tried.add(key.id)
                    except ProviderError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error, run.only_rate_limited = exc, False
                        retries += 1
                        if not is_retryable(exc) or retries > target.max_retries:
                            break
                        delay = backoff_delay(retries, retry_after=exc.retry_after, rand=self.rand)
                        if self.clock() + delay > deadline:
                            break
                        await self._wait(run, delay)
                    else:
                        self._attempt(run, target, key, started, None)
                        return result, target, key
            # Everything is cooling down: wait for the earliest recovery if the deadline allows, once.
            wait = (run.earliest_recovery - self.wall()) if run.earliest_recovery else None
            if (
                round_ == 0
                and run.only_rate_limited
                and wait is not None
                and 0 < wait <= min(MAX_COOLDOWN_WAIT_S, deadline - self.clock())
            ):
                await self._wait(run, wait)
                continue
            break
        raise self.final_error(run)

    async def _wait(self, run: Run, seconds: float) -> None:
        started = self.clock()
        try:
            await self.sleep(seconds)
        finally:
            run.waited_ms += (self.clock() - started) * 1000

    def _attempt(self, run: Run, target: Target, key: KeyConfig, started: float, exc: ByokError | None) -> None:
        status = getattr(exc, "status", None) if exc else 200
        error_class = getattr(exc, "error_class", exc.code) if exc else None
        run.attempts.append(
            Attempt(target.provider.name, key.hint, status, error_class, (self.clock() - started) * 1000)
        )
        if exc is not None:
            log.info(
                "failover request_id=%s provider=%s key=%s status=%s class=%s",
                run.request_id,
                target.provider.name,
                key.hint,
                status,
                error_class,
            )

    async def _key_fault(self, state: StateBackend, key: KeyConfig, exc: KeyFaultError) -> None:
        """Take a key the provider rejected out of the pool, here at once and everywhere through the DB."""
        parked = isinstance(exc, KeyQuotaError)
        until = self.wall() + exc.retry_after if parked and exc.retry_after else None
        await state.cooldown(key_scope(key.id), until if until else self.wall() + 3600)
        await sync_to_async(registry.set_key_status)(
            key.id,
            "parked" if parked else "invalid",
            reason=f"{exc.code}: {exc.message}",
            parked_until=datetime.fromtimestamp(until, UTC) if until else None,
        )

    def final_error(self, run: Run) -> ByokError:
        attempts = run.attempt_dicts()
        if run.only_rate_limited and run.earliest_recovery is not None:
            wait = min(max(run.earliest_recovery - self.wall(), 1.0), MAX_RETRY_AFTER_S * 20)
            return RateLimitedError(
                f"Every target is rate limited; retry in {wait:.0f}s.", retry_after=wait, attempts=attempts
            )
        if not run.attempts:
            if isinstance(run.last_error, MasterKeyMismatchError):
                return run.last_error
            return NoUsableProviderError("No provider has a usable key for this request.")
        timeout = isinstance(run.last_error, UpstreamTimeout)
        summary = "; ".join(f"{a.provider} {a.key_hint}: {a.error_class or a.status}" for a in run.attempts)
        if all(a.error_class == BlockedAddressError.error_class for a in run.attempts):  # the SSRF guard, not a fault
            error = AllProvidersFailedError(f"Nothing was sent ({summary}): {BLOCKED_MESSAGE}", attempts=attempts)
            error.retryable = False
            return error
        return AllProvidersFailedError(f"Every attempt failed ({summary}).", attempts=attempts, timeout=timeout)
