"""The Redis state backend: one shared state for every server process on every machine.

Each operation is one round trip: the check-and-count operations run as Lua
scripts (``lua/*.lua``, called by EVALSHA, loaded once per server), the rest
as single commands or one MULTI pipeline. Scripts get the time from the
backend's injected clock, never from the Redis server. Every key is under
``prefix`` (default ``byok:``) and carries a TTL, except the one
configuration-version counter.

Not Redis Cluster safe: ``acquire`` touches a key's window, quota, steering
hint and its groups' cooldowns in one script, which Cluster only allows
within one hash slot.

Why not the ``limits`` library: it checks one limit per call against the
server's clock, whereas a key needs cooldowns, steering, rpm, tpm and quota
checked and counted together, all-or-nothing, in one round trip, on a clock
tests can move.
"""

from __future__ import annotations

import logging
import math
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from pathlib import Path
from typing import Any, TypeVar

import redis.asyncio as aioredis
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialWithJitterBackoff
from redis.exceptions import RedisError

from byok.state.base import (
    DISABLED_TTL_S,
    NANO,
    Acquired,
    BudgetStatus,
    Period,
    Spent,
    StateBackend,
    StateUnavailable,
    check_acquire_args,
    key_scope,
)
from byok.state.quota import LEASE_S, Admission, Hold, Rate, Reservation, place_holds, refusal
from byok.state.windows import BUCKET_S, WINDOW_BUCKETS, calendar_period

__all__ = ["RedisStateBackend", "disable_keys_sync", "disabled_key"]

_LUA = Path(__file__).with_name("lua")
# Keys outlive their last use by this much, so a clock a little off never loses state early.
MARGIN_MS = 5_000
BUDGET_MARGIN_MS = 3_600_000
log = logging.getLogger("byok.state")
T = TypeVar("T")


def _script(name: str) -> str:
    """A Lua script with the shared helpers of ``lua/lib.lua`` in front."""
    return (_LUA / "lib.lua").read_text() + (_LUA / name).read_text()


def _num(value: float | int | None) -> str:
    """A number as a Lua script argument ('' for None); repr keeps floats exact."""
    return "" if value is None else repr(value)


def disabled_key(prefix: str, key_id: object) -> str:
    """The Redis key of a key's "disabled" mark (checked by acquire.lua)."""
    return f"{prefix}off:{key_id}"


def disable_keys_sync(url: str, prefix: str, key_ids: Sequence[object], ttl_s: float = DISABLED_TTL_S) -> None:
    """Write the "disabled" marks of ``key_ids`` with a synchronous client (the registry runs in a thread)."""
    import redis

    with redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2) as client:
        pipe = client.pipeline(transaction=False)
        for key_id in key_ids:
            pipe.set(disabled_key(prefix, key_id), "1", px=math.ceil(ttl_s * 1000))
        pipe.execute()


