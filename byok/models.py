"""byok's tables: providers and their key pools, failover policies, the audit log, usage."""

from __future__ import annotations

from django.conf import settings
from django.core.validators import MaxValueValidator, MinValueValidator
from django.db import models
from django.db.models import Q

from byok.fields import SecretField
from byok.models_keys import GatewayKey, Team
from byok.providers import KINDS

__all__ = [
    "ApiKey",
    "AuditEvent",
    "Budget",
    "CatalogOverride",
    "FailoverPolicy",
    "FailoverStep",
    "GatewayKey",
    "Provider",
    "SpendReport",
    "Team",
    "UsageRecord",
]

KIND_CHOICES = [(kind, kind) for kind in KINDS]


class Provider(models.Model):
    """One configured upstream: a wire format (`kind`), where it lives, and how to treat it."""

    name = models.SlugField(max_length=64, unique=True, help_text="Unique; used as the prefix in model names.")
    kind = models.CharField(max_length=32, choices=KIND_CHOICES)
    base_url = models.URLField(max_length=500, blank=True, help_text="Empty: the kind's default.")
    default_model = models.CharField(max_length=200, blank=True)
    timeout = models.FloatField(default=60.0, validators=[MinValueValidator(0.1), MaxValueValidator(3600)])
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    enabled = models.BooleanField(default=True)
    is_default = models.BooleanField(default=False)
    priority = models.IntegerField(default=100, help_text="Lower is tried first in automatic routing.")
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["priority", "name"]
        constraints = [
            models.UniqueConstraint(fields=["is_default"], condition=Q(is_default=True), name="one_default_provider"),
        ]

    def __str__(self) -> str:
        return f"{self.name} ({self.kind})"


class ApiKey(models.Model):
    """One provider key in a provider's pool. The secret is encrypted; only its hint is ever shown."""

    class Status(models.TextChoices):
        ACTIVE = "active"
        RETIRED = "retired"  # replaced by a rotation
        REVOKED = "revoked"  # an admin took it out
        INVALID = "invalid"  # the provider rejected it (401/403)
        PARKED = "parked"  # out of balance or quota until `parked_until` or an admin

    class QuotaWindow(models.TextChoices):
        MINUTE = "minute"
        HOUR = "hour"
        DAY = "day"
        MONTH = "month"

    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="keys")
    label = models.CharField(max_length=100, blank=True)
    secret = SecretField()
    hint = models.CharField(max_length=32)
    fingerprint = models.CharField(max_length=16, db_index=True)
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.ACTIVE)
    quota_group = models.CharField(
        max_length=100, blank=True, help_text="Keys of one account/project share rate limits and cool down together."
    )
    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute; empty: unlimited.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute; empty: unlimited.")
    token_quota = models.PositiveBigIntegerField(null=True, blank=True)
    quota_window = models.CharField(max_length=8, choices=QuotaWindow.choices, blank=True)
    parked_until = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    last_error = models.CharField(max_length=500, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    retired_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["provider", "id"]
        indexes = [models.Index(fields=["provider", "status"], name="apikey_provider_status")]

    def __str__(self) -> str:
        return f"{self.provider.name}:{self.hint} ({self.status})"

    def __repr__(self) -> str:
        return f"<ApiKey {self.pk} {self.hint} {self.status}>"


class FailoverPolicy(models.Model):
    """Where to go when a provider fails: the primary, then the fallbacks in order."""

    name = models.SlugField(max_length=64, unique=True)
    primary = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="policies_as_primary")
    fallbacks = models.ManyToManyField(Provider, through="FailoverStep", related_name="+")
    max_retries = models.PositiveSmallIntegerField(default=2, validators=[MaxValueValidator(10)])
    enabled = models.BooleanField(default=True)

    class Meta:
        verbose_name_plural = "failover policies"

    def __str__(self) -> str:
        return self.name


class FailoverStep(models.Model):
    """One fallback of a policy, at its position."""

    policy = models.ForeignKey(FailoverPolicy, on_delete=models.CASCADE, related_name="steps")
    provider = models.ForeignKey(Provider, on_delete=models.CASCADE, related_name="+")
    position = models.PositiveSmallIntegerField(default=0)

    class Meta:
        ordering = ["position"]
        constraints = [models.UniqueConstraint(fields=["policy", "provider"], name="one_step_per_provider")]


