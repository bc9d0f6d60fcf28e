"""Writing audit events: who did what to which provider or key, from where.

    record("key.revoke", actor=actor, target=key, provider=key.provider)

Details are scrubbed of anything key-shaped before they are stored.
"""

from __future__ import annotations

import ipaddress
from dataclasses import dataclass
from typing import Any

from django.db import models

from byok.models import ApiKey, AuditEvent, Provider
from byok.secrets import redact

__all__ = ["Actor", "SYSTEM", "actor_from_request", "client_address", "record"]


@dataclass(frozen=True, slots=True)
class Actor:
    """Who made a change and from which address."""

    name: str
    address: str | None = None


SYSTEM = Actor("system")


def actor_from_request(request) -> Actor:
    """The logged-in user and the client address of a Django/DRF request."""
    user = getattr(request, "user", None)
    name = user.get_username() if user is not None and user.is_authenticated else "anonymous"
    return Actor(name, client_address(request))


def client_address(request) -> str | None:
    """The client's address: the peer's, or, when the peer is a proxy on this machine, the X-Real-IP it sets.

    deploy/nginx/byok.conf overwrites X-Real-IP with the address it saw, so behind it this is the real
    client; from any other peer the header is ignored (anyone could send it).
    """
    peer = _address(request.META.get("REMOTE_ADDR"))
    if peer is not None and ipaddress.ip_address(peer).is_loopback:
        relayed = _address(request.META.get("HTTP_X_REAL_IP", "").strip())
        if relayed is not None:
            return relayed
    return peer


def _address(value: str | None) -> str | None:
    try:
        return str(ipaddress.ip_address(value)) if value else None
    except ValueError:
        return None


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return redact(value)
    if isinstance(value, dict):
        return {str(k): _scrub(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_scrub(v) for v in value]
    return value


def record(
    action: str,
    *,
    actor: Actor = SYSTEM,
    target: models.Model | None = None,
    provider: Provider | None = None,
    key: ApiKey | None = None,
    details: dict[str, Any] | None = None,
) -> AuditEvent:
    """Append one audit event (call inside the change's own transaction)."""
    if provider is None and isinstance(target, Provider):
        provider = target
    if key is None and isinstance(target, ApiKey):
        key = target
    if provider is None and key is not None:
        provider = key.provider
    return AuditEvent.objects.create(
        actor=actor.name[:150],
        action=action,
        target_type=type(target).__name__.lower() if target is not None else "",
        target_id=str(target.pk) if target is not None and target.pk is not None else "",
        target_repr=redact(str(target))[:200] if target is not None else "",
        provider_name=provider.name if provider is not None else "",
        key_fingerprint=key.fingerprint if key is not None else "",
        source_address=actor.address,
        details=_scrub(details or {}),
    )
