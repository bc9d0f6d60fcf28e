"""Which provider keys cannot serve right now, and until when: the dashboard's "keys" panel.

Two sources: a key's stored status (parked for balance or quota until
``parked_until``, or invalid: the provider refused it), and the shared state's
cooldowns (a key, or its whole quota group, after a 429 or an overload), which
every process sees. When the shared state cannot be reached the panel says so
instead of failing the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

from asgiref.sync import async_to_sync
from django.conf import settings

from byok.models import ApiKey
from byok.state import get_state_backend, group_scope, key_scope


@dataclass(frozen=True)
class KeyState:
    """One key that is not serving: why, and until when (None: until an admin acts)."""

    key: ApiKey
    state: str  # "cooling down", "parked", "invalid"
    until: datetime | None
    reason: str


def _scope(key: ApiKey) -> str:
    return group_scope(key.quota_group) if key.quota_group else key_scope(key.pk)


def cooldowns(keys: list[ApiKey]) -> dict[str, float]:
    """The active cooldown (epoch seconds) of each scope of ``keys`` that has one; raises when the state is down."""
    scopes = sorted({_scope(key) for key in keys})

    async def read() -> dict[str, float]:
        state = get_state_backend(settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"])
        try:
            found = {}
            for scope in scopes:
                until = await state.cooldown_until([scope])
                if until is not None:
                    found[scope] = until
            return found
        finally:
            await state.close()

    return async_to_sync(read)() if scopes else {}


def unavailable_keys() -> tuple[list[KeyState], str | None]:
    """Keys cooling down, parked or invalid now, soonest back first; and an error when the state was unreachable."""
    keys = list(
        ApiKey.objects.select_related("provider").filter(
            status__in=[ApiKey.Status.ACTIVE, ApiKey.Status.PARKED, ApiKey.Status.INVALID]
        )
    )
    found: list[KeyState] = []
    for key in keys:
        if key.status == ApiKey.Status.PARKED:
            found.append(KeyState(key, "parked", key.parked_until, key.last_error))
        elif key.status == ApiKey.Status.INVALID:
            found.append(KeyState(key, "invalid", None, key.last_error))
    active = [key for key in keys if key.status == ApiKey.Status.ACTIVE]
    error = None
    try:
        cooling = cooldowns(active)
    except Exception as exc:  # Redis down: the dashboard still shows, and says what it cannot know
        cooling, error = {}, f"the shared state is unavailable ({type(exc).__name__}): cooldowns unknown"
    for key in active:
        if (until := cooling.get(_scope(key))) is not None:
            scope = f"quota group {key.quota_group}" if key.quota_group else "this key"
            found.append(KeyState(key, "cooling down", datetime.fromtimestamp(until, UTC), scope))
    far = datetime.max.replace(tzinfo=UTC)
    found.sort(key=lambda item: (item.until or far, item.key.pk))
    return found, error