class RedisStateBackend(StateBackend):
    """``StateBackend`` in Redis; see ``StateBackend`` for what each method does.

    Give it a ``url`` (it then owns and closes its client) or a ready
    ``client`` created with ``decode_responses=True``. Timeouts are short and
    retries few on purpose: this sits on every request's path, and a Redis that
    does not answer should fail fast (``StateUnavailable``), not stall requests.
    """

    def __init__(
        self,
        url: str | None = None,
        *,
        client: aioredis.Redis | None = None,
        prefix: str = "byok:",
        now: Callable[[], float] = time.time,
        socket_timeout: float = 1.0,
        retries: int = 2,
        max_connections: int = 64,
    ) -> None:
        if (url is None) == (client is None):
            raise ValueError("give RedisStateBackend either a url or a client")
        self._owns_client = client is None
        if client is None:
            # A blocking pool: a burst of concurrent requests waits briefly for a connection
            # instead of failing with "Too many connections" as the default pool does.
            pool = aioredis.BlockingConnectionPool.from_url(
                url,  # type: ignore[arg-type]
                max_connections=max_connections,
                timeout=socket_timeout * 2,
                decode_responses=True,
                socket_timeout=socket_timeout,
                socket_connect_timeout=socket_timeout,
                retry=Retry(ExponentialWithJitterBackoff(base=0.01, cap=0.1), retries),
                health_check_interval=30,
            )
            client = aioredis.Redis.from_pool(pool)
        self.redis: aioredis.Redis = client
        self.prefix = prefix
        self._now = now
        # register_script: EVALSHA, loading the script once on NOSCRIPT (new or restarted server).
        self._acquire = self.redis.register_script(_script("acquire.lua"))
        self._record = self.redis.register_script((_LUA / "record_tokens.lua").read_text())
        self._cooldown = self.redis.register_script((_LUA / "cooldown.lua").read_text())
        self._reserve = self.redis.register_script(_script("reserve.lua"))
        self._settle = self.redis.register_script(_script("settle.lua"))

    # -- key names ----------------------------------------------------------------------

    def _window_key(self, key_id: str) -> str:
        return f"{self.prefix}w:{key_id}"

    def _quota_key(self, key_id: str) -> str:
        return f"{self.prefix}q:{key_id}"

    def _steer_key(self, key_id: str) -> str:
        return f"{self.prefix}s:{key_id}"

    def _cooldown_key(self, group: str) -> str:
        return f"{self.prefix}cd:{group}"

    def _budget_key(self, scope: str, period: str, period_id: str) -> str:
        return f"{self.prefix}b:{period}:{period_id}:{scope}"

    def _lease_key(self, scope: str, period: str, period_id: str) -> str:
        return f"{self.prefix}bl:{period}:{period_id}:{scope}"

    @property
    def _version_key(self) -> str:
        return f"{self.prefix}version"

    # -- operations -----------------------------------------------------------------------

    async def acquire(
        self,
        key_id: str,
        *,
        rpm: int | None,
        tpm: int | None,
        tokens: int,
        quota: int | None = None,
        quota_window_s: float | None = None,
        groups: Sequence[str] = (),
    ) -> Acquired:
        check_acquire_args(tokens, quota, quota_window_s)
        now = self._now()
        keys = [
            self._window_key(key_id),
            self._quota_key(key_id),
            self._steer_key(key_id),
            disabled_key(self.prefix, key_id),
            *(self._cooldown_key(g) for g in (key_scope(key_id), *groups)),
        ]
        args: list[Any] = [
            _num(now), int(tokens), _num(rpm), _num(tpm), _num(quota),
            _num(quota_window_s if quota is not None else None),
            _num(BUCKET_S), WINDOW_BUCKETS, MARGIN_MS,
        ]  # fmt: skip
        ok, reason, retry_at, _ = await self._call(self._acquire(keys=keys, args=args))
        if int(ok):
            return Acquired(ok=True, at=now)
        return Acquired(ok=False, reason=reason, retry_at=float(retry_at) if retry_at else None, at=now)

    async def record_tokens(self, key_id: str, tokens_delta: int, *, at: float | None = None) -> None:
        if not tokens_delta:
            return
        now = self._now()
        keys = [self._window_key(key_id), self._quota_key(key_id)]
        args: list[Any] = [
            _num(now if at is None else at),
            int(tokens_delta),
            _num(now),
            _num(BUCKET_S),
            WINDOW_BUCKETS,
        ]
        await self._call(self._record(keys=keys, args=args))

    async def clear_quota(self, key_id: str) -> None:
        await self._call(self.redis.delete(self._quota_key(key_id)))

    async def note_remaining(
        self,
        key_id: str,
        *,
        remaining_requests: int | None,
        remaining_tokens: int | None,
        reset_at: float | None,
    ) -> None:
        now = self._now()
        key = self._steer_key(key_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.delete(key)
        if reset_at is not None and reset_at > now and (remaining_requests, remaining_tokens) != (None, None):
            fields: dict[str, Any] = {"reset": _num(reset_at)}
            if remaining_requests is not None:
                fields["rr"] = int(remaining_requests)
            if remaining_tokens is not None:
                fields["rt"] = int(remaining_tokens)
            pipe.hset(key, mapping=fields)  # type: ignore[arg-type]  # str keys, number values
            pipe.pexpire(key, math.ceil((reset_at - now) * 1000) + MARGIN_MS)
        await self._call(pipe.execute())

    async def disable_key(self, key_id: str, *, ttl_s: float = DISABLED_TTL_S) -> None:
        await self._call(self.redis.set(disabled_key(self.prefix, key_id), "1", px=math.ceil(ttl_s * 1000)))

    async def cooldown(self, group: str, until: float) -> float:
        args: list[Any] = [_num(float(until)), _num(self._now()), MARGIN_MS]
        return float(await self._call(self._cooldown(keys=[self._cooldown_key(group)], args=args)))

    async def cooldown_until(self, groups: Sequence[str]) -> float | None:
        if not groups:
            return None
        now = self._now()
        values = await self._call(self.redis.mget([self._cooldown_key(g) for g in groups]))
        active = [u for v in values if v is not None and (u := float(v)) > now]
        return max(active) if active else None

    async def clear_cooldown(self, group: str) -> None:
        await self._call(self.redis.delete(self._cooldown_key(group)))

    async def spend(self, scope: str, *, tokens: int, cost: float, period: Period) -> Spent:
        now = self._now()
        period_id, reset_at = calendar_period(now, period)
        key = self._budget_key(scope, period, period_id)
        pipe = self.redis.pipeline(transaction=True)
        pipe.hincrby(key, "tok", int(tokens))
        pipe.hincrby(key, "nano", round(cost * NANO))
        pipe.pexpire(key, math.ceil((reset_at - now) * 1000) + BUDGET_MARGIN_MS)
        used_tokens, nanos, _ = await self._call(pipe.execute())
        return Spent(used_tokens=int(used_tokens), used_spend=int(nanos) / NANO, reset_at=reset_at)

    async def check_budget(
        self,
        scope: str,
        *,
        token_limit: int | None,
        spend_limit: float | None,
        period: Period,
    ) -> BudgetStatus:
        period_id, reset_at = calendar_period(self._now(), period)
        fields = await self._call(
            self.redis.hmget(self._budget_key(scope, period, period_id), ["tok", "nano", "rtok", "rnano"])
        )
        tok, nano, held_tok, held_nano = (int(v or 0) for v in fields)
        return BudgetStatus.from_counters(tok, nano, token_limit, spend_limit, reset_at, (held_tok, held_nano))

    async def reserve(
        self, *, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], lease_s: float = LEASE_S
    ) -> Admission:
        now = self._now()
        placed = place_holds(holds, now)
        rates = [r for r in rates if r.rpm is not None or r.tpm is not None]
        keys = [self._window_key(r.scope) for r in rates]
        lease_id = uuid.uuid4().hex
        args: list[Any] = [
            _num(now), int(tokens), _num(BUCKET_S), WINDOW_BUCKETS, MARGIN_MS, len(rates), lease_id,
            _num(now + lease_s),
        ]  # fmt: skip
        for r in rates:
            args += [_num(r.rpm), _num(r.tpm)]
        for p in placed:
            h = p.hold
            keys += [self._budget_key(h.scope, h.period, p.period_id), self._lease_key(h.scope, h.period, p.period_id)]
            ttl = math.ceil((p.reset_at - now) * 1000) + BUDGET_MARGIN_MS
            args += [_num(h.token_limit), _num(h.nano_limit), int(h.tokens), int(h.nanos), _num(p.reset_at), ttl]
        if not keys:
            return Admission(ok=True, reservation=Reservation.new(now, (), tokens, ()))
        ok, reason, which, retry_at, *figures = await self._call(self._reserve(keys=keys, args=args))
        if int(ok):
            return Admission(ok=True, reservation=Reservation(lease_id, now, tuple(r.scope for r in rates), tokens,
                                                                tuple(placed)))  # fmt: skip
        which = int(which)
        if which <= len(rates):
            return Admission(ok=False, reason=reason, scope=rates[which - 1].scope,
                             retry_at=float(retry_at) if retry_at else None)  # fmt: skip
        return refusal(placed[which - len(rates) - 1], reason, *(int(f) for f in figures))

    async def settle(
        self, reservation: Reservation, *, tokens: int, nanos: int, also: Sequence[tuple[str, str]] = ()
    ) -> None:
        now = self._now()
        keys = [self._window_key(scope) for scope in reservation.rates]
        ttls = []
        for p in reservation.holds:
            h = p.hold
            keys += [self._budget_key(h.scope, h.period, p.period_id), self._lease_key(h.scope, h.period, p.period_id)]
            ttls.append(math.ceil((p.reset_at - now) * 1000) + BUDGET_MARGIN_MS)
        for scope, period in also:
            period_id, reset_at = calendar_period(now, period)
            keys.append(self._budget_key(scope, period, period_id))
            ttls.append(math.ceil((reset_at - now) * 1000) + BUDGET_MARGIN_MS)
        if not keys:
            return
        args: list[Any] = [
            _num(reservation.at), int(tokens - reservation.tokens), _num(now), _num(BUCKET_S), WINDOW_BUCKETS,
            len(reservation.rates), len(reservation.holds), reservation.id, int(tokens), int(nanos), *ttls,
        ]  # fmt: skip
        await self._call(self._settle(keys=keys, args=args))

    async def bump_version(self) -> int:
        return int(await self._call(self.redis.incr(self._version_key)))

    async def version(self) -> int:
        return int(await self._call(self.redis.get(self._version_key)) or 0)

    async def ping(self) -> bool:
        return bool(await self._call(self.redis.ping()))

    async def close(self) -> None:
        if self._owns_client:
            await self.redis.aclose()

    # -- errors -------------------------------------------------------------------------

    async def _call(self, awaitable: Awaitable[T]) -> T:
        """Await a Redis operation, turning any Redis failure into ``StateUnavailable``."""
        try:
            return await awaitable
        except RedisError as exc:
            # Redis's messages name its host and port: they go to the log, not to clients.
            log.warning("shared state (Redis) failed: %s: %s", type(exc).__name__, exc)
            raise StateUnavailable("The shared state store (Redis) is unreachable; try again shortly.") from exc
