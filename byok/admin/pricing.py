"""Prices and spend in the admin: catalog overrides, budgets with this period's use, the spend report."""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django.conf import settings
from django.contrib import admin
from django.template.response import TemplateResponse

from byok.admin import formats
from byok.admin.base import AuditedAdmin, ReadOnlyAdmin
from byok.audit import actor_from_request
from byok.changes import Change
from byok.models import Budget, CatalogOverride, SpendReport


@admin.register(CatalogOverride)
class CatalogOverrideAdmin(AuditedAdmin):
    """Admins' figures over the shipped catalog (or for models it does not know); one audit event per change."""

    list_display = ("provider", "model", "window", "max_output", "prices", "as_of", "enabled")
    list_filter = ("provider", "enabled")
    search_fields = ("provider", "model", "note")
    readonly_fields = ("shipped_figures", "created_at", "updated_at")

    @staticmethod
    def _noun(obj) -> str:
        return "catalog.override"

    @admin.display(description="context window", ordering="context_window")
    def window(self, obj: CatalogOverride) -> str:
        return formats.thousands(obj.context_window) if obj.context_window is not None else "(shipped)"

    @admin.display(description="max output", ordering="max_output_tokens")
    def max_output(self, obj: CatalogOverride) -> str:
        return formats.thousands(obj.max_output_tokens) if obj.max_output_tokens is not None else "(shipped)"

    @admin.display(description="per 1M tokens: in / cached / out")
    def prices(self, obj: CatalogOverride) -> str:
        figures = (obj.input_per_mtok, obj.cached_input_per_mtok, obj.output_per_mtok)
        return " / ".join(formats.usd(f) if f is not None else "(shipped)" for f in figures)

    @admin.display(description="shipped catalog says")
    def shipped_figures(self, obj: CatalogOverride) -> str:
        from byok.catalog import Catalog, file_entries

        info = Catalog(file_entries()).lookup(obj.provider, obj.model) if obj.provider and obj.model else None
        if info is None:
            return "not in the shipped catalog"
        return (
            f"{info.model}: window {formats.thousands(info.context_window)}, "
            f"output {formats.thousands(info.max_output_tokens)}, {formats.usd(info.input_per_mtok)} in / "
            f"{formats.usd(info.cached_input_per_mtok)} cached / {formats.usd(info.output_per_mtok)} out per 1M "
            f"(as of {info.as_of})"
        )


@admin.register(Budget)
class BudgetAdmin(AuditedAdmin):
    """Token and spend budgets per user or key; shows this period's use from the shared state."""

    list_display = ("__str__", "period", "tokens", "spend", "enabled", "used_this_period")
    list_filter = ("period", "enabled")
    search_fields = ("user__username", "key__hint", "key__label", "note")
    raw_id_fields = ("user", "key")
    readonly_fields = ("used_this_period", "created_at", "updated_at")

    def _record(self, request, action: str, obj, details: dict | None = None) -> None:
        details = {
            **(details or {}),
            "scope": obj.scope,
            "period": obj.period,
            "token_limit": obj.token_limit,
            "spend_limit": str(obj.spend_limit) if obj.spend_limit is not None else None,
        }
        Change(actor_from_request(request)).record(action, target=obj, key=obj.key, details=details)

    @admin.display(description="token limit", ordering="token_limit")
    def tokens(self, obj: Budget) -> str:
        return formats.thousands(obj.token_limit) if obj.token_limit is not None else "none"

    @admin.display(description="spend limit", ordering="spend_limit")
    def spend(self, obj: Budget) -> str:
        return formats.usd(obj.spend_limit) if obj.spend_limit is not None else "none"

    @admin.display(description="used this period")
    def used_this_period(self, obj: Budget) -> str:
        if obj.pk is None:
            return "—"
        from byok.budget_store import budget_rows
        from byok.state import get_state_backend

        async def read():
            state = get_state_backend(settings.REDIS_URL)
            try:
                return (await budget_rows(state, [obj]))[0]
            finally:
                await state.close()

        try:
            row = async_to_sync(read)()
        except Exception as exc:  # the shared state may be down: the page still shows
            return f"unavailable ({type(exc).__name__})"
        flag = " — exceeded" if row["exceeded"] else ""
        used = f"{formats.thousands(row['used_tokens'])} tokens, {formats.usd(row['used_spend'])}"
        return f"{used} (resets {row['resets_at']}){flag}"


@admin.register(SpendReport)
class SpendReportAdmin(ReadOnlyAdmin):
    """One page of spend totals by provider, key, user, model and day."""

    GROUPS = (
        ("provider", "provider"),
        ("key", "key (fingerprint)"),
        ("user", "user"),
        ("model", "model"),
        ("day", "day"),
    )

    def has_view_permission(self, request, obj=None) -> bool:
        return request.user.has_perm("byok.view_usagerecord")

    def changelist_view(self, request, extra_context=None):
        from datetime import timedelta

        from django.contrib.auth import get_user_model

        from byok.budget_store import spend_summary
        from byok.gateway.usage import now_utc

        try:
            days = max(1, min(int(request.GET.get("days", "30")), 3660))
        except ValueError:
            days = 30
        since = now_utc() - timedelta(days=days)
        names = dict(get_user_model().objects.values_list("pk", "username"))
        sections = []
        for group, title in self.GROUPS:
            rows = spend_summary(by=(group,), since=since)
            for row in rows:
                value = row[group]
                row["label"] = names.get(value, value) if group == "user" else value
            sections.append({"title": title, "rows": rows})
        context = {
            **self.admin_site.each_context(request),
            "title": "Spend report",
            "sections": sections,
            "days": days,
            "opts": self.model._meta,
            **(extra_context or {}),
        }
        return TemplateResponse(request, "admin/byok/spendreport/report.html", context)
