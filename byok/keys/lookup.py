"""The hot path: a gateway key -> its owner and `Grant`, cached in process, refused at once everywhere.

    user, grant = await verify("byok_…")     # KeyRejected: invalid_key / key_revoked / key_expired

A verified key is kept in process by its digest (never the key), so a request with a
known key runs no query and no thread. Freshness across processes: every change to a
key or team commits, then bumps one shared counter (`STATE_PREFIX + "gwkeys:version"`
in Redis) *before the API answers*; each request reads that counter (one GET) and an
entry loaded at another version is loaded again. So a key revoked through one process
is refused by the very next request through any other. Without `REDIS_URL` there is
one process and the counter is a local integer (no round trip). If Redis does not
answer, entries younger than `CACHE_TTL_S` are used and older ones are read again from
the database. A local change drops this process's entries at once.

`last_used_at` is not written here: the usage writer stamps it off the request path
(at most once a minute per key).
"""

from __future__ import annotations

import asyncio
import copy
import logging
import threading
import time
from dataclasses import dataclass
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from byok.keys.grant import Grant, KeyRejected, Limits
from byok.keys.secret import parse, same_digest

__all__ = ["CACHE_TTL_S", "bump_version", "clear_cache", "grant_of", "user_changed", "verify"]

log = logging.getLogger("byok.keys")

CACHE_TTL_S = 5.0  # how long an entry is trusted when the shared counter cannot be read
CACHE_MAX_AGE_S = 60.0  # read again after this long whatever the counter says (a lost announcement)
CACHE_MAX = 10_000
VERSION_KEY = "gwkeys:version"


@dataclass(frozen=True, slots=True)
class _Entry:
    loaded_at: float
    version: tuple[int, int] | None  # read before the row was: a change after it makes the entry stale
    user: Any
    grant: Grant


_cache: dict[str, _Entry] = {}
_lock = threading.Lock()
_local_version = 0  # bumped by every change in this process (the whole counter without Redis)
_clients: dict[int, tuple[Any, Any]] = {}  # event loop id -> (loop, redis.asyncio client)


def clear_cache() -> None:
    global _local_version
    with _lock:
        _cache.clear()
        _local_version += 1


def bump_version() -> None:
    """After a key or team change committed: drop local entries and tell every process (synchronous)."""
    clear_cache()
    if not settings.REDIS_URL:
        return
    import redis

    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2, socket_connect_timeout=2) as client:
            client.incr(settings.BYOK["STATE_PREFIX"] + VERSION_KEY)
    except redis.RedisError:
        log.warning("could not announce a gateway key change through Redis (other processes: within a request)")


def user_changed(sender, instance, **kwargs) -> None:
    """A user saved or deleted (post_save / post_delete): every process re-reads its keys' owners."""
    from django.db import transaction

    transaction.on_commit(bump_version)


def _client():
    """This event loop's Redis client (a client is bound to the loop it was made on)."""
    loop = asyncio.get_running_loop()
    held = _clients.get(id(loop))
    if held is None or held[0] is not loop:
        import redis.asyncio as aioredis

        for key in [k for k, (other, _) in _clients.items() if other.is_closed()]:
            del _clients[key]
        held = _clients[id(loop)] = (loop, aioredis.Redis.from_url(settings.REDIS_URL, socket_timeout=2))
    return held[1]


async def _version() -> tuple[int, int] | None:
    """(shared change counter, local change counter); None when Redis does not answer."""
    local = _local_version
    if not settings.REDIS_URL:
        return 0, local
    try:
        value = await _client().get(settings.BYOK["STATE_PREFIX"] + VERSION_KEY)
    except Exception:  # Redis away: fall back to the entries' age
        log.warning("could not read the gateway key version from Redis", exc_info=True)
        return None
    return int(value or 0), local


def _limits(obj) -> Limits:
    spend = obj.budget_spend_usd
    return Limits(
        models=tuple(obj.models or ()),
        rpm=obj.rpm,
        tpm=obj.tpm,
        budget_tokens=obj.budget_tokens,
        budget_spend_usd=float(spend) if spend is not None else None,
        budget_period=obj.budget_period,
    )


def grant_of(key) -> Grant:
    """The `Grant` of a `GatewayKey` row (its team loaded)."""
    return Grant(
        key_id=key.pk,
        lookup=key.lookup,
        name=key.name,
        user_id=key.user_id,
        team_id=key.team_id,
        key=_limits(key),
        team=_limits(key.team) if key.team_id is not None else None,
        expires_at=key.expires_at.timestamp() if key.expires_at is not None else None,
        revoked=key.revoked_at is not None,
    )


def _load(lookup: str, digest: str, version: tuple[int, int] | None) -> _Entry | None:
    from byok.models import GatewayKey

    for key in GatewayKey.objects.select_related("user", "team").filter(lookup=lookup):
        if same_digest(key.digest, digest):
            return _Entry(time.monotonic(), version, key.user, grant_of(key))
    return None


async def verify(text: str) -> tuple[Any, Grant]:
    """The owner and grant of gateway key ``text``; `KeyRejected` with the reason otherwise."""
    parsed = parse(text)
    if parsed is None:
        raise KeyRejected("invalid_key", "The gateway key is malformed.")
    lookup, digest = parsed
    version = await _version()
    now = time.monotonic()
    entry = _cache.get(digest)
    max_age = CACHE_TTL_S if version is None else CACHE_MAX_AGE_S
    if entry is None or entry.version != version or now - entry.loaded_at > max_age:
        entry = await sync_to_async(_load)(lookup, digest, version)
        if entry is None:
            raise KeyRejected("invalid_key", "Unknown gateway key.")
        with _lock:
            if len(_cache) >= CACHE_MAX:
                _cache.clear()
            _cache[digest] = entry
    grant = entry.grant
    if grant.revoked:
        raise KeyRejected("key_revoked")
    if grant.expires_at is not None and grant.expires_at <= time.time():
        raise KeyRejected("key_expired")
    if not entry.user.is_active:
        raise KeyRejected("invalid_key", "The gateway key's owner is not active.")
    return copy.copy(entry.user), grant
