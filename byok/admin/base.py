"""What every byok admin page shares: audited saves and deletes, read-only pages, the one-time key widget.

Subclass `AuditedAdmin` for a model admins edit (each create, change or
delete writes exactly one audit event, with the admin user and source
address), `ReadOnlyAdmin` for records nobody edits (usage, the audit log).
"""

from __future__ import annotations

from django import forms
from django.contrib import admin
from django.db import transaction

from byok.audit import actor_from_request
from byok.changes import Change
from byok.models import Provider

# A secret is typed once and never rendered back into the page.
KEY_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


class AuditedAdmin(admin.ModelAdmin):
    """Writes one audit event for each object the admin creates, changes or deletes."""

    def _record(self, request, action: str, obj, details: dict | None = None) -> None:
        """The change's one audit event, announced after commit (inside the admin's transaction)."""
        Change(actor_from_request(request)).record(action, target=obj, details=details or {})

    @staticmethod
    def _changes(form) -> dict:
        return {"fields": [f for f in form.changed_data if f != "api_key"]}

    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            if isinstance(obj, Provider) and obj.is_default:
                Provider.objects.filter(is_default=True).exclude(pk=obj.pk).update(is_default=False)
            super().save_model(request, obj, form, change)
            if not change:
                self._record(request, f"{self._noun(obj)}.create", obj)
            elif form.has_changed():
                details = self._changes(form)
                if getattr(form, "secret_changed", False):
                    details["secret_replaced"] = True
                self._record(request, f"{self._noun(obj)}.update", obj, details)

    def delete_model(self, request, obj):
        with transaction.atomic():
            self._record(request, f"{self._noun(obj)}.delete", obj)
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for obj in queryset:
                self._record(request, f"{self._noun(obj)}.delete", obj)
            super().delete_queryset(request, queryset)

    def save_formset(self, request, form, formset, change):
        with transaction.atomic():
            instances = formset.save(commit=False)
            for obj in formset.deleted_objects:
                self._record(request, f"{self._noun(obj)}.delete", obj)
                obj.delete()
            for obj in instances:
                is_new = obj.pk is None
                obj.save()
                sub = next((f for f in formset.forms if f.instance is obj), None)
                if is_new:
                    self._record(request, f"{self._noun(obj)}.create", obj)
                elif sub is not None:
                    details = self._changes(sub)
                    if getattr(sub, "secret_changed", False):
                        details["secret_replaced"] = True
                    self._record(request, f"{self._noun(obj)}.update", obj, details)
            formset.save_m2m()

    @staticmethod
    def _noun(obj) -> str:
        return {"apikey": "key", "provider": "provider", "failoverpolicy": "policy", "failoverstep": "policy_step"}.get(
            type(obj).__name__.lower(), type(obj).__name__.lower()
        )


class ReadOnlyAdmin(admin.ModelAdmin):
    """A page to look at records, never to add, change or delete them."""

    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


def run_test(provider: Provider) -> str:
    """One minimal live call through the provider (the test actions' message): ok with its latency, or why not."""
    from asgiref.sync import async_to_sync

    from byok.gateway.handler import get_handler

    result = async_to_sync(get_handler().test_provider)(provider.pk)
    if result["ok"]:
        return f"{provider.name}: ok in {result['latency_ms']:.0f} ms"
    return f"{provider.name}: failed: {result['error']['message']}"
