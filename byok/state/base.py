"""The shared-state interface the handler's key pool and budgets rely on.

One ``StateBackend`` instance per process holds rate-limit windows, cooldowns,
quota counters, provider "remaining" hints, budgets and a configuration
version. ``MemoryStateBackend`` keeps them in process memory (one process);
``RedisStateBackend`` keeps them in Redis, checked-and-counted atomically, so
that every process on every machine sharing that Redis behaves as one.

Times are seconds since the epoch as floats, read from the clock given to the
backend's constructor (``now``, default ``time.time``), never from the Redis
server, so tests can move time without sleeping.

Typical use by the handler, per attempt::

    got = await state.acquire(key.id, rpm=key.rpm, tpm=key.tpm, tokens=estimate,
                              quota=key.quota, quota_window_s=key.quota_window_s,
                              groups=[group_scope(key.quota_group)] if key.quota_group else ())
    if not got:
        ...  # try another key; got.reason / got.retry_at say why and until when
    ...      # call the provider
    await state.record_tokens(key.id, real - estimate, at=got.at)
    await state.note_remaining(key.id, remaining_requests=..., remaining_tokens=..., reset_at=...)
    # on a 429:
    await state.cooldown(group_scope(key.quota_group) or key_scope(key.id), until=reset)
"""

from __future__ import annotations

import abc
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from byok.exceptions import ByokError
from byok.state.quota import LEASE_S, Admission, Hold, Rate, Reservation

__all__ = [
    "NANO",
    "Acquired",
    "BudgetStatus",
    "DISABLED_TTL_S",
    "Period",
    "Reason",
    "Spent",
    "StateBackend",
    "StateUnavailable",
    "check_acquire_args",
    "group_scope",
    "key_scope",
]

# Spend is counted in integer billionths of the currency unit, so sums never drift.
NANO = 1_000_000_000

Reason = Literal["rpm", "tpm", "quota", "cooldown", "steer", "disabled"]

# How long a revoked key's "disabled" mark lives: far longer than any process keeps a stale snapshot.
DISABLED_TTL_S = 86_400.0
Period = Literal["day", "month"]


def key_scope(key_id: object) -> str:
    """The cooldown scope of a single key: ``"key:<id>"``."""
    return f"key:{key_id}"


def group_scope(name: str) -> str:
    """The cooldown scope of a quota group: ``"group:<name>"``."""
    return f"group:{name}"


def check_acquire_args(tokens: int, quota: int | None, quota_window_s: float | None) -> None:
    """Reject ``acquire`` arguments that make no sense, before touching any state."""
    if tokens < 0:
        raise ValueError("tokens must not be negative")
    if quota is not None and (quota_window_s is None or quota_window_s <= 0):
        raise ValueError("a quota needs a positive quota_window_s")


class StateUnavailable(ByokError):
    """The shared state store (Redis) could not be reached or answered with an error."""

    code = "state_unavailable"
    status_code = 503
    retryable = True
    default_message = "The shared state store is unavailable."


@dataclass(frozen=True, slots=True)
class Acquired:
    """The answer to ``acquire``: a slot was counted (``ok``), or why not and until when.

    ``retry_at`` is when the request could fit again (assuming no other
    traffic); None on a refusal means it never can under that limit (e.g. a
    request larger than the key's tpm or quota). ``at`` is the clock time the
    decision was made at; pass it to ``record_tokens`` so the correction lands
    in the same window. An ``Acquired`` is truthy exactly when ``ok``.
    """

    ok: bool
    reason: Reason | None = None
    retry_at: float | None = None
    at: float = 0.0

    def __bool__(self) -> bool:
        return self.ok


@dataclass(frozen=True, slots=True)
class Spent:
    """The budget counters of one scope and period after a ``spend``."""

    used_tokens: int
    used_spend: float
    reset_at: float


@dataclass(frozen=True, slots=True)
class BudgetStatus:
    """Whether a scope is still under its budget this period, and what it used.

    ``ok`` is false once used tokens (or spend) have reached the limit;
    ``reason`` then says which ("tokens" or "spend"), and ``reset_at`` is when
    the period ends (UTC midnight, or the first of next month).
    """

    ok: bool
    reset_at: float
    used_tokens: int
    used_spend: float
    reason: Literal["tokens", "spend"] | None = None
    reserved_tokens: int = 0  # held by requests in flight (see ``reserve``)
    reserved_spend: float = 0.0

    @classmethod
    def from_counters(
        cls,
        used_tokens: int,
        nanos: int,
        token_limit: int | None,
        spend_limit: float | None,
        reset_at: float,
        reserved: tuple[int, int] = (0, 0),
    ) -> BudgetStatus:
        """Judge raw counters (spend in billionths, see ``NANO``) against the limits."""
        reason: Literal["tokens", "spend"] | None = None
        if token_limit is not None and used_tokens >= token_limit:
            reason = "tokens"
        elif spend_limit is not None and nanos >= round(spend_limit * NANO):
            reason = "spend"
        return cls(
            ok=reason is None,
            reset_at=reset_at,
            used_tokens=used_tokens,
            used_spend=nanos / NANO,
            reason=reason,
            reserved_tokens=max(reserved[0], 0),
            reserved_spend=max(reserved[1], 0) / NANO,
        )


