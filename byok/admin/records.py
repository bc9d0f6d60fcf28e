"""The records admins read and never edit: the audit log and the usage records."""

from __future__ import annotations

from django.contrib import admin

from byok.admin.base import ReadOnlyAdmin
from byok.models import AuditEvent, UsageRecord


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "actor",
        "action",
        "target_repr",
        "provider_name",
        "key_fingerprint",
        "source_address",
    )
    list_filter = ("action", "actor", "provider_name", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor", "action", "target_repr", "provider_name", "key_fingerprint")
    date_hierarchy = "created_at"


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = (
        "created_at",
        "user",
        "provider_name",
        "model",
        "key_hint",
        "status",
        "attempts",
        "tokens_in",
        "tokens_out",
        "latency_ms",
        "cost",
    )
    list_filter = ("status", "provider_name", "interface", ("created_at", admin.DateFieldListFilter))
    search_fields = ("request_id", "model", "provider_name", "key_hint")
    date_hierarchy = "created_at"
