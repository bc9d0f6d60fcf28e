"""Serializers of the model catalog, its overrides and the budgets (management API).

Request bodies follow `byok.api.serializers`: exact JSON types, unknown
fields refused (422). Amounts (prices per million tokens, spend limits) are
decimals: a JSON number or a string such as `"2.50"`; responses give them as
strings, so no float rounding creeps in.
"""

from __future__ import annotations

import math
import re
from datetime import date
from decimal import Decimal, InvalidOperation

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from byok.api.strict_fields import (
    MAX_INT32,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictIntegerField,
    StrictSerializer,
    blank_errors,
    optional_count,
)
from byok.models import Budget, CatalogOverride

__all__ = [
    "BudgetCreateSerializer",
    "BudgetSerializer",
    "BudgetUpdateSerializer",
    "CatalogEntrySerializer",
    "CatalogQuerySerializer",
    "OverrideCreateSerializer",
    "OverrideSerializer",
    "OverrideUpdateSerializer",
]

MAX_ID = 2**63 - 1
_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")


def _amount_schema(whole: int, places: int, *, positive: bool) -> dict:
    bound = {"minimum": 0, "exclusiveMinimum": True} if positive else {"minimum": 0}
    return {
        "oneOf": [
            {"type": "number", **bound, "maximum": 10**whole},
            {"type": "string", "pattern": rf"^\d{{1,{whole}}}(\.\d{{1,{places}}})?$"},
        ],
        "nullable": True,
    }


class StrictAmountField(serializers.Field):
    """A non-negative (or positive) decimal amount: a finite JSON number or a decimal string; null allowed."""

    default_error_messages = {
        "invalid": 'Must be a number or a decimal string such as "2.50".',
        "negative": "Must not be negative.",
        "not_positive": "Must be greater than zero.",
        "digits": "At most {whole} digits before the point and {places} after it.",
    }

    def __init__(self, *, whole: int, places: int, positive: bool = False, **kwargs):
        self.whole, self.places, self.positive = whole, places, positive
        self._pattern = re.compile(rf"^\d{{1,{whole}}}(\.\d{{1,{places}}})?$")
        super().__init__(**kwargs)

    def to_internal_value(self, data):
        if isinstance(data, str):
            if not self._pattern.match(data):
                self.fail("invalid")
            value = Decimal(data)
        elif isinstance(data, (int, float)) and not isinstance(data, bool):
            if isinstance(data, float) and not math.isfinite(data):
                self.fail("invalid")
            try:
                value = Decimal(str(data))
            except InvalidOperation:  # pragma: no cover - str() of a finite number is always a decimal
                self.fail("invalid")
            if value < 0:
                self.fail("negative")
            sign, digits, exponent = value.as_tuple()
            places = max(0, -exponent)
            if places > self.places or len(digits) + min(exponent, 0) > self.whole or value >= 10**self.whole:
                self.fail("digits", whole=self.whole, places=self.places)
        else:
            self.fail("invalid")
        if self.positive and value == 0:
            self.fail("not_positive")
        return value

    def to_representation(self, value):
        return None if value is None else str(value)


@extend_schema_field(_amount_schema(6, 6, positive=False))
class PriceField(StrictAmountField):
    """USD per million tokens: at most 6 digits before the point and 6 after it."""

    def __init__(self, **kwargs):
        super().__init__(whole=6, places=6, required=False, allow_null=True, **kwargs)


@extend_schema_field(_amount_schema(8, 4, positive=True))
class SpendLimitField(StrictAmountField):
    """USD per period: positive, at most 8 digits before the point and 4 after it."""

    def __init__(self, **kwargs):
        super().__init__(whole=8, places=4, positive=True, allow_null=True, **kwargs)


@extend_schema_field({"type": "string", "format": "date", "pattern": r"^\d{4}-\d{2}-\d{2}$", "nullable": True})
class StrictDateField(serializers.Field):
    """A date as `YYYY-MM-DD`; null allowed."""

    default_error_messages = {"invalid": "Must be a date as YYYY-MM-DD."}

    def to_internal_value(self, data):
        if not isinstance(data, str) or not _DATE.match(data):
            self.fail("invalid")
        try:
            return date.fromisoformat(data)
        except ValueError:
            self.fail("invalid")

    def to_representation(self, value):
        return None if value is None else value.isoformat()


