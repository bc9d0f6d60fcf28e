"""One audited change: the writes, exactly one audit event, and an announcement after commit.

    with audited_change(actor, conflict=lambda: ConflictError("...")) as change:
        key = ...                                             # the writes, in one transaction
        change.record("key.revoke", target=key, details={...})

Every service that changes configuration (providers and keys in `byok.registry`, budgets in
`byok.budget_store`, catalog overrides in `byok.catalog_overrides`, the admin) goes through this,
so a change is one transaction holding at most one audit event, and every process drops its cached
configuration (`config_changed`) once the change is committed, never before and never for a
rolled-back change. A change that turns out to be a no-op (a key revoked already) records nothing
and announces nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from django.db import IntegrityError, models, transaction

from byok import audit
from byok.audit import SYSTEM, Actor
from byok.models import ApiKey, AuditEvent, Provider
from byok.signals import config_changed

__all__ = ["Change", "announce", "audited_change"]


def announce(provider_id: int | None) -> None:
    """Tell every process, once the current transaction commits, that the configuration changed."""
    transaction.on_commit(lambda: config_changed.send(sender=Provider, provider_id=provider_id))


def _provider_id(target: models.Model | None) -> int | None:
    if isinstance(target, Provider):
        return target.pk
    if isinstance(target, ApiKey):
        return target.provider_id
    return None


class Change:
    """The change in progress: `record()` writes its one audit event and schedules the announcement."""

    def __init__(self, actor: Actor) -> None:
        self.actor = actor
        self.event: AuditEvent | None = None

    def record(
        self,
        action: str,
        *,
        target: models.Model | None = None,
        key: ApiKey | None = None,
        details: dict[str, Any] | None = None,
    ) -> AuditEvent:
        if self.event is not None:
            raise RuntimeError(f"one audit event per change: {self.event.action} is recorded already")
        self.event = audit.record(action, actor=self.actor, target=target, key=key, details=details)
        announce(_provider_id(target))
        return self.event


@contextmanager
def audited_change(actor: Actor | None = None, *, conflict: Callable[[], Exception] | None = None) -> Iterator[Change]:
    """A transaction for one change; an `IntegrityError` becomes `conflict()` when given (a 409)."""
    try:
        with transaction.atomic():
            yield Change(actor or SYSTEM)
    except IntegrityError:
        if conflict is None:
            raise
        raise conflict() from None