class AppendOnlyQuerySet(models.QuerySet):
    def update(self, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be updated.")

    def delete(self):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")


class AuditEvent(models.Model):
    """One change to byok's configuration, for ever. Never holds a secret: only fingerprints and hints."""

    created_at = models.DateTimeField(auto_now_add=True, db_index=True)
    actor = models.CharField(max_length=150, blank=True, help_text="Username, or `system` for byok itself.")
    action = models.CharField(max_length=64, db_index=True)
    target_type = models.CharField(max_length=32, blank=True)
    target_id = models.CharField(max_length=64, blank=True)
    target_repr = models.CharField(max_length=200, blank=True)
    provider_name = models.CharField(max_length=64, blank=True, db_index=True)
    key_fingerprint = models.CharField(max_length=16, blank=True)
    source_address = models.GenericIPAddressField(null=True, blank=True)
    details = models.JSONField(default=dict, blank=True)

    objects = AppendOnlyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["actor", "created_at"], name="audit_actor_time")]

    def save(self, *args, **kwargs):
        if self.pk is not None and not kwargs.get("force_insert"):
            raise PermissionError("Audit events are append-only: they cannot be updated.")
        super().save(*args, **kwargs)

    def delete(self, *args, **kwargs):
        raise PermissionError("Audit events are append-only: they cannot be deleted.")

    def __str__(self) -> str:
        return f"{self.created_at:%Y-%m-%d %H:%M:%S} {self.actor} {self.action} {self.target_repr}"


class UsageRecord(models.Model):
    """One chat request, successful or not, with what it cost and how long it took."""

    class Status(models.TextChoices):
        OK = "ok"
        ERROR = "error"
        CANCELLED = "cancelled"

    created_at = models.DateTimeField(db_index=True)
    request_id = models.CharField(max_length=40, unique=True)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL)
    provider = models.ForeignKey(Provider, null=True, blank=True, on_delete=models.SET_NULL, related_name="+")
    provider_name = models.CharField(max_length=64, blank=True)
    key_fingerprint = models.CharField(max_length=16, blank=True)
    key_hint = models.CharField(max_length=32, blank=True)
    model = models.CharField(max_length=200, blank=True)
    interface = models.CharField(max_length=16, blank=True, help_text="rest, openai, websocket, admin")
    stream = models.BooleanField(default=False)
    status = models.CharField(max_length=16, choices=Status.choices)
    error_code = models.CharField(max_length=64, blank=True)
    attempts = models.PositiveSmallIntegerField(default=0)
    failover_path = models.JSONField(
        default=list, blank=True, help_text="Each attempt: provider, key hint, status, class, ms."
    )
    tokens_in = models.PositiveIntegerField(default=0)
    tokens_out = models.PositiveIntegerField(default=0)
    latency_ms = models.FloatField(default=0)
    ttft_ms = models.FloatField(null=True, blank=True)
    failover_ms = models.FloatField(default=0, help_text="Time spent on failed attempts before the one that answered.")
    overhead_ms = models.FloatField(
        null=True,
        blank=True,
        help_text=(
            "Time in byok, upstream excluded (for a stream: up to its first token); the x-byok-overhead-ms header."
        ),
    )
    cost = models.DecimalField(
        max_digits=14, decimal_places=8, null=True, blank=True, help_text="Empty: unknown price."
    )
    gateway_key = models.ForeignKey(
        "byok.GatewayKey", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )
    team = models.ForeignKey(
        "byok.Team", null=True, blank=True, on_delete=models.SET_NULL, related_name="+", db_index=False
    )

    class Meta:
        ordering = ["-created_at"]
        indexes = [
            models.Index(fields=["provider_name", "created_at"], name="usage_provider_time"),
            models.Index(fields=["user", "created_at"], name="usage_user_time"),
            models.Index(fields=["key_fingerprint", "created_at"], name="usage_key_time"),
            models.Index(fields=["gateway_key", "created_at"], name="usage_gwkey_time"),
            models.Index(fields=["team", "created_at"], name="usage_team_time"),
        ]

    def __str__(self) -> str:
        return f"{self.request_id} {self.provider_name}/{self.model} {self.status}"


# -- model catalog overrides and budgets (prompt budget and cost) ------------------------------------


