"""What one gateway key may do, with its team's limits beside its own: pure data for every front end.

    grant = Grant(key_id=7, lookup="3f9a1c", name="ci", user_id=2, team_id=1,
                  key=Limits(models=("openai/*",)), team=Limits(models=("openai/gpt-4o*",)))
    grant.allows("openai/gpt-4o-mini")        # True: key and team both allow it
    grant.allows("anthropic/claude-3-5-haiku") # False -> 403 model_not_allowed, no upstream call

The narrower of key and team wins: a model must pass both allow-lists, and the key's
and the team's rpm / tpm / budget are each counted and each enforced (byok's quota code
reads `key` and `team`; `scopes()` names their shared-state counters).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from byok.exceptions import ByokError
from byok.keys.patterns import allowed

__all__ = ["Grant", "KeyRejected", "Limits", "ModelNotAllowed"]


@dataclass(frozen=True, slots=True)
class Limits:
    """The allow-list, rate limits and budget set on a key or a team (None: unlimited)."""

    models: tuple[str, ...] = ()
    rpm: int | None = None
    tpm: int | None = None
    budget_tokens: int | None = None
    budget_spend_usd: float | None = None
    budget_period: str = "month"


@dataclass(frozen=True, slots=True)
class Grant:
    """A verified gateway key: who owns it, its team, and both sets of limits."""

    key_id: int
    lookup: str
    name: str
    user_id: int
    team_id: int | None = None
    key: Limits = field(default_factory=Limits)
    team: Limits | None = None
    expires_at: float | None = None  # seconds since the epoch
    revoked: bool = False

    @property
    def prefix(self) -> str:
        return f"byok_{self.lookup}\u2026"

    def allows(self, model: str) -> bool:
        """Whether ``model`` (``provider/model`` or a bare model) passes the key's and the team's allow-lists."""
        return allowed(self.key.models, model) and (self.team is None or allowed(self.team.models, model))

    def limits(self) -> tuple[Limits, ...]:
        return (self.key,) if self.team is None else (self.key, self.team)

    def scopes(self) -> dict[str, Limits]:
        """The shared-state scope of each set of limits: ``gwkey:<id>`` and ``team:<id>``."""
        out = {f"gwkey:{self.key_id}": self.key}
        if self.team is not None:
            out[f"team:{self.team_id}"] = self.team
        return out


class KeyRejected(ByokError):
    """A gateway key that does not let its bearer in: malformed, unknown, revoked or expired (401)."""

    code = "invalid_key"
    status_code = 401
    default_message = "The gateway key is not valid."

    def __init__(self, code: str = "invalid_key", message: str | None = None) -> None:
        super().__init__(message or _MESSAGES.get(code, self.default_message))
        self.code = code


_MESSAGES = {
    "invalid_key": "The gateway key is not valid.",
    "key_revoked": "This gateway key was revoked.",
    "key_expired": "This gateway key has expired.",
}


class ModelNotAllowed(ByokError):
    """The key (or its team) may not use the model asked for (403, no upstream call)."""

    code = "model_not_allowed"
    status_code = 403
    default_message = "This key may not use that model."
