"""Serializers of the management API: strict request bodies, masked responses.

Request bodies are JSON objects whose fields have exactly the JSON types the
schema says (no `"5"` for 5, no `1` for true); unknown fields are refused, so
a typo such as `api-key` is a 422, not a silently ignored setting. `api_key`
is write-only: no response serializer has it, responses carry a key's hint,
fingerprint and status only.
"""

from __future__ import annotations

from django.core.validators import RegexValidator
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from byok.api.strict_fields import (
    MAX_INT32,
    MAX_LIMIT,
    StrictBooleanField,
    StrictCharField,
    StrictChoiceField,
    StrictFloatField,
    StrictIntegerField,
    StrictSerializer,
    optional_count,
)
from byok.models import ApiKey, AuditEvent, Provider
from byok.providers import KINDS, get_adapter
from byok.secrets import redact

__all__ = [
    "ApiKeySerializer",
    "AuditEventSerializer",
    "ErrorSerializer",
    "KeyCreateSerializer",
    "ProviderRegisterSerializer",
    "ProviderSerializer",
    "ProviderUpdateSerializer",
    "RotateKeySerializer",
    "TestResultSerializer",
    "UsageReportSerializer",
    "ValidationErrorSerializer",
]


def _name_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        max_length=64,
        trim_whitespace=False,
        validators=[RegexValidator(r"^[A-Za-z0-9_-]+$", "Use 1-64 letters, digits, '-' or '_'.")],
        help_text="Unique name (1-64 letters, digits, '-' or '_'); the prefix in `<provider>/<model>`.",
        **kwargs,
    )


def _api_key_field(**kwargs) -> StrictCharField:
    return StrictCharField(
        write_only=True,
        min_length=8,
        max_length=500,
        help_text="The provider API key (write-only: stored encrypted, never returned; responses show its hint).",
        **kwargs,
    )


# -- request bodies -------------------------------------------------------------------------


class KeyOptionsSerializer(StrictSerializer):
    """Options of a key in a provider's pool."""

    label = StrictCharField(required=False, allow_blank=True, max_length=100, help_text="A name for people.")  # type: ignore[assignment]  # a field named like a DRF attribute
    quota_group = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=100,
        help_text="Keys of one account or project share rate limits and cool down together.",
    )
    rpm = optional_count(MAX_LIMIT, help_text="Requests per minute; null: unlimited.")
    tpm = optional_count(MAX_LIMIT, help_text="Tokens per minute; null: unlimited.")
    token_quota = optional_count(MAX_LIMIT, help_text="Tokens per `quota_window`; null: unlimited.")
    quota_window = StrictChoiceField(
        ApiKey.QuotaWindow.choices,
        required=False,
        allow_blank=True,
        help_text="The window of `token_quota` (required with it).",
    )

    KEY_OPTIONS = ("label", "quota_group", "rpm", "tpm", "token_quota", "quota_window")

    def key_options(self) -> dict:
        return {k: v for k, v in self.validated_data.items() if k in self.KEY_OPTIONS}


class ProviderSettingsSerializer(StrictSerializer):
    """A provider's settings, as the API names them (`provider` is the kind, `model` the default model)."""

    provider = StrictChoiceField(KINDS, help_text="The wire format: " + ", ".join(KINDS) + ".")
    name = _name_field(required=False)
    model = StrictCharField(required=False, allow_blank=True, max_length=200, help_text="The default model.")
    base_url = StrictCharField(
        required=False,
        allow_blank=True,
        max_length=500,
        help_text="An http(s) URL; empty: the kind's default (required for openai_compatible).",
    )
    timeout = StrictFloatField(required=False, min_value=0.1, max_value=3600, help_text="Seconds.")
    max_retries = StrictIntegerField(required=False, min_value=0, max_value=10)
    priority = StrictIntegerField(
        required=False, min_value=-MAX_INT32 - 1, max_value=MAX_INT32, help_text="Lower is tried first."
    )
    enabled = StrictBooleanField(required=False)
    is_default = StrictBooleanField(required=False, help_text="The one default provider; setting it clears the others.")

    RENAMES = {"provider": "kind", "model": "default_model"}

    def service_values(self) -> dict:
        """The validated settings under `byok.registry`'s names."""
        return {
            self.RENAMES.get(k, k): v
            for k, v in self.validated_data.items()
            if k in ProviderSettingsSerializer._declared_fields
        }


