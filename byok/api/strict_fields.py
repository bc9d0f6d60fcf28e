"""Strict JSON fields for DRF request bodies: exactly the JSON type the schema says, unknown fields refused.

No `"5"` for 5, no `1` for true, no NaN, no lone surrogates; a choice error lists the choices and
never echoes the input. Shared by every management serializer (`serializers`, `serializers_budgets`,
`serializers_keys`) and the query filters.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

from rest_framework import serializers

__all__ = [
    "MAX_INT32",
    "MAX_LIMIT",
    "StrictBooleanField",
    "StrictCharField",
    "StrictChoiceField",
    "StrictFloatField",
    "StrictIntegerField",
    "StrictSerializer",
    "blank_errors",
    "optional_count",
]

MAX_INT32 = 2**31 - 1
MAX_LIMIT = 2**40


class StrictCharField(serializers.CharField):
    """A JSON string (never a number or boolean), valid Unicode, no NUL characters."""

    default_error_messages = {"invalid": "Must be a string.", "invalid_text": "Must be valid Unicode text."}

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid")
        try:
            data.encode("utf-8")
        except UnicodeEncodeError:  # lone surrogates from "\ud800" escapes
            self.fail("invalid_text")
        return super().to_internal_value(data)


class StrictIntegerField(serializers.IntegerField):
    """A JSON integer (not a string, float or boolean)."""

    default_error_messages = {"invalid": "Must be an integer."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, int):
            self.fail("invalid")
        return data


class StrictFloatField(serializers.FloatField):
    """A finite JSON number (not a string or boolean)."""

    default_error_messages = {"invalid": "Must be a number."}

    def to_internal_value(self, data):
        if isinstance(data, bool) or not isinstance(data, (int, float)) or not math.isfinite(data):
            self.fail("invalid")
        return float(data)


class StrictBooleanField(serializers.BooleanField):
    """A JSON boolean: true or false only."""

    default_error_messages = {"invalid": "Must be true or false."}

    def to_internal_value(self, data):
        if not isinstance(data, bool):
            self.fail("invalid")
        return data


class StrictChoiceField(serializers.ChoiceField):
    """One of fixed strings; the error lists the choices and never echoes the input."""

    def __init__(self, choices, **kwargs):
        super().__init__(choices, **kwargs)
        allowed = ", ".join(str(c) for c in self.choices if c != "")
        self.error_messages["invalid_choice"] = f"Must be one of: {allowed}."

    def to_internal_value(self, data):
        if not isinstance(data, str):
            self.fail("invalid_choice", input="")
        return super().to_internal_value(data)


class StrictSerializer(serializers.Serializer):
    """A request body: a JSON object whose fields are all known."""

    def to_internal_value(self, data):
        errors: dict = {}
        if isinstance(data, Mapping):
            errors = {str(k): ["Unknown field."] for k in data if k not in self.fields}
        try:
            value = super().to_internal_value(data)
        except serializers.ValidationError as exc:
            detail = exc.detail if isinstance(exc.detail, dict) else {"non_field_errors": exc.detail}
            raise serializers.ValidationError({**errors, **detail}) from None
        if errors:
            raise serializers.ValidationError(errors)
        return value

    def service_values(self) -> dict:
        """The validated fields under the names the byok service that takes them uses."""
        return dict(self.validated_data)


def optional_count(max_value: int, **kwargs: Any) -> StrictIntegerField:
    """A limit or size: a JSON integer from 1 to `max_value`, or null / left out (no limit, or the default)."""
    return StrictIntegerField(required=False, allow_null=True, min_value=1, max_value=max_value, **kwargs)


def blank_errors(attrs: Mapping[str, Any], names: Iterable[str]) -> dict[str, list[str]]:
    """The given text fields that hold only whitespace, as validation errors."""
    return {name: ["Must not be blank."] for name in names if name in attrs and not attrs[name].strip()}