# -- catalog ---------------------------------------------------------------------------------


class CatalogQuerySerializer(serializers.Serializer):
    provider = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=64,
        help_text="Only this provider kind (openai, anthropic, ...) or configured provider name; blank: every entry.",
    )


class PriceTierSerializer(serializers.Serializer):
    above_input_tokens = serializers.IntegerField(help_text="These prices apply to prompts of more tokens than this.")
    input_per_mtok = serializers.CharField(help_text="USD per million input tokens (a decimal string).")
    cached_input_per_mtok = serializers.CharField(allow_null=True, help_text="USD per million cached input tokens.")
    output_per_mtok = serializers.CharField(help_text="USD per million output tokens.")


class CatalogEntrySerializer(serializers.Serializer):
    """One model as byok prices and limits it: the shipped file's entry with any enabled override applied."""

    provider = serializers.CharField(help_text="A provider kind, or a configured provider's name (overrides only).")
    model = serializers.CharField()
    context_window = serializers.IntegerField(allow_null=True, help_text="Prompt + output tokens; null: unknown.")
    max_output_tokens = serializers.IntegerField(allow_null=True)
    max_input_tokens = serializers.IntegerField(
        allow_null=True, help_text="A separate prompt limit, where there is one."
    )
    default_max_tokens = serializers.IntegerField(
        allow_null=True, help_text="Filled in when a request has no max_tokens."
    )
    input_per_mtok = serializers.CharField(
        allow_null=True, help_text="USD per million input tokens (decimal string); null: unpriced."
    )
    cached_input_per_mtok = serializers.CharField(allow_null=True, help_text="USD per million cached input tokens.")
    output_per_mtok = serializers.CharField(allow_null=True, help_text="USD per million output tokens.")
    tiers = PriceTierSerializer(many=True, help_text="Long-prompt prices.")
    tool_prompt_tokens = serializers.DictField(
        child=serializers.IntegerField(), help_text="Prompt tokens a provider adds for tools."
    )
    aliases = serializers.ListField(child=serializers.CharField())
    as_of = serializers.CharField(allow_blank=True, help_text="When the figures were taken (YYYY-MM-DD).")
    source = serializers.CharField(allow_blank=True)  # type: ignore[assignment]  # a field named like a DRF attribute
    note = serializers.CharField(allow_blank=True)
    origin = serializers.ChoiceField(["file", "override", "file+override"], help_text="Where the figures come from.")


class OverrideFieldsSerializer(StrictSerializer):
    """An override's figures; null (or left out) keeps the catalog file's value."""

    context_window = optional_count(MAX_INT32, help_text="Prompt + output tokens.")
    max_output_tokens = optional_count(MAX_INT32)
    max_input_tokens = optional_count(MAX_INT32, help_text="A separate prompt limit.")
    default_max_tokens = optional_count(MAX_INT32, help_text="Filled in when a request has no max_tokens.")
    input_per_mtok = PriceField(
        help_text="USD per million input tokens: a number or a decimal string (6 places at most)."
    )
    cached_input_per_mtok = PriceField(help_text="USD per million cached input tokens.")
    output_per_mtok = PriceField(help_text="USD per million output tokens.")
    as_of = StrictDateField(required=False, allow_null=True, help_text="When the figures were taken.")
    source = StrictCharField(required=False, allow_blank=True, max_length=500, help_text="Where the figures come from.")  # type: ignore[assignment]  # a field named like a DRF attribute
    note = StrictCharField(required=False, allow_blank=True, max_length=500)
    enabled = StrictBooleanField(required=False, help_text="A disabled override is kept but not applied.")


