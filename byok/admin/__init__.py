"""byok's admin, one module per job; Django's autodiscovery imports this package, which registers them all.

- ``base``: audited saves/deletes and read-only pages every admin class builds on
- ``providers``: providers and failover policies; ``keys``: provider keys and their actions
- ``records``: the audit log and usage records (read-only)
- ``pricing``: catalog overrides, budgets, the spend report
- ``gateway``: gateway keys, teams and API tokens (no secret shown; a new one once)
- ``users``: Django's user pages, each change audited

A new admin page: add a module here (``byok/admin/<job>.py``) that registers its
ModelAdmin classes with ``@admin.register``, and import it below.
"""

from byok.admin import gateway, keys, pricing, providers, records, users

__all__ = ["gateway", "keys", "pricing", "providers", "records", "users"]
