"""Gateway keys and teams, changed audited: create (the key shown once), change, revoke; teams likewise.

    key, plain = create_key(actor=actor, name="ci", user="carol", models=["openai/*"], rpm=60)
    update_key(key.pk, {"models": ["openai/gpt-4o-mini"]}, actor=actor)
    revoke_key(key.pk, actor=actor)       # refused by every process before this returns
    team = create_team(actor=actor, name="research", members=["carol"], models=["anthropic/*"])

Every change is one `audited_change` (one audit event naming the key by its lookup id, never
its secret nor `byok_<lookup>`, which holds 8 of its characters); once it commits, every
process drops its cached grants (`lookup.bump_version`) before the call returns, so the API
answers after the change is effective everywhere.
Bad input is `InvalidConfigError` (422) naming the field: an unknown user or team, a member
who is not one, a model pattern that no configured provider can ever match.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Any

from django.contrib.auth import get_user_model
from django.db import transaction

from byok.audit import Actor
from byok.changes import audited_change
from byok.exceptions import ConflictError, InvalidConfigError, NotFound
from byok.keys.lookup import bump_version
from byok.keys.patterns import MAX_PATTERNS, pattern_problem, unreachable
from byok.keys.secret import new_key
from byok.models import GatewayKey, Provider, Team

__all__ = [
    "KEY_FIELDS",
    "TEAM_FIELDS",
    "create_key",
    "create_team",
    "delete_team",
    "get_key",
    "get_team",
    "revoke_key",
    "update_key",
    "update_team",
]

LIMIT_FIELDS = ("models", "rpm", "tpm", "budget")
KEY_FIELDS = ("name", "user", "team", "expires_at", *LIMIT_FIELDS)
TEAM_FIELDS = ("name", "members", *LIMIT_FIELDS)
Errors = dict[str, list[str]]


def get_key(pk: int) -> GatewayKey:
    key = GatewayKey.objects.select_related("user", "team").filter(pk=pk).first()
    if key is None:
        raise NotFound(f"No gateway key {pk}.")
    return key


def get_team(pk: int) -> Team:
    team = Team.objects.filter(pk=pk).first()
    if team is None:
        raise NotFound(f"No team {pk}.")
    return team


# -- validation -----------------------------------------------------------------------------------


def _user(value: Any, field: str, errors: Errors):
    users = get_user_model().objects
    if isinstance(value, int) and not isinstance(value, bool):
        user = users.filter(pk=value).first()
    elif isinstance(value, str) and value:
        user = users.filter(pk=int(value)).first() if value.isdigit() else users.filter(username=value).first()
    else:
        user = None
    if user is None:
        errors.setdefault(field, []).append(f"No such user: {str(value)[:64]!r}.")
    return user


def _team(value: Any, errors: Errors) -> Team | None:
    if isinstance(value, int) and not isinstance(value, bool):
        team = Team.objects.filter(pk=value).first()
    elif isinstance(value, str) and value:
        team = (
            Team.objects.filter(pk=int(value)).first() if value.isdigit() else Team.objects.filter(name=value).first()
        )
    else:
        team = None
    if team is None:
        errors.setdefault("team", []).append(f"No such team: {str(value)[:64]!r}.")
    return team


def _models(value: Any, errors: Errors) -> list[str] | None:
    if not isinstance(value, list) or len(value) > MAX_PATTERNS:
        errors["models"] = [f"A list of at most {MAX_PATTERNS} model patterns (empty: every model)."]
        return None
    for i, pattern in enumerate(value):
        problem = pattern_problem(pattern)
        if problem:
            errors.setdefault("models", []).append(f"models[{i}] must be {problem}.")
    if "models" in errors:
        return None
    never = unreachable(value, Provider.objects.values_list("name", flat=True))
    if never:
        errors["models"] = [f"{p!r} can never match a configured provider." for p in never]
        return None
    return list(dict.fromkeys(value))


def _count(value: Any, field: str, errors: Errors) -> int | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int) or not 0 < value < 2**31:
        errors[field] = ["A positive integer, or null for no limit."]
    return value


def _budget(value: Any, errors: Errors) -> dict[str, Any]:
    """``{tokens, spend_usd, period}`` (or null: no budget) -> the three model fields."""
    none = {"budget_tokens": None, "budget_spend_usd": None, "budget_period": "month"}
    if value is None:
        return none
    if not isinstance(value, dict) or set(value) - {"tokens", "spend_usd", "period"}:
        errors["budget"] = ["An object with `tokens` and/or `spend_usd`, and `period` (day or month); or null."]
        return none
    tokens, spend, period = value.get("tokens"), value.get("spend_usd"), value.get("period", "month")
    if tokens is not None and (isinstance(tokens, bool) or not isinstance(tokens, int) or not 0 < tokens < 2**63):
        errors["budget.tokens"] = ["A positive integer."]
    amount = None
    if spend is not None:
        try:
            amount = Decimal(str(spend))
            if isinstance(spend, bool) or not amount.is_finite() or amount <= 0 or amount >= 10**8:
                raise InvalidOperation
            amount = amount.quantize(Decimal("0.0001"))
        except (InvalidOperation, ValueError):
            errors["budget.spend_usd"] = ["A positive amount in USD."]
    if period not in ("day", "month"):
        errors["budget.period"] = ["day or month."]
    if tokens is None and spend is None:
        errors["budget"] = ["Set `tokens`, `spend_usd` or both (or send null for no budget)."]
    return {"budget_tokens": tokens, "budget_spend_usd": amount, "budget_period": period}


def _expiry(value: Any, errors: Errors) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value.replace("Z", "+00:00"))
        except ValueError:
            value = None
    if not isinstance(value, datetime):
        errors["expires_at"] = ["An ISO 8601 date-time, or null for a key that does not expire."]
        return None
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def _name(value: Any, errors: Errors, *, slug: bool = False) -> str | None:
    if not isinstance(value, str) or not value.strip() or len(value) > (64 if slug else 100):
        errors["name"] = [f"A name of 1-{64 if slug else 100} characters."]
        return None
    if slug and not all(c.isascii() and (c.isalnum() or c in "-_") for c in value):
        errors["name"] = ["Letters, digits, '-' or '_'."]
        return None
    if any(ord(c) < 32 for c in value):
        errors["name"] = ["No control characters."]
        return None
    return value.strip()


def _limits(values: dict[str, Any], errors: Errors) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if "models" in values:
        out["models"] = _models(values["models"], errors)
    for field in ("rpm", "tpm"):
        if field in values:
            out[field] = _count(values[field], field, errors)
    if "budget" in values:
        out.update(_budget(values["budget"], errors))
    return out


def _unknown(values: dict[str, Any], allowed: tuple[str, ...], errors: Errors) -> None:
    for name in sorted(set(values) - set(allowed)):
        errors[name] = ["Unknown or read-only field."]


def _limit_details(obj) -> dict[str, Any]:
    return {
        "models": obj.models,
        "rpm": obj.rpm,
        "tpm": obj.tpm,
        "budget_tokens": obj.budget_tokens,
        "budget_spend_usd": str(obj.budget_spend_usd) if obj.budget_spend_usd is not None else None,
        "budget_period": obj.budget_period,
    }


def _key_details(key: GatewayKey) -> dict[str, Any]:
    return {
        "lookup": key.lookup,  # not `prefix`: stored text never holds 8 characters of a key in a row
        "name": key.name,
        "user": key.user.get_username(),
        "team": key.team.name if key.team is not None else None,
        "expires_at": key.expires_at.isoformat() if key.expires_at else None,
        **_limit_details(key),
    }


def _announce() -> None:
    """Once the change commits: every process drops its cached grants (before the API answers)."""
    transaction.on_commit(bump_version)


# -- keys -----------------------------------------------------------------------------------------


def create_key(*, actor: Actor | None = None, **values: Any) -> tuple[GatewayKey, str]:
    """A new key (one audit event) and its plain text, to show once. ``user`` or ``team`` (or both)."""
    errors: Errors = {}
    _unknown(values, KEY_FIELDS, errors)
    fields = _limits(values, errors)
    fields["name"] = _name(values.get("name"), errors)
    fields["expires_at"] = _expiry(values.get("expires_at"), errors)
    team = _team(values["team"], errors) if values.get("team") is not None else None
    user = _user(values["user"], "user", errors) if values.get("user") is not None else None
    if user is None and team is None and "user" not in errors and "team" not in errors:
        errors["user"] = ["Give the key's owner (`user`) or its `team` (or both)."]
    if user is not None and team is not None and not team.members.filter(pk=user.pk).exists():
        errors["user"] = [f"{user.get_username()!r} is not a member of team {team.name!r}."]
    if user is None and team is not None and not errors:
        user = _actor_user(actor, errors)
    if errors:
        raise InvalidConfigError(errors)
    plain, lookup, digest = new_key()
    key = GatewayKey(user=user, team=team, lookup=lookup, digest=digest, **fields)
    with audited_change(actor) as change:
        key.save()
        change.record("gateway_key.create", target=key, details=_key_details(key))
    return key, plain


def _actor_user(actor: Actor | None, errors: Errors):
    """A team key without a `user` is owned by the staff user who made it."""
    user = get_user_model().objects.filter(username=actor.name).first() if actor is not None else None
    if user is None:
        errors["user"] = ["Give the key's owner (`user`): a team key needs one."]
    return user


def update_key(pk: int, changes: dict[str, Any], *, actor: Actor | None = None) -> GatewayKey:
    """Change a key's name, limits, team or expiry (one audit event with before and after)."""
    key = get_key(pk)
    errors: Errors = {}
    _unknown(changes, ("name", "team", "expires_at", *LIMIT_FIELDS), errors)
    fields = _limits(changes, errors)
    if "name" in changes:
        fields["name"] = _name(changes["name"], errors)
    if "expires_at" in changes:
        fields["expires_at"] = _expiry(changes["expires_at"], errors)
    if "team" in changes:
        fields["team"] = _team(changes["team"], errors) if changes["team"] is not None else None
    if errors:
        raise InvalidConfigError(errors)
    if key.revoked:
        raise ConflictError("This key is revoked: it cannot change.")
    before = _key_details(key)
    with audited_change(actor) as change:
        for name, value in fields.items():
            setattr(key, name, value)
        key.save()
        change.record("gateway_key.update", target=key, details={"before": before, "after": _key_details(key)})
        _announce()
    return key


