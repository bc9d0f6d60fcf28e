"""Gateway keys and teams: how people and apps get into byok's chat endpoints (issue 14).

A `GatewayKey` is `byok_<lookup id><secret>`: shown once when it is made, stored only as the
SHA-256 of the whole key (`digest`) beside a 6-character lookup id (`lookup`) that is not a
secret and is shown as `byok_<lookup>…`. Neither column holds the key or an 8-character slice
of it. A key belongs to a user (its owner) and optionally to a `Team`, whose allowed models,
rate limits and budget its keys share (the narrower of key and team wins).

Imported by `byok.models` (the app's models module), so these are ordinary byok models.
"""

from __future__ import annotations

from django.conf import settings
from django.db import models
from django.db.models import Q

__all__ = ["BudgetPeriod", "GatewayKey", "Team"]


class BudgetPeriod(models.TextChoices):
    DAY = "day"
    MONTH = "month"


class Limits(models.Model):
    """What a key or a team may do: models (patterns; empty = all), rpm/tpm, one token/spend budget."""

    rpm = models.PositiveIntegerField(null=True, blank=True, help_text="Requests per minute; empty: unlimited.")
    tpm = models.PositiveIntegerField(null=True, blank=True, help_text="Tokens per minute; empty: unlimited.")
    budget_tokens = models.PositiveBigIntegerField(null=True, blank=True, help_text="Tokens per period.")
    budget_spend_usd = models.DecimalField(
        max_digits=12, decimal_places=4, null=True, blank=True, help_text="USD per period."
    )
    budget_period = models.CharField(max_length=8, choices=BudgetPeriod.choices, default=BudgetPeriod.MONTH)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)
    # Last: the field's name hides django.db.models in the rest of the class body.
    models = models.JSONField(
        default=list, blank=True, help_text="Allowed model patterns (`openai/*`, `gpt-4o-mini`); empty: all."
    )

    class Meta:
        abstract = True


class Team(Limits):
    """People and apps that share allowed models, limits and a budget."""

    name = models.SlugField(max_length=64, unique=True)
    members = models.ManyToManyField(settings.AUTH_USER_MODEL, blank=True, related_name="byok_teams")

    class Meta:
        ordering = ["name"]

    def __str__(self) -> str:
        return self.name


class GatewayKey(Limits):
    """One gateway key: its hash, lookup id, owner, optional team, limits, expiry and revocation."""

    name = models.CharField(max_length=100)
    lookup = models.CharField(max_length=8, db_index=True, help_text="Not secret: the key reads byok_<lookup>….")
    digest = models.CharField(max_length=64, unique=True, help_text="SHA-256 of the whole key (hex).")
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="byok_gateway_keys")
    team = models.ForeignKey(Team, null=True, blank=True, on_delete=models.PROTECT, related_name="keys")
    expires_at = models.DateTimeField(null=True, blank=True)
    last_used_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        indexes = [models.Index(fields=["user", "revoked_at"], name="gwkey_user_revoked")]
        constraints = [models.CheckConstraint(condition=~Q(digest=""), name="gwkey_has_digest")]

    @property
    def prefix(self) -> str:
        """How the key is shown: ``byok_<lookup>…`` (never more of it)."""
        return f"byok_{self.lookup}\u2026"

    @property
    def revoked(self) -> bool:
        return self.revoked_at is not None

    def __str__(
        self,
    ) -> str:  # stored in audit rows: the lookup id alone, not `byok_<lookup>` (8 characters of the key)
        return f"{self.name} [{self.lookup}]"

    def __repr__(self) -> str:
        return f"<GatewayKey {self.pk} {self.prefix}>"
