"""A user's own gateway keys: list, create within what staff allow, revoke; every change through the audited store.

    form = OwnKeyForm(user, request.POST)
    if form.is_valid():
        key, plain = create_own_key(user, form, actor=actor_from_request(request))

What staff allow: at most `settings.BYOK_SELF_SERVICE_MAX_KEYS` active (unrevoked, unexpired)
keys per user, and a key that names a team names one the user is a member of, with models
inside the team's allow-list (a key's own list can only narrow its team's). A key without a
team gives no more than the user's own login already has (their budgets still apply).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from django import forms
from django.conf import settings
from django.db.models import Q

from byok.audit import Actor
from byok.exceptions import InvalidConfigError, NotFound
from byok.keys import store
from byok.keys.patterns import allowed
from byok.models import GatewayKey, Team

__all__ = ["OwnKeyForm", "active_keys", "create_own_key", "max_keys", "own_keys", "revoke_own_key"]

EXPIRY_CHOICES = [("", "Never"), ("7", "In 7 days"), ("30", "In 30 days"), ("90", "In 90 days")]


def max_keys() -> int:
    return int(getattr(settings, "BYOK_SELF_SERVICE_MAX_KEYS", 5))


def own_keys(user):
    """The user's keys, newest first (revoked ones too: their history)."""
    return GatewayKey.objects.filter(user=user).select_related("team")


def active_keys(user) -> int:
    now = datetime.now(UTC)
    return own_keys(user).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now), revoked_at__isnull=True).count()


class OwnKeyForm(forms.Form):
    """Name, optional team (one of the user's), optional models (patterns, comma or space separated), expiry."""

    name = forms.CharField(max_length=100, strip=True)
    team = forms.ModelChoiceField(queryset=Team.objects.none(), required=False, empty_label="No team")
    models = forms.CharField(
        required=False,
        max_length=2000,
        help_text="Patterns such as openai/* or gpt-4o-mini, separated by commas or spaces; empty: all you may use.",
    )
    expires = forms.ChoiceField(choices=EXPIRY_CHOICES, required=False)

    def __init__(self, user, *args, **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.user = user
        self.fields["team"].queryset = Team.objects.filter(members=user).order_by("name")  # type: ignore[attr-defined]

    def clean_models(self) -> list[str]:
        text = self.cleaned_data.get("models") or ""
        return list(dict.fromkeys(p for p in text.replace(",", " ").split() if p))

    def clean(self):
        data = super().clean() or {}
        if active_keys(self.user) >= max_keys():
            raise forms.ValidationError(
                f"You have {max_keys()} active keys, the most allowed: revoke one first.", code="cap"
            )
        team, models = data.get("team"), data.get("models") or []
        if team is not None and team.models:
            outside = [m for m in models if m not in team.models and not allowed(team.models, m)]
            if outside:
                self.add_error(
                    "models",
                    f"Not allowed for team {team.name}: {', '.join(outside)}. "
                    f"The team may use: {', '.join(team.models)}.",
                )
        return data


def create_own_key(user, form: OwnKeyForm, *, actor: Actor) -> tuple[GatewayKey, str] | None:
    """The new key and its plain text (to show once), or None with the store's refusals added to ``form``."""
    data = form.cleaned_data
    days = data.get("expires")
    values = {
        "name": data["name"],
        "user": user.pk,
        "team": data["team"].pk if data.get("team") is not None else None,
        "models": data.get("models") or [],
        "expires_at": datetime.now(UTC) + timedelta(days=int(days)) if days else None,
    }
    try:
        return store.create_key(actor=actor, **values)
    except InvalidConfigError as exc:  # e.g. a pattern no configured provider can match
        for field, messages in (exc.errors or {}).items():
            form.add_error(field if field in form.fields else None, " ".join(messages))
        return None


def revoke_own_key(user, pk: int, *, actor: Actor) -> GatewayKey:
    """Revoke one of the user's keys; another user's key is `NotFound`, exactly like a key that does not exist."""
    if not own_keys(user).filter(pk=pk).exists():
        raise NotFound(f"No gateway key {pk}.")
    return store.revoke_key(pk, actor=actor)