class ProviderRegisterSerializer(ProviderSettingsSerializer, KeyOptionsSerializer):
    """Register a provider, optionally with its first key (and that key's options)."""

    api_key = _api_key_field(required=False)

    def validate(self, attrs):
        if "api_key" not in attrs and any(attrs.get(k) not in (None, "") for k in self.KEY_OPTIONS):
            raise serializers.ValidationError({"api_key": ["Key options were given without a key."]})
        return attrs


class ProviderUpdateSerializer(ProviderSettingsSerializer):
    """Change a provider's settings: every field is optional; keys have their own endpoints."""

    provider = StrictChoiceField(KINDS, required=False, help_text="The wire format: " + ", ".join(KINDS) + ".")


class KeyCreateSerializer(KeyOptionsSerializer):
    """Add a key to a provider's pool."""

    api_key = _api_key_field()


class RotateKeySerializer(StrictSerializer):
    """Put a new key in and retire the old one."""

    api_key = _api_key_field()
    key_id = StrictIntegerField(
        required=False,
        allow_null=True,
        min_value=1,
        max_value=2**63 - 1,
        help_text="The key to retire; may be left out when the provider has at most one active key.",
    )


# -- responses ------------------------------------------------------------------------------


class RedactedCharField(serializers.CharField):
    """A stored text shown with anything key-shaped scrubbed (defence in depth)."""

    def to_representation(self, value):
        return redact(str(value))


class ApiKeySerializer(serializers.ModelSerializer):
    """A key as the API shows it: masked (hint and fingerprint), never the secret."""

    last_error = RedactedCharField(read_only=True)
    quota_window = serializers.ChoiceField(
        ApiKey.QuotaWindow.choices,
        allow_blank=True,
        read_only=True,
        help_text="The window of `token_quota`; empty: none.",
    )

    class Meta:
        model = ApiKey
        fields = [
            "id",
            "hint",
            "fingerprint",
            "status",
            "label",
            "quota_group",
            "rpm",
            "tpm",
            "token_quota",
            "quota_window",
            "parked_until",
            "last_used_at",
            "last_error",
            "created_at",
            "retired_at",
        ]
        read_only_fields = fields


class ProviderSerializer(serializers.ModelSerializer):
    """A provider with its key pool (keys masked)."""

    provider = serializers.ChoiceField(KINDS, source="kind", read_only=True, help_text="The wire format.")
    model = serializers.CharField(source="default_model", read_only=True, help_text="The default model.")
    base_url = serializers.CharField(read_only=True, help_text="The configured base URL; empty: the kind's default.")
    effective_base_url = serializers.SerializerMethodField(help_text="`base_url`, or the kind's default when empty.")
    keys = ApiKeySerializer(many=True, read_only=True)

    class Meta:
        model = Provider
        fields = [
            "id",
            "name",
            "provider",
            "model",
            "base_url",
            "effective_base_url",
            "timeout",
            "max_retries",
            "enabled",
            "is_default",
            "priority",
            "created_at",
            "updated_at",
            "keys",
        ]
        read_only_fields = fields

    @extend_schema_field(OpenApiTypes.STR)
    def get_effective_base_url(self, obj: Provider) -> str:
        return get_adapter(obj.kind).base_url(obj.base_url) if obj.kind in KINDS else obj.base_url


class AuditEventSerializer(serializers.ModelSerializer):
    """One audit event: who changed what, when, from where (never a secret)."""

    provider = serializers.CharField(
        source="provider_name", read_only=True, help_text="The provider's name at the time."
    )
    details = serializers.JSONField(read_only=True)

    class Meta:
        model = AuditEvent
        fields = [
            "id",
            "created_at",
            "actor",
            "action",
            "target_type",
            "target_id",
            "target_repr",
            "provider",
            "key_fingerprint",
            "source_address",
            "details",
        ]
        read_only_fields = fields