class StateBackend(abc.ABC):
    """The interface both backends implement; every method is one round trip to the store."""

    # -- key pool: rate windows, quotas, cooldowns, steering ---------------------------

    @abc.abstractmethod
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
        """Atomically check every limit of a key and, if all fit, count one request of ``tokens``.

        Refuses, counting nothing, when the key is marked disabled ("disabled",
        no retry time: see ``disable_key``), when ``key:<key_id>`` or any of ``groups``
        is cooling down ("cooldown"), when the provider's last remaining
        headers said the key is exhausted until a future reset ("steer"), when
        one more request would exceed ``rpm`` or ``tokens`` more would exceed
        ``tpm`` in the last 60 s ("rpm"/"tpm"), or when ``tokens`` more would
        exceed ``quota`` in the current aligned ``quota_window_s`` window
        ("quota"). None means unlimited. If several fail, ``reason`` names the
        one that keeps the request out longest.
        """

    @abc.abstractmethod
    async def record_tokens(self, key_id: str, tokens_delta: int, *, at: float | None = None) -> None:
        """Correct a key's tpm window and quota by ``tokens_delta`` (real minus estimated; may be negative).

        ``at`` is ``Acquired.at`` of the request being corrected (default:
        now); a correction for a window that has already ended is dropped.
        """

    @abc.abstractmethod
    async def clear_quota(self, key_id: str) -> None:
        """Forget what ``key_id``'s current quota window has counted (a sign-in that succeeds, byok.login_throttle)."""

    @abc.abstractmethod
    async def note_remaining(
        self,
        key_id: str,
        *,
        remaining_requests: int | None,
        remaining_tokens: int | None,
        reset_at: float | None,
    ) -> None:
        """Remember a provider's remaining-requests/tokens headers for a key until ``reset_at``.

        Until then, ``acquire`` refuses with "steer" when no requests remain or
        fewer tokens remain than asked, and counts its own requests down from
        these numbers. A note without a future ``reset_at`` clears the hint.
        """

    @abc.abstractmethod
    async def disable_key(self, key_id: str, *, ttl_s: float = DISABLED_TTL_S) -> None:
        """Mark a key unusable for every process at once (a revoke): ``acquire`` refuses it from now on.

        Every process checks the mark in the same atomic step that takes a
        request's slot, so a process whose cached configuration still lists
        the key cannot use it. ``ttl_s`` only bounds how long the mark is kept.
        """

    @abc.abstractmethod
    async def cooldown(self, group: str, until: float) -> float:
        """Cool a scope (``"key:<id>"`` or ``"group:<name>"``) down until ``until``; return the effective until.

        A later ``until`` extends an active cooldown; an earlier one never shortens it.
        """

    @abc.abstractmethod
    async def cooldown_until(self, groups: Sequence[str]) -> float | None:
        """The latest active cooldown among ``groups``, or None if none is cooling down."""

    @abc.abstractmethod
    async def clear_cooldown(self, group: str) -> None:
        """End a scope's cooldown now (an admin re-enabling a key or group)."""

    # -- budgets ----------------------------------------------------------------------

    @abc.abstractmethod
    async def spend(self, scope: str, *, tokens: int, cost: float, period: Period) -> Spent:
        """Add ``tokens`` and ``cost`` to ``scope``'s counters for the current UTC ``period``."""

    @abc.abstractmethod
    async def check_budget(
        self,
        scope: str,
        *,
        token_limit: int | None,
        spend_limit: float | None,
        period: Period,
    ) -> BudgetStatus:
        """Whether ``scope`` is still under its limits (None = unlimited) in the current UTC ``period``, with what
        requests in flight hold of it."""

    # -- the request gate: rate slots and budget reservations, all or nothing (byok.state.quota) --------

    @abc.abstractmethod
    async def reserve(
        self, *, rates: Sequence[Rate], tokens: int, holds: Sequence[Hold], lease_s: float = LEASE_S
    ) -> Admission:
        """Atomically take one request of ``tokens`` in every rate scope's window and reserve every hold, or nothing.

        A rate scope refuses ("rpm"/"tpm") as ``acquire`` does; a budget refuses
        ("tokens"/"spend") when spent + reserved + the hold's worst case would
        exceed its limit. The refusal that keeps the request out longest is
        reported. Expired leases are dropped first.
        """

    @abc.abstractmethod
    async def settle(
        self, reservation: Reservation, *, tokens: int, nanos: int, also: Sequence[tuple[str, str]] = ()
    ) -> None:
        """Replace a reservation by the real usage: ``tokens`` (rate windows and budgets) and ``nanos`` (budgets).

        Each hold's reservation is returned (if its lease has not ended) and the
        real usage added to the same period's counters; rate windows are
        corrected by real minus reserved tokens. ``also``: (scope, period)
        counters that take the usage without a reservation (provider-key
        budgets). Zero usage is a release.
        """

    # -- configuration version ---------------------------------------------------------

    @abc.abstractmethod
    async def bump_version(self) -> int:
        """Increment the shared configuration version (after a revoke, rotate, edit); return it."""

    @abc.abstractmethod
    async def version(self) -> int:
        """The shared configuration version (0 before any bump). See ``VersionWatcher``."""

    # -- lifecycle -----------------------------------------------------------------------

    @abc.abstractmethod
    async def ping(self) -> bool:
        """True when the store answers; raises ``StateUnavailable`` when it does not."""

    @abc.abstractmethod
    async def close(self) -> None:
        """Release connections; the backend must not be used afterwards."""
