"""Messages to open sockets on every server process, through the channel layer.

Each authenticated socket joins `byok.user.<id>` and `byok.all` (Redis with
`REDIS_URL`, so every process is reached; in memory otherwise, this process
only). Senders:

- `broadcast_stop()`: the `ws_stop` management command; sockets stop their running requests.
- `broadcast_key_revoked()`: the registry's `key_revoked` signal, sent after a revoke commits
  (connected in `ByokConfig.ready`); sockets stop requests routed to that provider.
- `broadcast_credentials_changed()`: a token deleted or a user deactivated/deleted, after commit;
  that user's sockets re-check their credential at once and close with 4401 when it is gone.
"""

from __future__ import annotations

import logging
from typing import Any

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.db import transaction
from django.db.models.signals import post_save

__all__ = [
    "ALL_GROUP",
    "abroadcast_stop",
    "broadcast_credentials_changed",
    "broadcast_key_revoked",
    "broadcast_stop",
    "on_key_revoked",
    "on_token_deleted",
    "on_user_changed",
    "user_group",
]

log = logging.getLogger("byok.ws")

ALL_GROUP = "byok.all"


def user_group(user_id: int) -> str:
    return f"byok.user.{user_id}"


async def _group_send(group: str, message: dict) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(group, message)
    except Exception:
        log.warning("could not send %s to channel-layer group %s", message.get("type"), group, exc_info=True)
        return False
    return True


async def abroadcast_stop(user_id: int | None = None, reason: str = "") -> bool:
    """Stop the running requests of every socket (or of one user's sockets), on every server process."""
    group = user_group(user_id) if user_id is not None else ALL_GROUP
    return await _group_send(group, {"type": "byok.stop", "reason": reason or "Stopped by an administrator."})


def broadcast_stop(user_id: int | None = None, reason: str = "") -> bool:
    """`abroadcast_stop()` from synchronous code (views, admin actions, management commands)."""
    return async_to_sync(abroadcast_stop)(user_id, reason)


def broadcast_key_revoked(provider: str, key_hint: str | None) -> bool:
    """Tell every socket that a key of `provider` was revoked (they stop requests routed there)."""
    return async_to_sync(_group_send)(
        ALL_GROUP, {"type": "byok.key_revoked", "provider": provider, "key_hint": key_hint}
    )


def broadcast_credentials_changed(user_id: int) -> bool:
    """Tell one user's sockets to re-check their credential now (a token of theirs went, or the user did)."""
    return async_to_sync(_group_send)(user_group(user_id), {"type": "byok.credentials_changed", "user_id": user_id})


# -- receivers, connected in ByokConfig.ready ---------------------------------------------------------


def on_key_revoked(sender: Any, provider: str, key_hint: str | None, **kwargs: Any) -> None:
    """`byok.signals.key_revoked` (sent by the registry after the revoke committed)."""
    broadcast_key_revoked(provider, key_hint)


def on_token_deleted(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A DRF token was deleted (API, admin, command, cascade): its owner's sockets re-check, after commit."""
    user_id = instance.user_id
    transaction.on_commit(lambda: broadcast_credentials_changed(user_id))


def on_user_changed(sender: Any, instance: Any, **kwargs: Any) -> None:
    """A user was deactivated or deleted: their sockets re-check (and close), after commit."""
    if kwargs.get("signal") is post_save and instance.is_active:
        return
    user_id = instance.pk
    transaction.on_commit(lambda: broadcast_credentials_changed(user_id))
