"""The admin's user pages, audited: each user created, changed or deleted writes one audit event.

Django's own `UserAdmin`, with `save_model` / `delete_model` recording `user.create`, `user.update`
(the names of the changed fields; a password change says only `password_changed`) and
`user.delete`, with the admin user and source address, through `byok.changes.Change`. (Every
process hears of a user saved or deleted anywhere through `byok.keys.lookup.user_changed`: an
inactive owner's gateway keys are refused at once.)
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth import get_user_model
from django.contrib.auth.admin import UserAdmin
from django.db import transaction

from byok.audit import actor_from_request
from byok.changes import Change

__all__ = ["AuditedUserAdmin"]

User = get_user_model()


def _details(form) -> dict:
    fields = [f for f in form.changed_data if f not in ("password", "password1", "password2", "usable_password")]
    secret = any(f in form.changed_data for f in ("password", "password1", "password2"))
    return {"fields": fields, **({"password_changed": True} if secret else {})}


if admin.site.is_registered(User):
    admin.site.unregister(User)


@admin.register(User)
class AuditedUserAdmin(UserAdmin):
    def save_model(self, request, obj, form, change):
        with transaction.atomic():
            super().save_model(request, obj, form, change)
            if not change or form.has_changed():
                action = "user.update" if change else "user.create"
                Change(actor_from_request(request)).record(action, target=obj, details=_details(form))

    def delete_model(self, request, obj):
        with transaction.atomic():
            Change(actor_from_request(request)).record("user.delete", target=obj, details={"username": obj.username})
            super().delete_model(request, obj)

    def delete_queryset(self, request, queryset):
        with transaction.atomic():
            for user in queryset:
                self.delete_model(request, user)
