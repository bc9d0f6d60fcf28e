"""Provider keys in the admin: the write-once key form, the inline under a provider, and the key actions.

A key is typed into a password field once and never shown again: lists and
forms only ever show its hint. Actions: revoke, re-enable, rotate (new key in,
old retired), test.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.template.response import TemplateResponse

from byok import registry
from byok.admin import formats
from byok.admin.base import KEY_WIDGET, AuditedAdmin, run_test
from byok.audit import actor_from_request
from byok.exceptions import ByokError
from byok.models import ApiKey, Provider
from byok.secrets import fingerprint, hint


class ApiKeyForm(forms.ModelForm):
    """Keys are written once through `api_key`; the stored secret is never a form field."""

    api_key = forms.CharField(
        label="API key",
        required=False,
        widget=KEY_WIDGET,
        strip=True,
        help_text="Typed once, stored encrypted, never shown again. Leave empty to keep the current key.",
    )

    class Meta:
        model = ApiKey
        fields = ("label", "api_key", "quota_group", "rpm", "tpm", "token_quota", "quota_window")

    def clean(self):
        data = super().clean()
        secret = data.get("api_key")
        if not self.instance.pk and not secret and self.has_changed():
            self.add_error("api_key", "A new key needs its secret.")
        if secret:
            try:
                data["api_key"] = registry.validate_secret(secret)
            except ByokError as exc:
                self.add_error("api_key", exc.errors.get("api_key", [exc.message])[0])
        if data.get("token_quota") and not data.get("quota_window"):
            self.add_error("quota_window", "A token quota needs a window.")
        return data

    def save(self, commit=True):
        key = super().save(commit=False)
        secret = self.cleaned_data.get("api_key")
        if secret:
            key.secret, key.hint, key.fingerprint = secret, hint(secret), fingerprint(secret)
            self.secret_changed = bool(self.instance.pk)
        if commit:
            key.save()
        return key


class ApiKeyInline(admin.TabularInline):
    model = ApiKey
    form = ApiKeyForm
    extra = 0
    readonly_fields = ("hint", "status", "last_used_at", "last_error")
    fields = (
        "label",
        "api_key",
        "hint",
        "status",
        "quota_group",
        "rpm",
        "tpm",
        "token_quota",
        "quota_window",
        "last_used_at",
        "last_error",
    )
    show_change_link = True


class RotateForm(forms.Form):
    new_api_key = forms.CharField(label="New API key", widget=KEY_WIDGET, strip=True)

    def clean_new_api_key(self):
        try:
            return registry.validate_secret(self.cleaned_data["new_api_key"], "new_api_key")
        except ByokError as exc:
            raise forms.ValidationError(exc.errors["new_api_key"]) from None


@admin.register(ApiKey)
class ApiKeyAdmin(AuditedAdmin):
    form = ApiKeyForm
    list_display = ("key", "label", "status", "quota_group", "limits", "last_used")
    list_select_related = ("provider",)
    list_filter = ("status", "provider")
    search_fields = ("label", "hint", "fingerprint", "provider__name")
    readonly_fields = (
        "hint",
        "fingerprint",
        "status",
        "parked_until",
        "last_used_at",
        "last_error",
        "created_at",
        "retired_at",
    )
    actions = ["revoke_keys", "rotate_key", "test_keys", "reactivate_keys"]

    @admin.display(description="key", ordering="provider__name")
    def key(self, obj: ApiKey) -> str:
        return f"{obj.provider.name}:{obj.hint}"

    @admin.display(description="limits")
    def limits(self, obj: ApiKey) -> str:
        parts = [f"{formats.thousands(n)} {unit}" for n, unit in ((obj.rpm, "rpm"), (obj.tpm, "tpm")) if n]
        if obj.token_quota:
            parts.append(f"{formats.thousands(obj.token_quota)} per {obj.quota_window}")
        return " · ".join(parts) or "none"

    @admin.display(description="last used", ordering="last_used_at")
    def last_used(self, obj: ApiKey) -> str:
        return formats.when(obj.last_used_at)

    def get_fields(self, request, obj=None):
        fields = ["provider", *ApiKeyForm.Meta.fields]
        return fields + list(self.readonly_fields) if obj else fields

    def get_form(self, request, obj=None, **kwargs):
        kwargs["fields"] = ["provider", *ApiKeyForm.Meta.fields]
        return super().get_form(request, obj, **kwargs)

    @admin.action(description="Revoke the selected keys")
    def revoke_keys(self, request, queryset):
        actor = actor_from_request(request)
        for key in queryset.exclude(status=ApiKey.Status.REVOKED):
            registry.revoke_key(key.provider_id, key.pk, actor=actor)
            self.message_user(request, f"Revoked {key.provider.name}:{key.hint}.")

    @admin.action(description="Re-enable the selected keys (after an invalid/parked status)")
    def reactivate_keys(self, request, queryset):
        actor = actor_from_request(request)
        for key in queryset.filter(status__in=[ApiKey.Status.INVALID, ApiKey.Status.PARKED]):
            registry.set_key_status(key.pk, ApiKey.Status.ACTIVE, reason="re-enabled by an admin", actor=actor)
            self.message_user(request, f"Re-enabled {key.provider.name}:{key.hint}.")

    @admin.action(description="Test the selected keys' providers")
    def test_keys(self, request, queryset):
        for provider in Provider.objects.filter(pk__in=queryset.values("provider_id")):
            self.message_user(request, run_test(provider))

    @admin.action(description="Rotate the selected key (new key in, old retired)")
    def rotate_key(self, request, queryset):
        if queryset.count() != 1:
            self.message_user(request, "Select exactly one key to rotate.", level=messages.WARNING)
            return None
        key = queryset.select_related("provider").get()
        form = RotateForm(request.POST if "new_api_key" in request.POST else None)
        if form.is_valid():
            try:
                new = registry.rotate_key(
                    key.provider_id, form.cleaned_data["new_api_key"], key_id=key.pk, actor=actor_from_request(request)
                )
            except ByokError as exc:
                self.message_user(request, exc.message, level=messages.ERROR)
                return None
            self.message_user(request, f"Rotated {key.provider.name}: {key.hint} retired, {new.hint} active.")
            return None
        context = {
            **self.admin_site.each_context(request),
            "title": f"Rotate {key.provider.name}:{key.hint}",
            "key": key,
            "form": form,
            "opts": self.model._meta,
            "action_checkbox_name": admin.helpers.ACTION_CHECKBOX_NAME,
        }
        return TemplateResponse(request, "admin/byok/apikey/rotate.html", context)
