"""Admin pages for gateway keys, teams and DRF API tokens: no secret is ever shown, except a new key, once.

- Gateway keys: list by prefix (`byok_<lookup>…`), owner, team, expiry, last use, revoked; adding one
  goes through `byok.keys.store.create_key` and shows the secret once in the page's message; changes
  through `update_key`; the "Revoke" action through `revoke_key` (effective everywhere at once). Keys
  are never deleted here (revoke them); the digest is never shown.
- Teams: created / changed / deleted through the store (audited, announced).
- API tokens: DRF's own page shows the stored key; this one shows owner and date only, issues a new
  token (shown once) and deletes tokens, each audited.
"""

from __future__ import annotations

from django import forms
from django.contrib import admin, messages
from django.db import transaction
from rest_framework.authtoken.admin import TokenAdmin as DRFTokenAdmin
from rest_framework.authtoken.models import Token, TokenProxy

from byok.audit import actor_from_request
from byok.exceptions import ByokError, InvalidConfigError
from byok.keys import store
from byok.keys.tokens import issue_token, revoke_tokens
from byok.models import GatewayKey, Team

__all__ = ["GatewayKeyAdmin", "TeamAdmin", "TokenAdmin"]

LIMITS = ("models", "rpm", "tpm", "budget_tokens", "budget_spend_usd", "budget_period")


def _values(form, fields) -> dict:
    """Form data -> the store's names (the budget's three fields become `budget`)."""
    data = {name: form.cleaned_data.get(name) for name in fields if name in form.cleaned_data}
    if "budget_period" in data:
        tokens, spend, period = (
            data.pop("budget_tokens", None),
            data.pop("budget_spend_usd", None),
            data.pop("budget_period"),
        )
        data["budget"] = (
            None if tokens is None and spend is None else {"tokens": tokens, "spend_usd": spend, "period": period}
        )
    for ref in ("user", "team"):
        if ref in data and data[ref] is not None:
            data[ref] = data[ref].pk
    if "members" in data:
        data["members"] = [u.pk for u in data["members"] or []]
    return data


def _form_errors(form, exc: InvalidConfigError) -> None:
    for field, msgs in exc.errors.items():
        name = field.split(".")[0]
        name = {"budget": "budget_period"}.get(name, name)
        form.add_error(name if name in form.fields else None, msgs)


class StoreAdmin(admin.ModelAdmin):
    """Saves through `byok.keys.store` (validated, audited, announced); store errors land on the form."""

    create_fields: tuple[str, ...] = ()
    change_fields: tuple[str, ...] = ()

    def get_form(self, request, obj=None, **kwargs):
        form_class = super().get_form(request, obj, **kwargs)
        admin_self = self

        class StoreForm(form_class):
            def _post_clean(self) -> None:  # the store validates and saves: the model's own check is skipped
                if self.errors:
                    return
                try:
                    self.saved = admin_self.store_save(request, self, obj)
                except InvalidConfigError as exc:
                    _form_errors(self, exc)
                except ByokError as exc:
                    self.add_error(None, exc.message)

        return StoreForm

    def save_model(self, request, obj, form, change):
        pass  # saved in the form's validation (store_save), so a store refusal shows on the form

    def save_related(self, request, form, formsets, change):
        pass

    def store_save(self, request, form, obj):
        raise NotImplementedError


@admin.register(GatewayKey)
class GatewayKeyAdmin(StoreAdmin):
    list_display = ("name", "prefix", "user", "team", "expires_at", "last_used_at", "revoked_at", "created_at")
    list_filter = ("team",)
    search_fields = ("name", "lookup", "user__username", "team__name")
    readonly_fields = ("prefix", "last_used_at", "revoked_at", "created_at", "updated_at")
    actions = ["revoke_selected"]
    create_fields = ("name", "user", "team", "expires_at", *LIMITS)
    change_fields = ("name", "team", "expires_at", *LIMITS)

    def get_fields(self, request, obj=None):
        if obj is None:
            return self.create_fields
        return ("prefix", "user", *self.change_fields, "last_used_at", "revoked_at", "created_at")

    def get_readonly_fields(self, request, obj=None):
        return (*self.readonly_fields, "user") if obj is not None else ()

    def has_delete_permission(self, request, obj=None) -> bool:
        return False  # revoke instead: usage and audit keep naming the key

    def get_actions(self, request):
        actions = super().get_actions(request)
        actions.pop("delete_selected", None)
        return actions

    def store_save(self, request, form, obj):
        actor = actor_from_request(request)
        if obj is None:
            key, plain = store.create_key(actor=actor, **_values(form, self.create_fields))
            form.instance = key
            messages.warning(request, f"The new key (shown this once, copy it now): {plain}")
            return key
        return store.update_key(obj.pk, _values(form, self.change_fields), actor=actor)

    @admin.action(description="Revoke the selected keys (refused everywhere at once)")
    def revoke_selected(self, request, queryset):
        for key in queryset:
            store.revoke_key(key.pk, actor=actor_from_request(request))
        messages.success(request, f"{queryset.count()} key(s) revoked.")


@admin.register(Team)
class TeamAdmin(StoreAdmin):
    list_display = ("name", "rpm", "tpm", "budget_tokens", "budget_spend_usd", "budget_period", "created_at")
    search_fields = ("name",)
    filter_horizontal = ("members",)
    fields = ("name", "members", *LIMITS)

    def store_save(self, request, form, obj):
        actor = actor_from_request(request)
        values = _values(form, self.fields)
        if obj is None:
            team = store.create_team(actor=actor, **values)
            form.instance = team
            return team
        return store.update_team(obj.pk, values, actor=actor)

    def delete_model(self, request, obj):
        store.delete_team(obj.pk, actor=actor_from_request(request))

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for team in queryset:
                store.delete_team(team.pk, actor=actor_from_request(request))


class TokenForm(forms.ModelForm):
    class Meta:
        model = TokenProxy
        fields = ("user",)


admin.site.unregister(TokenProxy)


@admin.register(TokenProxy)
class TokenAdmin(DRFTokenAdmin):
    """API tokens by owner and date; the stored key (a hash) is not shown either."""

    list_display = ("user", "created")
    fields = ("user",)
    form = TokenForm
    readonly_fields = ()
    search_fields = ("user__username",)
    ordering = ("-created",)

    def get_readonly_fields(self, request, obj=None):
        return ("user",) if obj is not None else ()

    def save_model(self, request, obj, form, change):
        if change:
            return
        user = form.cleaned_data["user"]
        plain = issue_token(user, actor=actor_from_request(request))
        obj.key, obj.user = Token.objects.get(user=user).key, user
        messages.warning(request, f"The new API token (shown this once, copy it now): {plain}")

    def delete_model(self, request, obj):
        revoke_tokens(obj.user, actor=actor_from_request(request))

    def delete_queryset(self, request, queryset):
        for token in queryset:
            revoke_tokens(token.user, actor=actor_from_request(request))