class ErrorSerializer(serializers.Serializer):
    """Every error: a stable machine `code` and a human `message` (some errors add fields)."""

    code = serializers.CharField(help_text="A stable machine code, e.g. `not_found`, `duplicate_name`.")
    message = serializers.CharField()
    retryable = serializers.BooleanField(help_text="Whether trying again later can help.")


class ValidationErrorSerializer(ErrorSerializer):
    """An invalid body or query (422): the messages per field."""

    errors = serializers.DictField(
        child=serializers.ListField(child=serializers.CharField()), help_text="field -> messages"
    )  # type: ignore[assignment]  # a field named like a DRF attribute


class TestResultSerializer(serializers.Serializer):
    """The outcome of a minimal live call to a provider."""

    ok = serializers.BooleanField()
    latency_ms = serializers.FloatField()
    error = ErrorSerializer(allow_null=True, help_text="Null when ok; else the provider's error (code, message, ...).")
    model = serializers.CharField(required=False, help_text="The model that answered (when ok).")
    key_hint = serializers.CharField(required=False, help_text="The hint of the key used (when ok).")


class PercentilesSerializer(serializers.Serializer):
    """Percentiles (linear interpolation, like PostgreSQL's percentile_cont), mean and max; null without data."""

    p50 = serializers.FloatField(allow_null=True)
    p95 = serializers.FloatField(allow_null=True)
    p99 = serializers.FloatField(allow_null=True)
    mean = serializers.FloatField(allow_null=True)
    max = serializers.FloatField(allow_null=True)


class UsageStatsSerializer(serializers.Serializer):
    requests = serializers.IntegerField()
    ok = serializers.IntegerField()
    errors = serializers.IntegerField()  # type: ignore[assignment]  # a field named like a DRF attribute
    cancelled = serializers.IntegerField()
    error_codes = serializers.DictField(child=serializers.IntegerField(), help_text="error code -> count")
    attempts = serializers.IntegerField(help_text="Upstream attempts, failed ones included.")
    tokens_in = serializers.IntegerField()
    tokens_out = serializers.IntegerField()
    cost = serializers.DecimalField(
        max_digits=20,
        decimal_places=8,
        allow_null=True,
        help_text="Sum of the priced requests; null when none was priced.",
    )
    spend = serializers.DecimalField(
        max_digits=20,
        decimal_places=8,
        help_text="USD spent: the sum of the priced requests' cost (0 when none was priced).",
    )
    unpriced = serializers.IntegerField(
        help_text=(
            "Requests that used tokens but whose cost is unknown (model or price not in the catalog); not in `spend`."
        )
    )
    latency_ms = PercentilesSerializer()
    ttft_ms = PercentilesSerializer(help_text="Time to first token, over streamed requests.")


class UsageGroupSerializer(UsageStatsSerializer):
    key = serializers.CharField(
        allow_null=True,
        help_text=(
            "The group: provider name, key fingerprint, username, model, day (YYYY-MM-DD), gateway key prefix "
            "(`byok_<lookup>…`) or team name; null for rows without one."
        ),
    )
    provider = serializers.CharField(required=False, help_text="group_by=key: the key's provider.")
    key_hint = serializers.CharField(required=False, help_text="group_by=key: the key's hint.")
    name = serializers.CharField(required=False, help_text="group_by=gateway_key: the key's name.")
    gateway_key_id = serializers.IntegerField(required=False, help_text="group_by=gateway_key: the key's id.")


class UsageReportSerializer(serializers.Serializer):
    group_by = serializers.CharField()
    totals = UsageStatsSerializer()
    groups = UsageGroupSerializer(many=True)

    def get_fields(self):
        fields = super().get_fields()
        fields["from"] = serializers.DateTimeField(allow_null=True, help_text="Inclusive start of the range.")
        fields["to"] = serializers.DateTimeField(allow_null=True, help_text="Exclusive end of the range.")
        return fields