class OverrideCreateSerializer(OverrideFieldsSerializer):
    """Add figures for a model: over the file's entry field by field, or a new entry for a model the file lacks."""

    provider = StrictCharField(
        max_length=64,
        help_text=(
            "A provider kind (openai, anthropic, gemini, deepseek, openai_compatible) or a configured provider's name."
        ),
    )
    model = StrictCharField(
        max_length=200, help_text="The model name as requests send it (a dated snapshot name also works)."
    )

    def validate(self, attrs):
        errors = blank_errors(attrs, ("provider", "model"))
        if errors:
            raise serializers.ValidationError(errors)
        return attrs


class OverrideUpdateSerializer(OverrideCreateSerializer):
    """Change an override: only the fields given; null clears a figure (the file's applies again)."""

    provider = StrictCharField(
        required=False, max_length=64, help_text="A provider kind or a configured provider's name."
    )
    model = StrictCharField(required=False, max_length=200)


class OverrideSerializer(serializers.ModelSerializer):
    """A stored override (null fields keep the file's value)."""

    input_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True, read_only=True)
    cached_input_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True, read_only=True)
    output_per_mtok = serializers.DecimalField(max_digits=12, decimal_places=6, allow_null=True, read_only=True)

    class Meta:
        model = CatalogOverride
        fields = [
            "id",
            "provider",
            "model",
            "context_window",
            "max_output_tokens",
            "max_input_tokens",
            "default_max_tokens",
            "input_per_mtok",
            "cached_input_per_mtok",
            "output_per_mtok",
            "as_of",
            "source",
            "note",
            "enabled",
            "created_at",
            "updated_at",
        ]
        read_only_fields = fields


# -- budgets ---------------------------------------------------------------------------------


class BudgetFieldsSerializer(StrictSerializer):
    period = StrictChoiceField(
        Budget.Period.choices, required=False, help_text="The UTC calendar period it resets on (default day)."
    )
    token_limit = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=MAX_ID,
        help_text="Input + output tokens per period; null: none.",
    )
    spend_limit = SpendLimitField(
        required=False, help_text="USD per period (number or decimal string, 4 places at most); null: none."
    )
    enabled = StrictBooleanField(required=False)
    note = StrictCharField(required=False, allow_blank=True, max_length=200)


class BudgetCreateSerializer(BudgetFieldsSerializer):
    """A budget for exactly one user (by id) or one provider key (by id), with a token and/or spend limit."""

    user = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text="The user's id (not the username)."
    )
    key = StrictIntegerField(
        required=False, allow_null=True, min_value=1, max_value=MAX_ID, help_text="The provider key's id."
    )


class BudgetUpdateSerializer(BudgetFieldsSerializer):
    """Change a budget's period, limits, enabled flag or note (its user or key cannot change)."""


class BudgetSerializer(serializers.Serializer):
    """A budget with this period's use from the shared state."""

    id = serializers.IntegerField()
    scope = serializers.ChoiceField(["user", "key"], help_text="Whom it limits.")
    user = serializers.IntegerField(allow_null=True, help_text="The user's id (scope user).")
    key = serializers.IntegerField(allow_null=True, help_text="The provider key's id (scope key).")
    period = serializers.ChoiceField(Budget.Period.choices)
    token_limit = serializers.IntegerField(allow_null=True)
    spend_limit = serializers.CharField(allow_null=True, help_text="USD per period, a decimal string; null: none.")
    enabled = serializers.BooleanField()
    note = serializers.CharField(allow_blank=True)
    used_tokens = serializers.IntegerField(help_text="Tokens counted this period.")
    used_spend = serializers.FloatField(help_text="USD counted this period.")
    reserved_tokens = serializers.IntegerField(
        help_text="Tokens held by requests in flight (their worst case, until they settle)."
    )
    reserved_spend = serializers.FloatField(help_text="USD held by requests in flight (their worst case).")
    remaining_tokens = serializers.IntegerField(
        allow_null=True, help_text="Token limit minus used and reserved (never negative); null: no token limit."
    )
    remaining_spend = serializers.FloatField(
        allow_null=True, help_text="Spend limit minus used and reserved, USD (never negative); null: no spend limit."
    )
    exceeded = serializers.BooleanField(
        help_text="Whether a limit is reached (a user's requests are refused, a key is skipped)."
    )
    resets_at = serializers.DateTimeField(help_text="When this period's counters reset (UTC).")