class CatalogOverride(models.Model):
    """An admin's figures for a model: over the shipped catalog's entry field by field, or a new entry.

    Empty fields keep the file's value. `provider` is a provider kind (openai,
    anthropic, gemini, deepseek, openai_compatible) or one configured
    provider's name, which wins over its kind.
    """

    provider = models.CharField(
        max_length=64, help_text="A provider kind (openai, anthropic, ...) or a configured provider's name."
    )
    model = models.CharField(
        max_length=200, help_text="The model name as requests send it (a dated snapshot name also works)."
    )
    context_window = models.PositiveIntegerField(null=True, blank=True, help_text="Prompt + output tokens.")
    max_output_tokens = models.PositiveIntegerField(null=True, blank=True)
    max_input_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Prompt limit, where it is separate."
    )
    default_max_tokens = models.PositiveIntegerField(
        null=True, blank=True, help_text="Filled in when a request has no max_tokens."
    )
    input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per million input tokens."
    )
    cached_input_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per million cached input tokens."
    )
    output_per_mtok = models.DecimalField(
        max_digits=12, decimal_places=6, null=True, blank=True, help_text="USD per million output tokens."
    )
    as_of = models.DateField(null=True, blank=True, help_text="When the figures were taken.")
    source = models.CharField(max_length=500, blank=True, help_text="Where the figures come from.")
    note = models.CharField(max_length=500, blank=True)
    enabled = models.BooleanField(default=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["provider", "model"]
        constraints = [models.UniqueConstraint(fields=["provider", "model"], name="one_override_per_model")]

    def __str__(self) -> str:
        return f"{self.provider}/{self.model}"


class Budget(models.Model):
    """A token and/or spend (USD) limit for one user or one provider key, per UTC day or month."""

    class Period(models.TextChoices):
        DAY = "day"
        MONTH = "month"

    user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.CASCADE, related_name="byok_budgets"
    )
    key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="budgets")
    period = models.CharField(max_length=8, choices=Period.choices, default=Period.DAY)
    token_limit = models.PositiveBigIntegerField(
        null=True, blank=True, help_text="Input + output tokens per period; empty: no token limit."
    )
    spend_limit = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="USD per period; empty: no spend limit."
    )
    enabled = models.BooleanField(default=True)
    note = models.CharField(max_length=200, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        constraints = [
            models.CheckConstraint(
                condition=Q(user__isnull=False, key__isnull=True) | Q(user__isnull=True, key__isnull=False),
                name="budget_one_scope",
                violation_error_message="A budget belongs to exactly one user or one key.",
            ),
            models.CheckConstraint(
                condition=Q(token_limit__isnull=False) | Q(spend_limit__isnull=False),
                name="budget_has_a_limit",
                violation_error_message="Set a token limit, a spend limit, or both.",
            ),
            models.UniqueConstraint(
                fields=["user", "period"],
                condition=Q(user__isnull=False),
                name="one_user_budget_per_period",
                violation_error_message="This user has a budget for this period already.",
            ),
            models.UniqueConstraint(
                fields=["key", "period"],
                condition=Q(key__isnull=False),
                name="one_key_budget_per_period",
                violation_error_message="This key has a budget for this period already.",
            ),
        ]

    @property
    def scope(self) -> str:
        """The shared-state counter scope: ``user:<id>`` or ``apikey:<id>``."""
        return f"user:{self.user_id}" if self.user_id is not None else f"apikey:{self.key_id}"

    def __str__(self) -> str:
        limits = " ".join(
            p
            for p in (
                f"{self.token_limit} tokens" if self.token_limit is not None else "",
                f"${self.spend_limit}" if self.spend_limit is not None else "",
            )
            if p
        )
        return f"{self.scope} {limits}/{self.period}"


class SpendReport(UsageRecord):
    """The usage records seen as spend totals (an admin page: by provider, key, user, model and day)."""

    class Meta:
        proxy = True
        verbose_name = "spend report"
        verbose_name_plural = "spend report"


def undecryptable_key_count() -> int:
    """How many stored, not revoked provider keys this process cannot decrypt (0 = all readable); synchronous ORM.

    For readiness checks and operators: a process started with the wrong `BYOK_MASTER_KEY` reports them here.
    (Here rather than in byok.crypto, which byok.models imports: no import cycle.)
    """
    from byok.crypto import undecryptable

    secrets = ApiKey.objects.exclude(status=ApiKey.Status.REVOKED).values_list("secret", flat=True)
    return undecryptable(secrets.iterator())  # type: ignore[arg-type]  # the field reads SealedSecret values
