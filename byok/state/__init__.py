"""Shared state for the key pool and budgets: rate windows, cooldowns, quotas, budgets, config version.

``get_state_backend(settings.REDIS_URL)`` gives the Redis backend when a URL
is set (every process on every machine shares one state) and the in-memory
backend otherwise (one process). See ``byok.state.base.StateBackend`` for the
interface and ``VersionWatcher`` for cheap cache invalidation.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence

from byok.state.base import (
    DISABLED_TTL_S,
    NANO,
    Acquired,
    BudgetStatus,
    Period,
    Reason,
    Spent,
    StateBackend,
    StateUnavailable,
    group_scope,
    key_scope,
)
from byok.state.memory import MemoryStateBackend, MemoryStore
from byok.state.watcher import VersionWatcher

__all__ = [
    "NANO",
    "Acquired",
    "BudgetStatus",
    "MemoryStateBackend",
    "MemoryStore",
    "Period",
    "Reason",
    "Spent",
    "StateBackend",
    "StateUnavailable",
    "VersionWatcher",
    "disable_keys",
    "get_state_backend",
    "group_scope",
    "key_scope",
]

# Without Redis, every backend of the process shares this store, so limits are per process
# even if several handlers are built.
_PROCESS_STORE = MemoryStore()


def disable_keys(
    key_ids: Sequence[object], *, redis_url: str | None, prefix: str = "byok:", ttl_s: float = DISABLED_TTL_S
) -> None:
    """Mark revoked keys unusable in the shared state, synchronously (see ``StateBackend.disable_key``).

    Called by the registry when a revoke commits, before the API answers; with
    Redis every process sees the mark in its next key acquire, without it this
    process's store does.
    """
    if redis_url:
        from byok.state.redis import disable_keys_sync

        disable_keys_sync(redis_url, prefix, key_ids, ttl_s)
        return
    until = time.time() + ttl_s
    with _PROCESS_STORE.lock:
        for key_id in key_ids:
            _PROCESS_STORE.disabled[str(key_id)] = until


def get_state_backend(
    redis_url: str | None,
    *,
    prefix: str = "byok:",
    now: Callable[[], float] = time.time,
) -> StateBackend:
    """The Redis backend for ``redis_url``, or the process-wide in-memory one when it is empty.

    Create one per process (per event loop, for Redis) and reuse it; creating
    it does not connect (the first operation does; ``await ping()`` checks).
    """
    if redis_url:
        from byok.state.redis import RedisStateBackend  # imported lazily: redis is only needed with a URL

        return RedisStateBackend(redis_url, prefix=prefix, now=now)
    return MemoryStateBackend(now=now, store=_PROCESS_STORE)
