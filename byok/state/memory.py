"""The in-process state backend, for a single server process without Redis.

Every operation runs to completion under one lock without awaiting, so it is
atomic for all coroutines of the process (and for threads running their own
event loops, as Django's sync-to-async bridges do). Entries carry their own
expiry on the injected clock and are swept once a minute, so memory stays
bounded by the number of live keys, groups and scopes.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

from byok.state.base import (
    DISABLED_TTL_S,
    NANO,
    Acquired,
    BudgetStatus,
    Period,
    Spent,
    StateBackend,
    check_acquire_args,
    key_scope,
)
from byok.state.quota import LEASE_S, Admission, Hold, Rate, Reservation, over_budget, place_holds, refusal
from byok.state.windows import (
    WINDOW_BUCKETS,
    Verdict,
    bucket_of,
    calendar_period,
    quota_window,
    window_retry_at,
)

__all__ = ["MemoryStateBackend", "MemoryStore"]

SWEEP_EVERY_S = 60.0


@dataclass
class _Quota:
    idx: int
    window_s: float
    used: int
    ends_at: float


@dataclass
class _Steer:
    requests: int | None
    tokens: int | None
    reset_at: float


@dataclass
class _Budget:
    tokens: int
    nanos: int
    reset_at: float
    held_tokens: int = 0
    held_nanos: int = 0
    leases: dict[str, tuple[int, int, float]] = field(default_factory=dict)  # reservation id -> tokens, nanos, until

    def sweep(self, now: float) -> None:
        """Return what expired leases held."""
        for rid in [rid for rid, lease in self.leases.items() if lease[2] <= now]:
            tokens, nanos, _ = self.leases.pop(rid)
            self.held_tokens -= tokens
            self.held_nanos -= nanos

    def release(self, rid: str) -> None:
        lease = self.leases.pop(rid, None)
        if lease is not None:
            self.held_tokens -= lease[0]
            self.held_nanos -= lease[1]


@dataclass
class MemoryStore:
    """The data of a ``MemoryStateBackend``; backends given the same store share state."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    # key id -> bucket -> [requests, tokens]
    windows: dict[str, dict[int, list[int]]] = field(default_factory=dict)
    quotas: dict[str, _Quota] = field(default_factory=dict)
    steer: dict[str, _Steer] = field(default_factory=dict)
    cooldowns: dict[str, float] = field(default_factory=dict)
    disabled: dict[str, float] = field(default_factory=dict)  # key id -> until (a revoke's mark)
    budgets: dict[tuple[str, str, str], _Budget] = field(default_factory=dict)
    version: int = 0
    swept_at: float = -math.inf

    def sweep(self, now: float) -> None:
        """Drop whatever has expired, at most once per ``SWEEP_EVERY_S``; call under the lock."""
        if now - self.swept_at < SWEEP_EVERY_S:
            return
        self.swept_at = now
        oldest = bucket_of(now) - WINDOW_BUCKETS + 1
        for key, buckets in list(self.windows.items()):
            for b in [b for b in buckets if b < oldest]:
                del buckets[b]
            if not buckets:
                del self.windows[key]
        self.quotas = {k: q for k, q in self.quotas.items() if q.ends_at > now}
        self.steer = {k: s for k, s in self.steer.items() if s.reset_at > now}
        self.cooldowns = {k: u for k, u in self.cooldowns.items() if u > now}
        self.disabled = {k: u for k, u in self.disabled.items() if u > now}
        self.budgets = {k: b for k, b in self.budgets.items() if b.reset_at > now}


