"""A request's worst case and what a refusal tells the caller: the pure half of the budget gate's reservations.

    tokens, nanos = worst_case(pairs)                 # prompt + max_tokens (or the model's output limit), priced
    holds = [hold(rule, tokens, nanos) for rule in rules]
    got = await state.reserve(rates=rates, tokens=rate_tokens, holds=holds)
    if not got:
        raise refusal_error(got, now)                 # 429 budget_exceeded / rate_limited, retry_after set

The worst case is what the request may cost if the model writes all it is
allowed to: the estimated prompt (``byok.tokens``) plus ``max_tokens`` as the
max_tokens policy settled it, else the model's output limit from the catalog
(``byok.catalog``), else ``FALLBACK_OUTPUT_TOKENS``; priced at the catalog's
prices (unpriced models reserve tokens, not spend). With failover, the most
expensive target counts. Settling replaces it by the real usage.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

from byok.catalog import ModelInfo
from byok.exceptions import BudgetExceededError, ByokError, RateLimitedError
from byok.providers.types import Usage
from byok.state import NANO
from byok.state.quota import Admission, Hold, Rate

__all__ = [
    "FALLBACK_OUTPUT_TOKENS",
    "describe_scope",
    "grant_limits",
    "hold",
    "output_bound",
    "refusal_error",
    "reset_time",
    "worst_case",
]

# What a request to a model the catalog does not know may write, when it does not say.
FALLBACK_OUTPUT_TOKENS = 4096

_WHOSE = {"user": "Your", "gwkey": "This key's", "team": "Your team's", "apikey": "The provider key's"}


def output_bound(max_tokens: int | None, prompt: int, info: ModelInfo | None) -> int:
    """The most output tokens a request may be billed for: its max_tokens, else what the model allows."""
    if max_tokens is not None:
        return max_tokens
    if info is not None and info.max_output_tokens is not None:
        return info.max_output_tokens
    if info is not None and info.context_window is not None:
        return max(info.context_window - prompt, 0)
    return FALLBACK_OUTPUT_TOKENS


def worst_case(pairs: Sequence[tuple[Any, Any]]) -> tuple[int, int]:
    """(tokens, nano-USD) the request may cost at most, over its targets' ``Prepared`` (``byok.maxtokens``)."""
    tokens = nanos = 0
    for _, p in pairs:
        out = output_bound(p.request.max_tokens, p.prompt_tokens, p.info)
        tokens = max(tokens, p.prompt_tokens + out)
        cost = p.info.cost(Usage(input_tokens=p.prompt_tokens, output_tokens=out)) if p.info is not None else None
        if cost is not None:
            nanos = max(nanos, int(cost * NANO))
    return tokens, nanos


def hold(rule: Any, tokens: int, nanos: int) -> Hold:
    """A budget rule (``byok.budgets.BudgetRule``) holding a request's worst case."""
    return Hold(rule.scope, rule.period, rule.token_limit, rule.spend_limit, tokens, nanos)


def grant_limits(grant: Any) -> tuple[list[Rate], list[tuple[str, str, int | None, float | None]]]:
    """The rate scopes and budgets of a gateway key and its team (``byok.keys.grant.Grant.scopes()``):
    ([Rate], [(scope, period, token limit, spend limit)])."""
    rates, budgets = [], []
    for scope, limits in grant.scopes().items():
        if limits.rpm is not None or limits.tpm is not None:
            rates.append(Rate(scope, limits.rpm, limits.tpm))
        if limits.budget_tokens is not None or limits.budget_spend_usd is not None:
            spend = float(limits.budget_spend_usd) if limits.budget_spend_usd is not None else None
            budgets.append((scope, limits.budget_period, limits.budget_tokens, spend))
    return rates, budgets


def describe_scope(scope: str) -> str:
    """Whose budget or limit a counter scope is, as the start of a sentence."""
    return _WHOSE.get(scope.split(":", 1)[0], "The")


def reset_time(ts: float) -> str:
    """A period's reset time as shown to people (UTC, ISO 8601)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def refusal_error(got: Admission, now: float) -> ByokError:
    """The 429 for a refused reservation: ``budget_exceeded`` (to the period's reset) or ``rate_limited``."""
    whose = describe_scope(got.scope)
    if got.reason in ("rpm", "tpm"):
        unit = "requests" if got.reason == "rpm" else "tokens"
        if got.retry_at is None:
            return RateLimitedError(
                f"{whose} limit of {unit} per minute is lower than this request alone; "
                "lower max_tokens or ask for a higher limit.",
                retry_after=60.0,
            )
        return RateLimitedError(f"{whose} limit of {unit} per minute is reached.", retry_after=got.retry_at - now)
    assert got.retry_at is not None
    period = got.period
    named = "daily" if period == "day" else "monthly"
    used: float
    held: float
    if got.reason == "tokens":
        what, used, held = f"{named} token budget ({got.limit:g} tokens)", got.used_tokens, got.reserved_tokens
    else:
        what, used, held = f"{named} spend budget (${got.limit:g})", got.used_nanos / NANO, got.reserved_nanos / NANO
    return BudgetExceededError(
        f"{whose} {what} is used up or would be exceeded by this request (spent {used:g}, held by requests "
        f"in flight {held:g}, this request's worst case on top); it resets at {reset_time(got.retry_at)}.",
        retry_after=got.retry_at - now,
        period=period,
        reason=got.reason or "",
        limit=got.limit,
        used=used,
    )
