"""An in-process snapshot of providers, keys and failover policies, for the hot path.

    cache = ConfigCache(state_factory=..., clock=time.monotonic, poll_s=0.5, on_load=gate.preload)
    snapshot = await cache.get()     # no database round trip unless something changed
    cache.invalidate()               # a local change (`config_changed`)

Loading it costs a few queries; `ConfigCache` keeps it until a change is
announced (`config_changed` in this process, the shared config version for
the others, looked at no more than every `poll_s`), so a chat request makes
no database round trip for routing. Every change, local or announced, bumps a
generation: a load that started before it serves the requests waiting for it
once but is never kept, so a reload racing a revoke cannot install old rows.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from byok.budget_store import load_book
from byok.budgets import Book
from byok.crypto import SealedSecret
from byok.models import ApiKey, FailoverPolicy, Provider
from byok.providers import get_adapter
from byok.providers.base import ProviderAdapter
from byok.state import StateBackend, VersionWatcher

__all__ = [
    "ConfigCache",
    "bump_shared_version",
    "KeyConfig",
    "PolicyConfig",
    "ProviderConfig",
    "Snapshot",
    "load_config",
    "load_snapshot",
]

WINDOW_SECONDS = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "month": 30 * 86400.0}


log = logging.getLogger("byok.config")


@dataclass(frozen=True, slots=True)
class KeyConfig:
    id: int
    provider_id: int
    hint: str
    fingerprint: str
    status: str
    quota_group: str
    rpm: int | None
    tpm: int | None
    token_quota: int | None
    quota_window_s: float | None
    parked_until: float | None
    sealed: SealedSecret = field(repr=False)

    def usable_at(self, now: float) -> bool:
        if self.status == ApiKey.Status.ACTIVE:
            return True
        return self.status == ApiKey.Status.PARKED and self.parked_until is not None and self.parked_until <= now


@dataclass(frozen=True, slots=True)
class ProviderConfig:
    id: int
    name: str
    kind: str
    base_url: str
    default_model: str
    timeout: float
    max_retries: int
    enabled: bool
    is_default: bool
    priority: int
    keys: tuple[KeyConfig, ...]

    @property
    def adapter(self) -> ProviderAdapter:
        return get_adapter(self.kind)


@dataclass(frozen=True, slots=True)
class PolicyConfig:
    name: str
    primary_id: int
    fallback_ids: tuple[int, ...]
    max_retries: int


@dataclass(frozen=True, slots=True)
class Snapshot:
    by_id: dict[int, ProviderConfig]
    by_name: dict[str, ProviderConfig]
    ordered: tuple[ProviderConfig, ...]  # by priority, then name
    policies: tuple[PolicyConfig, ...]

    @property
    def default(self) -> ProviderConfig | None:
        return next((p for p in self.ordered if p.is_default and p.enabled), None)

    def policy_for(self, primary_id: int | None) -> PolicyConfig | None:
        """The enabled policy whose primary is `primary_id`, or (None) the first enabled policy."""
        for policy in self.policies:
            if primary_id is None or policy.primary_id == primary_id:
                return policy
        return None


def _ts(value: datetime | None) -> float | None:
    return value.timestamp() if value is not None else None


def load_snapshot() -> Snapshot:
    """Read providers, their usable keys and the enabled policies (synchronous ORM)."""
    keys: dict[int, list[KeyConfig]] = {}
    for k in ApiKey.objects.filter(status__in=[ApiKey.Status.ACTIVE, ApiKey.Status.PARKED]).order_by("id"):
        keys.setdefault(k.provider_id, []).append(
            KeyConfig(
                id=k.pk,
                provider_id=k.provider_id,
                hint=k.hint,
                fingerprint=k.fingerprint,
                status=k.status,
                quota_group=k.quota_group,
                rpm=k.rpm,
                tpm=k.tpm,
                token_quota=k.token_quota,
                quota_window_s=WINDOW_SECONDS.get(k.quota_window) if k.token_quota else None,
                parked_until=_ts(k.parked_until),
                sealed=k.secret,  # type: ignore[arg-type]  # the field reads a SealedSecret
            )
        )
    providers = [
        ProviderConfig(
            id=p.pk,
            name=p.name,
            kind=p.kind,
            base_url=p.base_url,
            default_model=p.default_model,
            timeout=p.timeout,
            max_retries=p.max_retries,
            enabled=p.enabled,
            is_default=p.is_default,
            priority=p.priority,
            keys=tuple(keys.get(p.pk, ())),
        )
        for p in Provider.objects.order_by("priority", "name")
    ]
    policies = tuple(
        PolicyConfig(
            name=pol.name,
            primary_id=pol.primary_id,
            fallback_ids=tuple(s.provider_id for s in pol.steps.all()),
            max_retries=pol.max_retries,
        )
        for pol in FailoverPolicy.objects.filter(enabled=True).prefetch_related("steps").order_by("name")
    )
    return Snapshot(
        by_id={p.id: p for p in providers},
        by_name={p.name: p for p in providers},
        ordered=tuple(providers),
        policies=policies,
    )


def load_config() -> tuple[Snapshot, Book]:
    """Providers and keys, and the catalog overrides and budgets, in one hop to the ORM thread."""
    return load_snapshot(), load_book()


class ConfigCache:
    """This process's snapshot and the shared-state backend of each event loop (see the module doc)."""

    def __init__(
        self,
        *,
        state_factory: Callable[[], StateBackend],
        clock: Callable[[], float],
        poll_s: float,
        on_load: Callable[[Snapshot, Book], None],
    ) -> None:
        self._state_factory = state_factory
        self._clock = clock
        self._poll_s = poll_s
        self._on_load = on_load
        self._loops: dict[int, tuple[asyncio.AbstractEventLoop, StateBackend, VersionWatcher, asyncio.Lock]] = {}
        self._snapshot: Snapshot | None = None
        self._generation = 0
        self._forced_refresh_at = float("-inf")

    def invalidate(self) -> None:
        """Forget the snapshot; the next request reloads it (a load under way is not kept)."""
        self._generation += 1
        self._snapshot = None

    def may_refresh(self) -> bool:
        """At most one forced reload a second, so unknown names cannot drive database load."""
        now = self._clock()
        if now - self._forced_refresh_at < 1.0:
            return False
        self._forced_refresh_at = now
        return True

    async def fresh(self) -> Snapshot:
        """The snapshot after asking the shared version now rather than within ``poll_s``: for a name the cached
        one does not know (one Redis round trip; the database is read only when another process announced a change)."""
        self._entry()[2].reset()
        return await self.get()

    def state(self) -> StateBackend:
        """The shared-state backend of the running event loop."""
        return self._entry()[1]

    def _entry(self) -> tuple[asyncio.AbstractEventLoop, StateBackend, VersionWatcher, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        entry = self._loops.get(id(loop))
        if entry is None or entry[0] is not loop:
            backend = self._state_factory()
            entry = (loop, backend, VersionWatcher(backend, self._poll_s, now=self._clock), asyncio.Lock())
            self._loops = {k: v for k, v in self._loops.items() if not v[0].is_closed()}
            self._loops[id(loop)] = entry
        return entry

    async def get(self) -> Snapshot:
        """Providers and keys, reloaded when this or another process changed them."""
        _, _, watcher, loading = self._entry()
        if await watcher.changed():
            self.invalidate()
        snap = self._snapshot
        if snap is not None:
            return snap
        # Single flight: after a change, one load serves every request waiting for it,
        # rather than one database connection per in-flight request.
        async with loading:
            snap = self._snapshot
            if snap is None:
                generation = self._generation
                snap, book = await sync_to_async(load_config, thread_sensitive=True)()
                self._on_load(snap, book)
                if generation == self._generation:
                    self._snapshot = snap
        return snap

    async def aclose(self) -> None:
        """Close the running loop's shared-state backend."""
        entry = self._loops.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()


def bump_shared_version(**kwargs: Any) -> None:
    """Tell every other process (through Redis) that providers or keys changed; they reload within a second.

    Connected to `config_changed` when the app starts, so it runs whether or
    not this process has a handler yet.
    """
    if not settings.REDIS_URL:
        return  # one process: the local invalidation is all there is
    import redis

    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as client:
            client.incr(settings.BYOK["STATE_PREFIX"] + "version")
    except redis.RedisError:
        log.warning("could not announce a configuration change through Redis")
