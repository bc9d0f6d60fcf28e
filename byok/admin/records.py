"""The records admins read and never edit: the audit log and the usage records.

List pages keep to the columns that matter so they fit a 1280 px screen beside
the filters; everything else is on the record's page. Numbers read as people
read them (byok.admin.formats): ``22.4 ms``, ``$0.0123``, ``1,234 → 56``.
"""

from __future__ import annotations

from django.contrib import admin
from django.utils.html import format_html

from byok.admin import formats
from byok.admin.base import ReadOnlyAdmin
from byok.models import AuditEvent, UsageRecord


@admin.register(AuditEvent)
class AuditEventAdmin(ReadOnlyAdmin):
    list_display = ("when", "actor", "action", "target", "provider_name")
    list_filter = ("action", "actor", "provider_name", ("created_at", admin.DateFieldListFilter))
    search_fields = ("actor", "action", "target_repr", "provider_name", "key_fingerprint")
    date_hierarchy = "created_at"
    fields = (
        "created_at",
        "actor",
        "source_address",
        "action",
        "target_type",
        "target_id",
        "target_repr",
        "provider_name",
        "key_fingerprint",
        "details",
    )

    @admin.display(description="time", ordering="created_at")
    def when(self, obj: AuditEvent) -> str:
        return formats.when(obj.created_at)

    @admin.display(description="target", ordering="target_repr")
    def target(self, obj: AuditEvent) -> str:
        return format_html('<span title="{}">{}</span>', obj.target_repr, obj.target_repr)


@admin.register(UsageRecord)
class UsageRecordAdmin(ReadOnlyAdmin):
    list_display = ("when", "user", "provider_name", "model_name", "status", "tokens", "latency", "spend")
    list_filter = ("status", "provider_name", "interface", ("created_at", admin.DateFieldListFilter))
    search_fields = ("request_id", "model", "provider_name", "key_hint")
    date_hierarchy = "created_at"
    list_select_related = ("user",)
    readonly_fields = ("tokens_in_display", "tokens_out_display", "spend", "latency", "ttft", "overhead", "failover")
    fieldsets = (
        (None, {"fields": ("created_at", "request_id", "status", "error_code", "interface", "stream")}),
        ("Caller", {"fields": ("user", "gateway_key", "team")}),
        ("Upstream", {"fields": ("provider_name", "model", "key_hint", "key_fingerprint")}),
        ("Attempts", {"fields": ("attempts", "failover_path")}),
        ("Tokens and spend", {"fields": ("tokens_in_display", "tokens_out_display", "spend")}),
        ("Timing", {"fields": ("latency", "ttft", "overhead", "failover")}),
    )

    @admin.display(description="time", ordering="created_at")
    def when(self, obj: UsageRecord) -> str:
        return formats.when(obj.created_at)

    @admin.display(description="model", ordering="model")
    def model_name(self, obj: UsageRecord) -> str:
        return format_html('<span title="{}">{}</span>', obj.model, obj.model)

    @admin.display(description="tokens in → out")
    def tokens(self, obj: UsageRecord) -> str:
        return f"{formats.thousands(obj.tokens_in)} → {formats.thousands(obj.tokens_out)}"

    @admin.display(description="latency", ordering="latency_ms")
    def latency(self, obj: UsageRecord) -> str:
        return formats.ms(obj.latency_ms)

    @admin.display(description="cost", ordering="cost")
    def spend(self, obj: UsageRecord) -> str:
        return formats.usd(obj.cost) if obj.cost is not None else "unpriced"

    @admin.display(description="tokens in")
    def tokens_in_display(self, obj: UsageRecord) -> str:
        return formats.thousands(obj.tokens_in)

    @admin.display(description="tokens out")
    def tokens_out_display(self, obj: UsageRecord) -> str:
        return formats.thousands(obj.tokens_out)

    @admin.display(description="time to first token")
    def ttft(self, obj: UsageRecord) -> str:
        return formats.ms(obj.ttft_ms)

    @admin.display(description="byok overhead")
    def overhead(self, obj: UsageRecord) -> str:
        return formats.ms(obj.overhead_ms)

    @admin.display(description="failed attempts took")
    def failover(self, obj: UsageRecord) -> str:
        return formats.ms(obj.failover_ms)
