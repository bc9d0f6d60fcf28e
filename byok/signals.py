"""Signals byok sends, after commit: `config_changed` on any provider or key change, `key_revoked` on a revoke."""

from django.dispatch import Signal

__all__ = ["config_changed", "key_revoked"]

# Sent after commit with `provider_id`; the handler drops its caches and tells
# other processes (through the shared state's config version).
config_changed = Signal()

# Sent after a key revoke commits, with `provider` (its name) and `key_hint`; the
# websocket layer tells open sockets on every process (`byok.ws.broadcast`).
key_revoked = Signal()