def revoke_key(pk: int, *, actor: Actor | None = None) -> GatewayKey:
    """Revoke a key: every process refuses it (401 key_revoked) before this returns. Revoking twice is a no-op."""
    with audited_change(actor) as change:
        key = GatewayKey.objects.select_for_update(of=("self",)).select_related("user", "team").filter(pk=pk).first()
        if key is None:
            raise NotFound(f"No gateway key {pk}.")
        if key.revoked_at is None:
            key.revoked_at = datetime.now(UTC)
            key.save(update_fields=["revoked_at", "updated_at"])
            change.record("gateway_key.revoke", target=key, details={"lookup": key.lookup, "name": key.name})
            _announce()
    return key


# -- teams ----------------------------------------------------------------------------------------


def _members(value: Any, errors: Errors) -> list | None:
    if not isinstance(value, list) or len(value) > 10_000:
        errors["members"] = ["A list of users (ids or usernames)."]
        return None
    found = []
    for item in value:
        user = _user(item, "members", errors)
        if user is not None:
            found.append(user)
    return found


def _team_details(team: Team) -> dict[str, Any]:
    return {
        "name": team.name,
        "members": sorted(team.members.values_list("username", flat=True)),
        **_limit_details(team),
    }


def create_team(*, actor: Actor | None = None, **values: Any) -> Team:
    errors: Errors = {}
    _unknown(values, TEAM_FIELDS, errors)
    fields = _limits(values, errors)
    fields["name"] = _name(values.get("name"), errors, slug=True)
    members = _members(values.get("members", []), errors)
    if errors:
        raise InvalidConfigError(errors)
    team = Team(**fields)
    with audited_change(
        actor, conflict=lambda: ConflictError(f"A team named {fields['name']!r} exists already.")
    ) as change:
        team.save()
        team.members.set(members or [])
        change.record("team.create", target=team, details=_team_details(team))
    return team


