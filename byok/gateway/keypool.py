"""Choosing a usable key from a provider's pool, and feeding back what the provider said.

Keys are tried round-robin; each is asked of the shared state (`acquire`),
which refuses keys cooling down, over their rpm/tpm window or quota, or
steered away by the provider's remaining-requests headers.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Awaitable, Callable

from byok.gateway.config_cache import KeyConfig, ProviderConfig
from byok.providers.types import RateLimitInfo, Usage
from byok.state import StateBackend, group_scope, key_scope

__all__ = ["KeyPool"]


class KeyPool:
    """Round-robin key selection over the shared state's limits."""

    def __init__(self) -> None:
        self._next: defaultdict[int, int] = defaultdict(int)

    @staticmethod
    def scope(key: KeyConfig) -> str:
        """What a 429 cools down: the key's quota group if it has one, else the key."""
        return group_scope(key.quota_group) if key.quota_group else key_scope(key.id)

    async def pick(
        self,
        state: StateBackend,
        provider: ProviderConfig,
        *,
        tokens: int,
        exclude: set[int],
        now: float,
        blocked: Callable[[KeyConfig], Awaitable[float | None]] | None = None,
    ) -> tuple[KeyConfig | None, float | None]:
        """A key that took this request's slot, or (None, earliest time one could).

        ``blocked(key)``, if given, returns when a key over its budget may serve
        again (byok.budgets); such a key is skipped like a key over quota.
        """
        keys = [k for k in provider.keys if k.id not in exclude and k.usable_at(now)]
        if not keys:
            return None, None
        start = self._next[provider.id] % len(keys)
        self._next[provider.id] += 1
        earliest: float | None = None
        for key in keys[start:] + keys[:start]:
            until = await blocked(key) if blocked is not None else None
            if until is not None:
                earliest = until if earliest is None else min(earliest, until)
                continue
            got = await state.acquire(
                str(key.id),
                rpm=key.rpm,
                tpm=key.tpm,
                tokens=tokens,
                quota=key.token_quota,
                quota_window_s=key.quota_window_s,
                groups=(group_scope(key.quota_group),) if key.quota_group else (),
            )
            if got:
                return key, None
            if got.retry_at is not None and (earliest is None or got.retry_at < earliest):
                earliest = got.retry_at
        return None, earliest

    async def note_headers(self, state: StateBackend, key: KeyConfig, info: RateLimitInfo, now: float) -> None:
        """Remember the provider's remaining counts so the pool steers away before a 429."""
        if info.remaining_requests is None and info.remaining_tokens is None:
            return
        resets = [r for r in (info.reset_requests_s, info.reset_tokens_s) if r is not None]
        await state.note_remaining(
            str(key.id),
            remaining_requests=info.remaining_requests,
            remaining_tokens=info.remaining_tokens,
            reset_at=now + max(resets) if resets else None,
        )

    async def record_usage(self, state: StateBackend, key: KeyConfig, usage: Usage, *, estimated: int) -> None:
        """Correct the key's token windows from the estimate to what the provider counted."""
        actual = usage.input_tokens + usage.output_tokens
        if actual and (key.tpm or key.token_quota):
            await state.record_tokens(str(key.id), actual - estimated)
