"""What the request gate asks of the shared state in one atomic step: rate slots and budget reservations.

    got = await state.reserve(rates=[Rate("gk:7", rpm=10, tpm=None)], tokens=120,
                              holds=[Hold("user:3", "day", token_limit=None, spend_limit=5.0,
                                          tokens=16_500, nanos=250_000_000)])
    if not got:
        ...  # got.reason: rpm | tpm (a rate scope) or tokens | spend (a budget); got.retry_at; got.scope
    ...      # call the provider
    await state.settle(got.reservation, tokens=real_tokens, nanos=real_cost_nanos)

``reserve`` checks every rate scope's 60 s window (the key pool's own window
machinery, ``byok.state.windows``) and every budget's spent + reserved +
this request's worst case against its limit, and either counts all of it or
nothing: N concurrent requests against a budget that fits K serve at most K,
in one process or in many sharing Redis. ``settle`` turns the reservation into
the real usage (the rate windows' tokens corrected, the budgets' reservation
returned and the real spend added), zero usage being a release. A
reservation that is never settled (a process killed mid-request) stops
counting when its lease ends (``lease_s``), so a crash cannot eat a budget.

Spend is in integer billionths of a dollar (``NANO``), as the budget counters are.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

from byok.state.windows import calendar_period

__all__ = [
    "LEASE_S",
    "Admission",
    "Hold",
    "HoldAt",
    "QuotaReason",
    "Rate",
    "Reservation",
    "over_budget",
    "place_holds",
    "refusal",
]

# How long an unsettled reservation counts against its budget: longer than any request should run.
LEASE_S = 900.0

QuotaReason = Literal["rpm", "tpm", "tokens", "spend"]


@dataclass(frozen=True, slots=True)
class Rate:
    """A rate-limited scope (a gateway key ``gk:<id>``, a team ``team:<id>``): requests and tokens per minute."""

    scope: str
    rpm: int | None
    tpm: int | None


@dataclass(frozen=True, slots=True)
class Hold:
    """What one budget must hold for a request: its counter scope, period, limits and the request's worst case."""

    scope: str
    period: str
    token_limit: int | None
    spend_limit: float | None  # USD
    tokens: int
    nanos: int

    @property
    def nano_limit(self) -> int | None:
        return None if self.spend_limit is None else round(self.spend_limit * 1_000_000_000)


@dataclass(frozen=True, slots=True)
class HoldAt:
    """A hold placed in one calendar period: the period's id fixes which counters it lives in."""

    hold: Hold
    period_id: str
    reset_at: float


def place_holds(holds: Sequence[Hold], now: float) -> list[HoldAt]:
    """Each hold in the calendar period containing ``now``."""
    out = []
    for h in holds:
        period_id, reset_at = calendar_period(now, h.period)
        out.append(HoldAt(h, period_id, reset_at))
    return out


@dataclass(frozen=True, slots=True)
class Reservation:
    """What a successful ``reserve`` counted, so that ``settle`` can correct exactly that."""

    id: str
    at: float  # the rate windows' bucket time
    rates: tuple[str, ...]  # the rate scopes whose windows counted ``tokens``
    tokens: int
    holds: tuple[HoldAt, ...] = ()

    @classmethod
    def new(cls, at: float, rates: Sequence[Rate], tokens: int, holds: Sequence[HoldAt]) -> Reservation:
        return cls(
            uuid.uuid4().hex,
            at,
            tuple(r.scope for r in rates if r.rpm is not None or r.tpm is not None),
            tokens,
            tuple(holds),
        )

    @property
    def empty(self) -> bool:
        return not self.rates and not self.holds


@dataclass(frozen=True, slots=True)
class Admission:
    """The answer to ``reserve``: the reservation made, or the scope that refused, why and until when.

    For a budget refusal ``used_*``/``reserved_*`` are that budget's figures
    (spent and held by requests in flight) and ``retry_at`` is its period's
    reset; for a rate refusal ``retry_at`` is when the window frees enough
    (None: never, the request alone is over the limit).
    """

    ok: bool
    reservation: Reservation | None = None
    reason: QuotaReason | None = None
    scope: str = ""
    retry_at: float | None = None
    limit: float | None = None
    used_tokens: int = 0
    used_nanos: int = 0
    reserved_tokens: int = 0
    reserved_nanos: int = 0
    period: str = ""

    def __bool__(self) -> bool:
        return self.ok


def over_budget(h: Hold, tokens: int, nanos: int, held_tokens: int, held_nanos: int) -> QuotaReason | None:
    """Which limit of ``h`` spent + held + the hold's worst case would exceed, if any (tokens first)."""
    if h.token_limit is not None and tokens + held_tokens + h.tokens > h.token_limit:
        return "tokens"
    limit = h.nano_limit
    if limit is not None and nanos + held_nanos + h.nanos > limit:
        return "spend"
    return None


def refusal(p: HoldAt, reason: QuotaReason, tokens: int, nanos: int, held_tokens: int, held_nanos: int) -> Admission:
    """The refusal of a budget, with its figures."""
    h = p.hold
    return Admission(
        ok=False,
        reason=reason,
        scope=h.scope,
        retry_at=p.reset_at,
        limit=float(h.token_limit) if reason == "tokens" else h.spend_limit,  # type: ignore[arg-type]
        used_tokens=tokens,
        used_nanos=nanos,
        reserved_tokens=held_tokens,
        reserved_nanos=held_nanos,
        period=h.period,
    )
