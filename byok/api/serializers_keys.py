"""Bodies and views of `/api/keys` and `/api/teams` (gateway keys and teams, issue 14).

The serializers check JSON types (422 per field); `byok.keys.store` checks the rest
(unknown user or team, a model pattern no configured provider can match) and names
the field too. `key_view` / `team_view` are what the API returns: a key is shown by
its prefix (`byok_<lookup>…`), never its secret, except once, in the answer to its
creation (`key`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from byok.api.serializers_budgets import SpendLimitField
from byok.api.strict_fields import StrictCharField, StrictChoiceField, StrictIntegerField, StrictSerializer
from byok.keys.patterns import MAX_PATTERN, MAX_PATTERNS
from byok.models import GatewayKey, Team

__all__ = [
    "GatewayKeyCreateSerializer",
    "GatewayKeySerializer",
    "GatewayKeyUpdateSerializer",
    "TeamCreateSerializer",
    "TeamSerializer",
    "TeamUpdateSerializer",
    "key_view",
    "team_view",
]


@extend_schema_field({"oneOf": [{"type": "integer", "minimum": 1}, {"type": "string", "maxLength": 150}]})
class RefField(serializers.Field):
    """A user or team: its id, or its username / name."""

    default_error_messages = {"invalid": "An id (integer) or a name (string)."}

    def to_internal_value(self, data):
        if (
            isinstance(data, bool)
            or not isinstance(data, (int, str))
            or (isinstance(data, str) and not 0 < len(data) <= 150)
        ):
            self.fail("invalid")
        return data

    def to_representation(self, value):
        return value


class GatewayBudgetBody(StrictSerializer):
    tokens = StrictIntegerField(min_value=1, required=False, allow_null=True, help_text="Tokens per period.")
    spend_usd = SpendLimitField(required=False, help_text="USD per period.")
    period = StrictChoiceField(["day", "month"], default="month", help_text="UTC day or calendar month.")

    def validate(self, attrs):
        if attrs.get("tokens") is None and attrs.get("spend_usd") is None:
            raise serializers.ValidationError({"tokens": ["Set `tokens`, `spend_usd` or both."]})
        return attrs


class GatewayLimitsBody(StrictSerializer):
    models = serializers.ListField(
        child=StrictCharField(max_length=MAX_PATTERN),
        max_length=MAX_PATTERNS,
        required=False,
        help_text="Allowed model patterns: `openai/*`, `anthropic/claude-*`, `gpt-4o-mini`; empty: every model. "
        "A pattern no configured provider can match is 422.",
    )
    rpm = StrictIntegerField(min_value=1, required=False, allow_null=True, help_text="Requests per minute.")
    tpm = StrictIntegerField(min_value=1, required=False, allow_null=True, help_text="Tokens per minute.")
    budget = GatewayBudgetBody(
        required=False, allow_null=True, help_text="A token and/or spend budget per period; null: none."
    )

    def service_values(self) -> dict:
        values = dict(self.validated_data)
        if values.get("budget") is not None:
            values["budget"] = dict(values["budget"])
        return values


class GatewayKeyCreateSerializer(GatewayLimitsBody):
    """A new gateway key: `user` (its owner) or `team` (or both: the user must be a member)."""

    name = StrictCharField(max_length=100, help_text="What the key is for.")
    user = RefField(required=False, allow_null=True, help_text="The owner: a user id or username.")
    team = RefField(required=False, allow_null=True, help_text="A team id or name; its limits apply too.")
    expires_at = serializers.DateTimeField(required=False, allow_null=True, help_text="ISO 8601; null: never.")


class GatewayKeyUpdateSerializer(GatewayLimitsBody):
    """Change a key: only the fields given (its secret and owner never change)."""

    name = StrictCharField(max_length=100, required=False)
    team = RefField(required=False, allow_null=True)
    expires_at = serializers.DateTimeField(required=False, allow_null=True)


class TeamCreateSerializer(GatewayLimitsBody):
    name = StrictCharField(max_length=64, help_text="Unique: letters, digits, '-' or '_'.")
    members = serializers.ListField(child=RefField(), required=False, help_text="User ids or usernames.")


class TeamUpdateSerializer(TeamCreateSerializer):
    name = StrictCharField(max_length=64, required=False)


# -- what the API returns ----------------------------------------------------------------------------


def _budget(obj) -> dict[str, Any] | None:
    if obj.budget_tokens is None and obj.budget_spend_usd is None:
        return None
    spend = obj.budget_spend_usd
    return {
        "tokens": obj.budget_tokens,
        "spend_usd": str(spend) if spend is not None else None,
        "period": obj.budget_period,
    }


def _limits(obj) -> dict[str, Any]:
    return {"models": list(obj.models or []), "rpm": obj.rpm, "tpm": obj.tpm, "budget": _budget(obj)}


def _time(value) -> str | None:
    return value.isoformat() if value is not None else None


def key_view(key: GatewayKey) -> dict[str, Any]:
    """A key as the API shows it: never its secret."""
    return {
        "id": key.pk,
        "prefix": key.prefix,
        "name": key.name,
        "user": key.user.get_username(),
        "user_id": key.user_id,
        "team": key.team.name if key.team is not None else None,
        "team_id": key.team_id,
        **_limits(key),
        "expires_at": _time(key.expires_at),
        "created_at": _time(key.created_at),
        "last_used_at": _time(key.last_used_at),
        "revoked": key.revoked_at is not None,
        "revoked_at": _time(key.revoked_at),
    }


def team_view(team: Team) -> dict[str, Any]:
    return {
        "id": team.pk,
        "name": team.name,
        "members": sorted(team.members.values_list("username", flat=True)),
        **_limits(team),
        "keys": team.keys.filter(revoked_at__isnull=True).count(),
        "created_at": _time(team.created_at),
    }


class GatewayBudgetView(serializers.Serializer):
    """The budget's limits, and this period's use from the shared state (absent when it is unreachable)."""

    tokens = serializers.IntegerField(allow_null=True)
    spend_usd = serializers.CharField(allow_null=True)
    period = serializers.ChoiceField(["day", "month"])
    used_tokens = serializers.IntegerField(required=False, help_text="Tokens counted this period.")
    used_spend = serializers.FloatField(required=False, help_text="USD counted this period.")
    reserved_tokens = serializers.IntegerField(required=False, help_text="Tokens held by requests in flight.")
    reserved_spend = serializers.FloatField(required=False, help_text="USD held by requests in flight.")
    remaining_tokens = serializers.IntegerField(
        required=False, allow_null=True, help_text="Limit minus used and reserved; null: no token limit."
    )
    remaining_spend = serializers.FloatField(
        required=False, allow_null=True, help_text="Limit minus used and reserved, USD; null: no spend limit."
    )
    exceeded = serializers.BooleanField(required=False, help_text="A limit is reached: requests are refused.")
    resets_at = serializers.DateTimeField(required=False, help_text="When the period's counters reset (UTC).")


class GatewayKeySerializer(serializers.Serializer):
    """A gateway key (documentation of `key_view`); `key` only in the answer to its creation."""

    id = serializers.IntegerField()
    key = serializers.CharField(required=False, help_text="The secret, in the 201 answer only: shown once.")
    prefix = serializers.CharField(help_text="`byok_<lookup>…`: how the key is named; not a secret.")
    name = serializers.CharField()
    user = serializers.CharField()
    user_id = serializers.IntegerField()
    team = serializers.CharField(allow_null=True)
    team_id = serializers.IntegerField(allow_null=True)
    models = serializers.ListField(child=serializers.CharField())
    rpm = serializers.IntegerField(allow_null=True)
    tpm = serializers.IntegerField(allow_null=True)
    budget = GatewayBudgetView(allow_null=True)
    expires_at = serializers.DateTimeField(allow_null=True)
    created_at = serializers.DateTimeField()
    last_used_at = serializers.DateTimeField(allow_null=True, help_text="Updated at most once a minute.")
    revoked = serializers.BooleanField()
    revoked_at = serializers.DateTimeField(allow_null=True)


class TeamSerializer(serializers.Serializer):
    id = serializers.IntegerField()
    name = serializers.CharField()
    members = serializers.ListField(child=serializers.CharField())
    models = serializers.ListField(child=serializers.CharField())
    rpm = serializers.IntegerField(allow_null=True)
    tpm = serializers.IntegerField(allow_null=True)
    budget = GatewayBudgetView(allow_null=True)
    keys = serializers.IntegerField(help_text="Keys of the team not revoked.")
    created_at = serializers.DateTimeField()
