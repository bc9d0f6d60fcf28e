"""The admin: providers with their key pools, actions on keys, and the read-only audit log.

A key is typed into a password field once and never shown again: lists and
forms only ever show its hint. Every change made here writes exactly one audit
event per provider or key changed, with the admin user and source address.
"""

from __future__ import annotations

from asgiref.sync import async_to_sync
from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.db import transaction
from django.template.response import TemplateResponse

from byok import registry
from byok.audit import actor_from_request
from byok.changes import Change
from byok.exceptions import ByokError
from byok.models import ApiKey, AuditEvent, FailoverPolicy, FailoverStep, Provider, UsageRecord
from byok.netguard import check_base_url
from byok.secrets import fingerprint, hint

KEY_WIDGET = forms.PasswordInput(render_value=False, attrs={"autocomplete": "off"})


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


def _run_test(provider: Provider) -> str:
    from byok.gateway.handler import get_handler

    result = async_to_sync(get_handler().test_provider)(provider.pk)
    if result["ok"]:
        return f"{provider.name}: ok in {result['latency_ms']:.0f} ms"
    return f"{provider.name}: failed: {result['error']['message']}"


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
            self.message_user(request, _run_test(provider))


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
    list_display = ("__str__", "provider", "label", "hint", "status", "quota_group", "rpm", "tpm", "last_used_at")
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
            self.message_user(request, _run_test(provider))

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


class FailoverStepInline(admin.TabularInline):
    model = FailoverStep
    extra = 1


@admin.register(FailoverPolicy)
class FailoverPolicyAdmin(AuditedAdmin):
    inlines = [FailoverStepInline]
    list_display = ("name", "primary", "max_retries", "enabled")


class ReadOnlyAdmin(admin.ModelAdmin):
    def has_add_permission(self, request) -> bool:
        return False

    def has_change_permission(self, request, obj=None) -> bool:
        return False

    def has_delete_permission(self, request, obj=None) -> bool:
        return False


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


# -- model catalog overrides, budgets and spend (byok.catalog, byok.budgets) -----------------------------

from byok.models import Budget, CatalogOverride, SpendReport  # noqa: E402


@admin.register(CatalogOverride)
class CatalogOverrideAdmin(AuditedAdmin):
    """Admins' figures over the shipped catalog (or for models it does not know); one audit event per change."""

    list_display = (
        "provider",
        "model",
        "context_window",
        "max_output_tokens",
        "input_per_mtok",
        "cached_input_per_mtok",
        "output_per_mtok",
        "as_of",
        "enabled",
        "shipped_figures",
    )
    list_filter = ("provider", "enabled")
    search_fields = ("provider", "model", "note")
    readonly_fields = ("shipped_figures", "created_at", "updated_at")

    @staticmethod
    def _noun(obj) -> str:
        return "catalog.override"

    @admin.display(description="shipped catalog says")
    def shipped_figures(self, obj: CatalogOverride) -> str:
        from byok.catalog import Catalog, file_entries

        info = Catalog(file_entries()).lookup(obj.provider, obj.model) if obj.provider and obj.model else None
        if info is None:
            return "not in the shipped catalog"
        return (
            f"{info.model}: window {info.context_window}, output {info.max_output_tokens}, "
            f"${info.input_per_mtok} in / ${info.cached_input_per_mtok} cached / ${info.output_per_mtok} out per 1M "
            f"(as of {info.as_of})"
        )


@admin.register(Budget)
class BudgetAdmin(AuditedAdmin):
    """Token and spend budgets per user or key; shows this period's use from the shared state."""

    list_display = ("__str__", "user", "key", "period", "token_limit", "spend_limit", "enabled", "used_this_period")
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
        return f"{row['used_tokens']} tokens, ${row['used_spend']:.4f} (resets {row['resets_at']}){flag}"


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
