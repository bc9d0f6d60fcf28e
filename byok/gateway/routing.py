"""Routing: which providers (and models) a request goes to, in order, decided from the config snapshot alone.

    targets = route(snapshot, req, provider=None)   # [Target(primary), Target(fallback), ...]

Explicit provider (the `provider` argument, or a `<provider>/<model>` prefix)
> the failover policy > the default provider > automatic choice (enabled
providers with keys, by priority). An unknown provider is refused here,
before any key is picked or any upstream call is made.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byok.budgets import Prepared
from byok.exceptions import NoUsableProviderError, ProviderNotFoundError
from byok.gateway.config_cache import ProviderConfig, Snapshot
from byok.providers.types import ChatRequest

__all__ = ["Target", "named_provider", "route", "split_model"]


@dataclass(frozen=True, slots=True)
class Target:
    """One provider to try, with the model to ask it for and the request prepared for that model."""

    provider: ProviderConfig
    model: str
    max_retries: int
    prepared: Prepared | None = None  # set by the budget gate: max_tokens settled, prompt estimated


def split_model(model: str, known: dict[str, Any]) -> tuple[str | None, str]:
    """`"<provider>/<model>"` -> (provider, model) when the prefix is a configured provider; else (None, model)."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in known:
        return prefix, rest
    return None, model


def named_provider(req: ChatRequest, provider: str | None) -> str | None:
    """The provider a request names explicitly, known or not: the argument, else the model's prefix."""
    if provider:
        return provider
    prefix, slash, _ = req.model.partition("/")
    return prefix if slash else None


def route(snap: Snapshot, req: ChatRequest, provider: str | None, *, failover: bool = True) -> list[Target]:
    """The ordered targets for a request; raises ProviderNotFoundError / NoUsableProviderError."""
    model = req.model
    if provider is None:
        provider, model = split_model(model, snap.by_name)
    if provider is not None:
        primary = snap.by_name.get(provider)
        if primary is None:
            raise ProviderNotFoundError(f"No provider named {provider!r} is configured.")
        policy = snap.policy_for(primary.id)
    else:
        default = snap.default
        policy = snap.policy_for(default.id if default else None)
        if policy is not None and (default is None or policy.primary_id == default.id):
            primary = snap.by_id[policy.primary_id]
        elif default is not None:
            primary, policy = default, None
        else:
            auto = [p for p in snap.ordered if p.enabled and p.keys]
            if not auto:
                raise NoUsableProviderError("No enabled provider with a usable key is configured.")
            targets = [Target(p, (model or p.default_model) if i == 0 else p.default_model, p.max_retries) for i, p in enumerate(auto)]
            return targets[:1] if not failover else targets
    retries = policy.max_retries if policy else primary.max_retries
    targets = [Target(primary, model or primary.default_model, retries)]
    if failover and policy is not None:
        for pid in policy.fallback_ids:
            fallback = snap.by_id.get(pid)
            if fallback is not None and fallback.id != primary.id:
                targets.append(Target(fallback, fallback.default_model, policy.max_retries))
    return targets
