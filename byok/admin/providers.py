"""Providers and failover policies in the admin; a provider's keys are edited inline (byok.admin.keys)."""

from __future__ import annotations

from django import forms
from django.conf import settings
from django.contrib import admin

from byok.admin.base import AuditedAdmin, run_test
from byok.admin.keys import ApiKeyInline
from byok.models import ApiKey, FailoverPolicy, FailoverStep, Provider
from byok.netguard import check_base_url


class ProviderForm(forms.ModelForm):
    class Meta:
        model = Provider
        fields = "__all__"

    def clean_base_url(self):
        url = self.cleaned_data.get("base_url") or ""
        if url:
            reason = check_base_url(url, allow_private=settings.BYOK["ALLOW_PRIVATE_BASE_URLS"])
            if reason:
                raise forms.ValidationError(reason)
        return url

    def clean(self):
        data = super().clean()
        if data.get("kind") == "openai_compatible" and not data.get("base_url"):
            self.add_error("base_url", "An openai_compatible provider needs a base URL.")
        return data


@admin.register(Provider)
class ProviderAdmin(AuditedAdmin):
    form = ProviderForm
    inlines = [ApiKeyInline]
    list_display = ("name", "kind", "default_model", "enabled", "is_default", "priority", "active_keys")
    list_filter = ("kind", "enabled")
    search_fields = ("name", "default_model")
    actions = ["test_providers"]

    @admin.display(description="active keys")
    def active_keys(self, obj: Provider) -> int:
        return obj.keys.filter(status=ApiKey.Status.ACTIVE).count()

    @admin.action(description="Test the selected providers (a minimal live call)")
    def test_providers(self, request, queryset):
        for provider in queryset:
            self.message_user(request, run_test(provider))


class FailoverStepInline(admin.TabularInline):
    model = FailoverStep
    extra = 1


@admin.register(FailoverPolicy)
class FailoverPolicyAdmin(AuditedAdmin):
    inlines = [FailoverStepInline]
    list_display = ("name", "primary", "max_retries", "enabled")
