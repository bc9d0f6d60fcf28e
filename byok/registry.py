"""Provider and key registry: every change validated, audited once, and announced.

These are the synchronous ORM operations behind `BYOKHandler`'s registry
methods, the management API and the admin. Each change goes through
`byok.changes.audited_change` (one transaction, at most one audit event, an
announcement after commit). Concurrent changes of one row are serialised by a
row lock plus a conditional update, so N concurrent revokes or deletes of one
key or provider write one event: a repeated revoke answers the key as it is
(no event), a repeated delete is a 404.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import Any

from django.conf import settings
from django.db import transaction
from django.utils import timezone

from byok.audit import SYSTEM, Actor
from byok.changes import audited_change
from byok.exceptions import ConflictError, DuplicateNameError, InvalidConfigError, NotFound
from byok.models import ApiKey, Provider
from byok.netguard import check_base_url
from byok.providers import KINDS
from byok.secrets import fingerprint, hint
from byok.signals import key_revoked
from byok.state import disable_keys

log = logging.getLogger("byok.registry")

__all__ = [
    "add_key",
    "delete_provider",
    "get_provider",
    "register_provider",
    "revoke_key",
    "rotate_key",
    "set_key_status",
    "update_provider",
    "validate_secret",
]

PROVIDER_FIELDS = (
    "name",
    "kind",
    "base_url",
    "default_model",
    "timeout",
    "max_retries",
    "enabled",
    "is_default",
    "priority",
)
KEY_FIELDS = ("label", "quota_group", "rpm", "tpm", "token_quota", "quota_window")


def _disable_on_commit(key_ids: list[int]) -> None:
    """Once the change commits (before the API answers), mark the keys unusable for every process at once."""

    def disable() -> None:
        try:
            disable_keys(key_ids, redis_url=settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"])
        except Exception:  # the revoke stands; other processes still drop the key on their next reload
            log.warning("could not mark revoked keys disabled in the shared state", exc_info=True)

    if key_ids:
        transaction.on_commit(disable)


def _validate_provider(values: dict[str, Any], *, partial: bool) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}

    def err(field: str, message: str) -> None:
        errors.setdefault(field, []).append(message)

    if "kind" in values or not partial:
        if values.get("kind") not in KINDS:
            err("kind", f"Must be one of: {', '.join(KINDS)}.")
    if "name" in values:
        name = values["name"]
        if not isinstance(name, str) or not name or len(name) > 64 or not all(c.isalnum() or c in "-_" for c in name):
            err("name", "Use 1-64 letters, digits, '-' or '_'.")
    if values.get("base_url"):
        reason = check_base_url(values["base_url"], allow_private=settings.BYOK["ALLOW_PRIVATE_BASE_URLS"])
        if reason:
            err("base_url", reason)
        elif len(values["base_url"]) > 500:
            err("base_url", "At most 500 characters.")
    elif values.get("kind") == "openai_compatible" and not partial:
        err("base_url", "An openai_compatible provider needs a base URL.")
    if "timeout" in values and values["timeout"] is not None:
        t = values["timeout"]
        if isinstance(t, bool) or not isinstance(t, (int, float)) or not 0.1 <= t <= 3600:
            err("timeout", "Seconds between 0.1 and 3600.")
    if "max_retries" in values:
        r = values["max_retries"]
        if isinstance(r, bool) or not isinstance(r, int) or not 0 <= r <= 10:
            err("max_retries", "An integer between 0 and 10.")
    if "priority" in values:
        p = values["priority"]
        if isinstance(p, bool) or not isinstance(p, int) or not -(2**31) <= p < 2**31:
            err("priority", "An integer.")
    if "default_model" in values and (
        not isinstance(values["default_model"], str) or len(values["default_model"]) > 200
    ):
        err("default_model", "At most 200 characters.")
    return errors


def _header_fault(secret: str) -> str | None:
    """Why ``secret`` cannot travel in an HTTP header (printable ASCII only), or None."""
    for c in secret:
        if not "\x21" <= c <= "\x7e":
            what = "a non-ASCII character" if ord(c) > 0x7E else "a control character"
            return (
                f"It contains {what} (U+{ord(c):04X}); an API key is sent in an HTTP header, which takes printable "
                f"ASCII only."
            )
    return None


def validate_secret(secret: Any, field: str = "api_key") -> str:
    """The key, stripped; InvalidConfigError (422) naming ``field`` if it is not a usable API key."""
    if not isinstance(secret, str) or not secret.strip():
        raise InvalidConfigError({field: ["A key is required."]})
    secret = secret.strip()
    if len(secret) < 8 or len(secret) > 500 or any(c.isspace() for c in secret):
        raise InvalidConfigError({field: ["That does not look like an API key (8-500 characters, no spaces)."]})
    fault = _header_fault(secret)
    if fault:
        raise InvalidConfigError({field: [fault]})
    return secret


def _validate_key_options(options: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for field in ("rpm", "tpm", "token_quota"):
        v = options.get(field)
        if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1 or v > 2**40):
            errors[field] = ["A positive integer, or empty for unlimited."]
    window = options.get("quota_window") or ""
    if window and window not in ApiKey.QuotaWindow.values:
        errors["quota_window"] = [f"One of: {', '.join(ApiKey.QuotaWindow.values)}."]
    if options.get("token_quota") and not window:
        errors.setdefault("quota_window", []).append("A token quota needs a window.")
    for field in ("label", "quota_group"):
        v = options.get(field) or ""
        if not isinstance(v, str) or len(v) > 100:
            errors[field] = ["At most 100 characters."]
    return errors


def get_provider(provider_id: int | str) -> Provider:
    """A provider by id or name."""
    try:
        if isinstance(provider_id, int) or str(provider_id).isdigit():
            return Provider.objects.get(pk=int(provider_id))
        return Provider.objects.get(name=provider_id)
    except (Provider.DoesNotExist, ValueError, OverflowError):
        raise NotFound(f"No provider {provider_id!r}.") from None


def _new_key(provider: Provider, secret: str, options: dict[str, Any]) -> ApiKey:
    key = ApiKey(provider=provider, secret=secret, hint=hint(secret), fingerprint=fingerprint(secret))
    for field in KEY_FIELDS:
        if options.get(field) is not None:
            setattr(key, field, options[field])
    key.save()
    return key


def _clear_other_defaults(provider: Provider) -> None:
    Provider.objects.filter(is_default=True).exclude(pk=provider.pk).update(is_default=False)


def _duplicate(name: Any) -> Callable[[], DuplicateNameError]:
    return lambda: DuplicateNameError(f"A provider named {name!r} already exists.")


def register_provider(
    *, actor: Actor = SYSTEM, api_key: str | None = None, key_options: dict[str, Any] | None = None, **values: Any
) -> Provider:
    """Create a provider (and optionally its first key). Raises InvalidConfigError / DuplicateNameError."""
    values = {k: v for k, v in values.items() if v is not None}
    values.setdefault("name", values.get("kind"))
    unknown = set(values) - set(PROVIDER_FIELDS)
    errors = {field: ["Unknown field."] for field in sorted(unknown)}
    errors.update(_validate_provider(values, partial=False))
    key_options = key_options or {}
    errors.update(_validate_key_options(key_options))
    if api_key is not None:
        try:
            api_key = validate_secret(api_key)
        except InvalidConfigError as exc:
            errors.update(exc.errors)
    if errors:
        raise InvalidConfigError(errors)
    with audited_change(actor, conflict=_duplicate(values["name"])) as change:
        provider = Provider(**values)
        if provider.is_default:
            _clear_other_defaults(provider)
        provider.save()
        key = _new_key(provider, api_key, key_options) if api_key else None
        change.record(
            "provider.create",
            target=provider,
            key=key,
            details={"kind": provider.kind, "base_url": provider.base_url, "with_key": key is not None},
        )
    return provider


def update_provider(provider_id: int | str, changes: dict[str, Any], *, actor: Actor = SYSTEM) -> Provider:
    unknown = set(changes) - set(PROVIDER_FIELDS)
    errors = {field: ["Unknown or read-only field."] for field in sorted(unknown)}
    provider = get_provider(provider_id)
    merged = {"kind": provider.kind, "base_url": provider.base_url, **changes}
    errors.update(_validate_provider({**changes, "kind": merged["kind"]}, partial=True))
    if merged["kind"] == "openai_compatible" and not merged["base_url"]:
        errors.setdefault("base_url", []).append("An openai_compatible provider needs a base URL.")
    if errors:
        raise InvalidConfigError(errors)
    with audited_change(actor, conflict=_duplicate(changes.get("name"))) as change:
        provider = _locked_provider(provider.pk)
        before = {f: getattr(provider, f) for f in changes}
        for field, value in changes.items():
            setattr(provider, field, value)
        if provider.is_default:
            _clear_other_defaults(provider)
        provider.save()
        change.record(
            "provider.update",
            target=provider,
            details={
                "changes": {f: [before[f], changes[f]] for f in changes if before[f] != changes[f]},
            },
        )
    return provider


def _locked_provider(pk: int) -> Provider:
    """The provider row, locked for this transaction; NotFound when it is gone (deleted meanwhile)."""
    provider = Provider.objects.select_for_update().filter(pk=pk).first()
    if provider is None:
        raise NotFound(f"No provider {pk!r}.")
    return provider


def delete_provider(provider_id: int | str, *, actor: Actor = SYSTEM) -> None:
    """Delete a provider and its keys (one event); a concurrent or repeated delete of it is a 404."""
    pk = get_provider(provider_id).pk
    with audited_change(actor) as change:
        provider = _locked_provider(pk)
        keys = list(provider.keys.values_list("fingerprint", flat=True))
        key_ids = list(provider.keys.values_list("pk", flat=True))
        deleted, _ = Provider.objects.filter(pk=pk).delete()
        if not deleted:  # deleted by a concurrent transaction that committed first (SQLite has no row lock)
            raise NotFound(f"No provider {provider_id!r}.")
        change.record("provider.delete", target=provider, details={"kind": provider.kind, "keys_deleted": keys})
        _disable_on_commit(key_ids)


def add_key(provider_id: int | str, api_key: str, *, actor: Actor = SYSTEM, **options: Any) -> ApiKey:
    errors = _validate_key_options(options)
    unknown = set(options) - set(KEY_FIELDS)
    errors.update({field: ["Unknown field."] for field in sorted(unknown)})
    try:
        secret = validate_secret(api_key)
    except InvalidConfigError as exc:
        errors.update(exc.errors)
    if errors:
        raise InvalidConfigError(errors)
    with audited_change(actor) as change:
        provider = get_provider(provider_id)
        key = _new_key(provider, secret, options)
        change.record("key.create", target=key, details={"hint": key.hint})
    return key


def _get_key(provider: Provider, key_id: int | str, *, lock: bool = False) -> ApiKey:
    qs = ApiKey.objects.select_related("provider")
    if lock:
        qs = qs.select_for_update(of=("self",))
    try:
        return qs.get(pk=int(key_id), provider=provider)
    except (ApiKey.DoesNotExist, ValueError, TypeError, OverflowError):
        raise NotFound(f"No key {key_id!r} for provider {provider.name!r}.") from None


def _set_status(key: ApiKey, status: str, **fields: Any) -> bool:
    """Move ``key`` (locked, as read) to ``status`` unless another transaction changed its status first."""
    now = timezone.now()
    done = ApiKey.objects.filter(pk=key.pk, status=key.status).update(status=status, updated_at=now, **fields)
    if done:
        key.status, key.updated_at = status, now
        for name, value in fields.items():
            setattr(key, name, value)
    else:
        key.refresh_from_db()
    return bool(done)


def revoke_key(provider_id: int | str, key_id: int | str, *, actor: Actor = SYSTEM) -> ApiKey:
    """Revoke a key (one event). Revoking a key that is revoked already changes nothing and records nothing."""
    provider = get_provider(provider_id)
    with audited_change(actor) as change:
        key = _get_key(provider, key_id, lock=True)
        previous = key.status
        if previous != ApiKey.Status.REVOKED and _set_status(key, ApiKey.Status.REVOKED):
            change.record("key.revoke", target=key, details={"previous_status": previous})
            _disable_on_commit([key.pk])
            name, key_hint = provider.name, key.hint
            transaction.on_commit(lambda: key_revoked.send(sender=ApiKey, provider=name, key_hint=key_hint))
    return key


def rotate_key(
    provider_id: int | str, new_api_key: str, *, key_id: int | str | None = None, actor: Actor = SYSTEM
) -> ApiKey:
    """Put `new_api_key` in and retire the old key (the only active one, or `key_id`).

    The provider row is locked for the whole change, so concurrent rotations
    run one after another and each leaves exactly one key of its own active.
    """
    secret = validate_secret(new_api_key)
    with audited_change(actor) as change:
        provider = _locked_provider(get_provider(provider_id).pk)
        old: ApiKey | None
        if key_id is not None:
            old = _get_key(provider, key_id, lock=True)
            if old.status != ApiKey.Status.ACTIVE:
                raise ConflictError(f"Key {old.hint} is {old.status}, not active: nothing to rotate.")
        else:
            active = list(
                ApiKey.objects.select_for_update().filter(provider=provider, status=ApiKey.Status.ACTIVE).order_by("id")
            )
            if len(active) > 1:
                raise InvalidConfigError(
                    {"key_id": ["This provider has several active keys: say which one to rotate."]}
                )
            old = active[0] if active else None
        options = {f: getattr(old, f) for f in KEY_FIELDS} if old else {}
        new = _new_key(provider, secret, options)
        if old is not None and not _set_status(old, ApiKey.Status.RETIRED, retired_at=timezone.now()):
            raise ConflictError(f"Key {old.hint} changed while it was being rotated; try again.")
        change.record(
            "key.rotate",
            target=new,
            details={
                "new_hint": new.hint,
                "old_key_id": old.pk if old else None,
                "old_hint": old.hint if old else None,
                "old_fingerprint": old.fingerprint if old else None,
            },
        )
    return new


def set_key_status(key_id: int, status: str, *, reason: str, actor: Actor = SYSTEM, parked_until=None) -> ApiKey | None:
    """Change a key's status (the handler marks keys invalid or parked); audited once."""
    with audited_change(actor) as change:
        key = ApiKey.objects.select_for_update(of=("self",)).select_related("provider").filter(pk=key_id).first()
        if key is None or key.status == status:
            return key
        previous = key.status
        if _set_status(key, status, parked_until=parked_until, last_error=reason[:500]):
            change.record(f"key.{status}", target=key, details={"previous_status": previous, "reason": reason})
    return key
