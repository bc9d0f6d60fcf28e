"""Signals byok sends; `config_changed` fires after any committed provider or key change."""

from django.dispatch import Signal

__all__ = ["config_changed"]

# Sent after commit with `provider_id`; the handler drops its caches and tells
# other processes (through the shared state's config version).
config_changed = Signal()
