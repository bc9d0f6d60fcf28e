"""An in-process snapshot of providers, keys and failover policies, for the hot path.

Loading it costs three queries; the handler keeps it until a change is
announced (`config_changed` in this process, the shared config version for
the others), so a chat request makes no database round trip for routing.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from byok.crypto import SealedSecret
from byok.models import ApiKey, FailoverPolicy, Provider
from byok.providers import get_adapter
from byok.providers.base import ProviderAdapter

__all__ = ["KeyConfig", "PolicyConfig", "ProviderConfig", "Snapshot", "load_snapshot"]

WINDOW_SECONDS = {"minute": 60.0, "hour": 3600.0, "day": 86400.0, "month": 30 * 86400.0}


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
        keys.setdefault(k.provider_id, []).append(KeyConfig(
            id=k.pk, provider_id=k.provider_id, hint=k.hint, fingerprint=k.fingerprint, status=k.status,
            quota_group=k.quota_group, rpm=k.rpm, tpm=k.tpm, token_quota=k.token_quota,
            quota_window_s=WINDOW_SECONDS.get(k.quota_window) if k.token_quota else None,
            parked_until=_ts(k.parked_until), sealed=k.secret,
        ))
    providers = [
        ProviderConfig(
            id=p.pk, name=p.name, kind=p.kind, base_url=p.base_url, default_model=p.default_model,
            timeout=p.timeout, max_retries=p.max_retries, enabled=p.enabled, is_default=p.is_default,
            priority=p.priority, keys=tuple(keys.get(p.pk, ())),
        )
        for p in Provider.objects.order_by("priority", "name")
    ]
    policies = tuple(
        PolicyConfig(
            name=pol.name, primary_id=pol.primary_id,
            fallback_ids=tuple(s.provider_id for s in pol.steps.all()), max_retries=pol.max_retries,
        )
        for pol in FailoverPolicy.objects.filter(enabled=True).prefetch_related("steps").order_by("name")
    )
    return Snapshot(
        by_id={p.id: p for p in providers}, by_name={p.name: p for p in providers},
        ordered=tuple(providers), policies=policies,
    )
