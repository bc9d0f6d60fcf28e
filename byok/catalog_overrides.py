"""Admin overrides of the model catalog: read for the hot path, changed audited, listed for the API.

    catalog = load_catalog()                     # the shipped file + the enabled overrides (sync ORM)
    create_override(actor=actor, provider="openai", model="gpt-4o", input_per_mtok="2.00")

The pure lookup and cost rules live in `byok.catalog`; this module is the ORM
side. Every change is one `audited_change` (one audit event, every process told
after commit); a second override for the same (provider, model) is a 409.
"""

from __future__ import annotations

from decimal import Decimal
from typing import Any

from django.core.exceptions import ValidationError

from byok.audit import Actor
from byok.catalog import LIMIT_FIELDS, PRICE_FIELDS, Catalog, file_entries
from byok.changes import audited_change
from byok.exceptions import ConflictError, InvalidConfigError, NotFound
from byok.models import CatalogOverride

__all__ = [
    "OVERRIDE_FIELDS",
    "catalog_rows",
    "create_override",
    "delete_override",
    "get_override",
    "load_catalog",
    "update_override",
]

OVERRIDE_FIELDS = ("provider", "model", *LIMIT_FIELDS, *PRICE_FIELDS, "as_of", "source", "note", "enabled")


def load_catalog() -> Catalog:
    """The catalog with the enabled overrides from the database (synchronous ORM)."""
    return Catalog(file_entries(), list(CatalogOverride.objects.filter(enabled=True).order_by("id")))


def catalog_rows(provider: str | None = None) -> list[dict[str, Any]]:
    """Every catalog entry (file and overrides merged) as JSON-ready dicts, for the API."""
    rows = [e.to_dict() for e in load_catalog().entries()]
    return [r for r in rows if provider is None or r["provider"] == provider]


def _validate_override(values: dict[str, Any]) -> dict[str, list[str]]:
    errors: dict[str, list[str]] = {}
    for name in set(values) - set(OVERRIDE_FIELDS):
        errors[name] = ["Unknown or read-only field."]
    for name in ("provider", "model"):
        if name in values and (
            not isinstance(values[name], str) or not values[name].strip() or len(values[name]) > 200
        ):
            errors[name] = ["Required: a non-empty string of at most 200 characters."]
    for name in LIMIT_FIELDS:
        value = values.get(name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int) or value <= 0):
            errors[name] = ["Must be a positive integer or null."]
    for name in PRICE_FIELDS:
        value = values.get(name)
        if value is not None:
            try:
                if Decimal(str(value)) < 0:
                    raise ValueError
            except Exception:
                errors[name] = ["Must be a non-negative number (USD per million tokens) or null."]
    return errors


def _conflict() -> ConflictError:
    return ConflictError("An override for this provider and model exists already.")


def _save_override(obj: CatalogOverride, values: dict[str, Any]) -> None:
    for name, value in values.items():
        if name in PRICE_FIELDS and value is not None:
            value = Decimal(str(value))
        setattr(obj, name, value)
    try:
        obj.full_clean()
    except ValidationError as exc:
        if "__all__" in exc.message_dict:  # the unique (provider, model) pair
            raise _conflict() from None
        raise InvalidConfigError(exc.message_dict) from None
    obj.save()


def create_override(*, actor: Actor | None = None, **values: Any) -> CatalogOverride:
    """Add a catalog override (one audit event); 422 on invalid fields, 409 if (provider, model) exists."""
    errors = _validate_override(values)
    for name in ("provider", "model"):
        if name not in values:
            errors.setdefault(name, ["This field is required."])
    if errors:
        raise InvalidConfigError(errors)
    with audited_change(actor, conflict=_conflict) as change:
        obj = CatalogOverride()
        _save_override(obj, values)
        change.record("catalog.override.create", target=obj, details=_audit_details(obj))
    return obj


def update_override(override_id: Any, changes: dict[str, Any], *, actor: Actor | None = None) -> CatalogOverride:
    """Change an override's fields (one audit event listing them)."""
    obj = get_override(override_id)
    errors = _validate_override(changes)
    if errors:
        raise InvalidConfigError(errors)
    with audited_change(actor, conflict=_conflict) as change:
        obj = CatalogOverride.objects.select_for_update().get(pk=obj.pk)
        _save_override(obj, changes)
        change.record("catalog.override.update", target=obj, details={"fields": sorted(changes), **_audit_details(obj)})
    return obj


def delete_override(override_id: Any, *, actor: Actor | None = None) -> None:
    """Remove an override (one audit event); the file's figures apply again."""
    obj = get_override(override_id)
    with audited_change(actor) as change:
        if CatalogOverride.objects.filter(pk=obj.pk).delete()[0]:
            change.record("catalog.override.delete", target=obj, details=_audit_details(obj))


def get_override(override_id: Any) -> CatalogOverride:
    try:
        return CatalogOverride.objects.get(pk=int(override_id))
    except (CatalogOverride.DoesNotExist, TypeError, ValueError):
        raise NotFound(f"No catalog override with id {override_id!r}.") from None


def _audit_details(obj: CatalogOverride) -> dict[str, Any]:
    return {
        "provider": obj.provider,
        "model": obj.model,
        **{k: getattr(obj, k) for k in LIMIT_FIELDS if getattr(obj, k) is not None},
        **{k: str(getattr(obj, k)) for k in PRICE_FIELDS if getattr(obj, k) is not None},
        "enabled": obj.enabled,
    }