class MemoryStateBackend(StateBackend):
    """``StateBackend`` in process memory; see ``StateBackend`` for what each method does."""

    def __init__(self, *, now: Callable[[], float] = time.time, store: MemoryStore | None = None) -> None:
        self._now = now
        self.store = store if store is not None else MemoryStore()

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
        s = self.store
        with s.lock:
            s.sweep(now)
            if s.disabled.get(key_id, -math.inf) > now:
                return Acquired(ok=False, reason="disabled", retry_at=None, at=now)
            verdict = Verdict()

            for scope in (key_scope(key_id), *groups):
                until = s.cooldowns.get(scope)
                if until is not None and until > now:
                    verdict.refuse("cooldown", until)

            steer = s.steer.get(key_id)
            if steer is not None and steer.reset_at <= now:
                steer = None
            if steer is not None and (
                (steer.requests is not None and steer.requests <= 0)
                or (steer.tokens is not None and steer.tokens < tokens)
            ):
                verdict.refuse("steer", steer.reset_at)

            use_window = rpm is not None or tpm is not None
            cur = bucket_of(now)
            buckets: dict[int, list[int]] = {}
            if use_window:
                buckets = s.windows.setdefault(key_id, {})
                oldest = cur - WINDOW_BUCKETS + 1
                for b in [b for b in buckets if b < oldest]:
                    del buckets[b]
                if rpm is not None:
                    _check_window(verdict, "rpm", {b: v[0] for b, v in buckets.items()}, 1, rpm)
                if tpm is not None:
                    _check_window(verdict, "tpm", {b: v[1] for b, v in buckets.items()}, tokens, tpm)

            q_idx, q_end, q_used = 0, 0.0, 0
            if quota is not None:
                assert quota_window_s is not None
                q_idx, q_end = quota_window(now, quota_window_s)
                q = s.quotas.get(key_id)
                if q is not None and q.idx == q_idx and q.window_s == quota_window_s:
                    q_used = q.used
                if q_used + tokens > quota:
                    verdict.refuse("quota", math.inf if tokens > quota else q_end)

            if verdict.refused:
                if use_window and not buckets:
                    del s.windows[key_id]
                return Acquired(ok=False, reason=verdict.reason, retry_at=verdict.retry_at, at=now)  # type: ignore[arg-type]

            if use_window:
                slot = buckets.setdefault(cur, [0, 0])
                slot[0] += 1
                slot[1] += tokens
            if quota is not None:
                s.quotas[key_id] = _Quota(q_idx, quota_window_s, q_used + tokens, q_end)  # type: ignore[arg-type]
            if steer is not None:
                if steer.requests is not None:
                    steer.requests -= 1
                if steer.tokens is not None:
                    steer.tokens -= tokens
            return Acquired(ok=True, at=now)

    async def record_tokens(self, key_id: str, tokens_delta: int, *, at: float | None = None) -> None:
        now = self._now()
        at = now if at is None else at
        s = self.store
        with s.lock:
            b = bucket_of(at)
            slot = s.windows.get(key_id, {}).get(b)
            if slot is not None and b >= bucket_of(now) - WINDOW_BUCKETS + 1:
                slot[1] += tokens_delta
            q = s.quotas.get(key_id)
            if q is not None and quota_window(at, q.window_s)[0] == q.idx:
                q.used += tokens_delta

    async def clear_quota(self, key_id: str) -> None:
        with self.store.lock:
            self.store.quotas.pop(key_id, None)

    async def note_remaining(
        self,
        key_id: str,
        *,
        remaining_requests: int | None,
        remaining_tokens: int | None,
        reset_at: float | None,
    ) -> None:
        now = self._now()
        with self.store.lock:
            if reset_at is None or reset_at <= now or (remaining_requests is None and remaining_tokens is None):
                self.store.steer.pop(key_id, None)
            else:
                self.store.steer[key_id] = _Steer(remaining_requests, remaining_tokens, reset_at)

    async def disable_key(self, key_id: str, *, ttl_s: float = DISABLED_TTL_S) -> None:
        with self.store.lock:
            self.store.disabled[key_id] = self._now() + ttl_s

    async def cooldown(self, group: str, until: float) -> float:
        now = self._now()
        with self.store.lock:
            current = self.store.cooldowns.get(group)
            if current is not None and current >= until:
                return current
            if until > now:
                self.store.cooldowns[group] = until
            return until

    async def cooldown_until(self, groups: Sequence[str]) -> float | None:
        now = self._now()
        with self.store.lock:
            active = [u for g in groups if (u := self.store.cooldowns.get(g)) is not None and u > now]
        return max(active) if active else None

    async def clear_cooldown(self, group: str) -> None:
        with self.store.lock:
            self.store.cooldowns.pop(group, None)

    async def spend(self, scope: str, *, tokens: int, cost: float, period: Period) -> Spent:
        period_id, reset_at = calendar_period(self._now(), period)
        with self.store.lock:
            b = self.store.budgets.setdefault((period, period_id, scope), _Budget(0, 0, reset_at))
            b.tokens += tokens
            b.nanos += round(cost * NANO)
            return Spent(used_tokens=b.tokens, used_spend=b.nanos / NANO, reset_at=reset_at)

    async def check_budget(
        self,
        scope: str,
        *,
        token_limit: int | None,
        spend_limit: float | None,
        period: Period,
    ) -> BudgetStatus:
        period_id, reset_at = calendar_period(self._now(), period)
        with self.store.lock:
            b = self.store.budgets.get((period, period_id, scope))
            if b is not None:
                b.sweep(self._now())
            used_tokens, nanos, held = (b.tokens, b.nanos, (b.held_tokens, b.held_nanos)) if b else (0, 0, (0, 0))
        return BudgetStatus.from_counters(used_tokens, nanos, token_limit, spend_limit, reset_at, held)

    async def reserve(
        self, *, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], lease_s: float = LEASE_S
    ) -> Admission:
        now = self._now()
        placed = place_holds(holds, now)
        cur = bucket_of(now)
        s = self.store
        with s.lock:
            s.sweep(now)
            refusals: list[tuple[float, Admission]] = []
            for rate in rates:
                buckets = s.windows.get(rate.scope, {})
                for old in [old for old in buckets if old < cur - WINDOW_BUCKETS + 1]:
                    del buckets[old]
                verdict = Verdict()
                if rate.rpm is not None:
                    _check_window(verdict, "rpm", {b: v[0] for b, v in buckets.items()}, 1, rate.rpm)
                if rate.tpm is not None:
                    _check_window(verdict, "tpm", {b: v[1] for b, v in buckets.items()}, tokens, rate.tpm)
                if verdict.refused:
                    got = Admission(ok=False, reason=verdict.reason, scope=rate.scope, retry_at=verdict.retry_at)  # type: ignore[arg-type]
                    refusals.append((verdict.at, got))
            budgets = []
            for p in placed:
                h = p.hold
                bud = s.budgets.setdefault((h.period, p.period_id, h.scope), _Budget(0, 0, p.reset_at))
                bud.sweep(now)
                budgets.append(bud)
                figures = (bud.tokens, bud.nanos, bud.held_tokens, bud.held_nanos)
                over = over_budget(h, *figures)
                if over is not None:
                    refusals.append((p.reset_at, refusal(p, over, *figures)))
            if refusals:
                return max(refusals, key=lambda r: r[0])[1]
            reservation = Reservation.new(now, rates, tokens, placed)
            for scope in reservation.rates:
                slot = s.windows.setdefault(scope, {}).setdefault(cur, [0, 0])
                slot[0] += 1
                slot[1] += tokens
            for p, bud in zip(placed, budgets):
                bud.leases[reservation.id] = (p.hold.tokens, p.hold.nanos, now + lease_s)
                bud.held_tokens += p.hold.tokens
                bud.held_nanos += p.hold.nanos
            return Admission(ok=True, reservation=reservation)

    async def settle(
        self, reservation: Reservation, *, tokens: int, nanos: int, also: Sequence[tuple[str, str]] = ()
    ) -> None:
        now = self._now()
        s = self.store
        with s.lock:
            b_at = bucket_of(reservation.at)
            if b_at >= bucket_of(now) - WINDOW_BUCKETS + 1 and tokens != reservation.tokens:
                for scope in reservation.rates:
                    slot = s.windows.get(scope, {}).get(b_at)
                    if slot is not None:
                        slot[1] += tokens - reservation.tokens
            for p in reservation.holds:
                key = (p.hold.period, p.period_id, p.hold.scope)
                b = s.budgets.setdefault(key, _Budget(0, 0, p.reset_at))
                b.release(reservation.id)
                b.tokens += tokens
                b.nanos += nanos
            for scope, period in also:
                period_id, reset_at = calendar_period(now, period)
                b = s.budgets.setdefault((period, period_id, scope), _Budget(0, 0, reset_at))
                b.tokens += tokens
                b.nanos += nanos

    async def bump_version(self) -> int:
        with self.store.lock:
            self.store.version += 1
            return self.store.version

    async def version(self) -> int:
        return self.store.version

    async def ping(self) -> bool:
        return True

    async def close(self) -> None:
        return None


def _check_window(verdict: Verdict, reason: str, buckets: dict[int, int], amount: int, limit: int) -> None:
    """Refuse into ``verdict`` if ``amount`` more would exceed ``limit`` in the window."""
    used = sum(buckets.values())
    if used + amount <= limit:
        return
    if amount > limit:
        verdict.refuse(reason, math.inf)
    else:
        verdict.refuse(reason, window_retry_at(buckets, used + amount - limit))