def update_team(pk: int, changes: dict[str, Any], *, actor: Actor | None = None) -> Team:
    team = get_team(pk)
    errors: Errors = {}
    _unknown(changes, TEAM_FIELDS, errors)
    fields = _limits(changes, errors)
    if "name" in changes:
        fields["name"] = _name(changes["name"], errors, slug=True)
    members = _members(changes["members"], errors) if "members" in changes else None
    if errors:
        raise InvalidConfigError(errors)
    before = _team_details(team)
    with audited_change(actor, conflict=lambda: ConflictError("A team of that name exists already.")) as change:
        for name, value in fields.items():
            setattr(team, name, value)
        team.save()
        if members is not None:
            team.members.set(members)
        change.record("team.update", target=team, details={"before": before, "after": _team_details(team)})
        _announce()
    return team


def delete_team(pk: int, *, actor: Actor | None = None) -> None:
    """Delete a team that has no keys left unrevoked (409 otherwise); its revoked keys leave it."""
    with audited_change(actor) as change:
        team = Team.objects.select_for_update().filter(pk=pk).first()
        if team is None:
            raise NotFound(f"No team {pk}.")
        if team.keys.filter(revoked_at__isnull=True).exists():
            raise ConflictError("The team still has keys: revoke them first.")
        details = _team_details(team)
        team.keys.update(team=None)
        change.record("team.delete", target=team, details=details)
        team.delete()
        _announce()
