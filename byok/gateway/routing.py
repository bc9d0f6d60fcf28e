"""Routing: which providers (and models) a request goes to, in order, decided from the config snapshot alone.

    targets = route(snapshot, req, provider=None)   # [Target(primary), Target(fallback), ...]

Explicit provider (the `provider` argument, or a `<provider>/<model>` prefix)
> the failover policy > the default provider > automatic choice (enabled
providers with keys, by priority). An unknown provider is refused here,
before any key is picked or any upstream call is made.

A model with a slash whose prefix is no provider's name (`nosuch/gpt-4o`) is
a 404 `provider_not_found`, unless the model catalog knows the whole string
as a model of a configured provider (OpenRouter-style ids such as
`meta-llama/llama-3.1-8b` on an `openai_compatible` provider, or Gemini's
`models/...`): then it goes, whole, to the default route if that provider
knows it, else to the first provider (by priority) that does.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

from byok.exceptions import NoUsableProviderError, ProviderNotFoundError
from byok.gateway.config_cache import ProviderConfig, Snapshot
from byok.maxtokens import Prepared
from byok.providers.types import ChatRequest
from byok.tokens import estimate_prompt_tokens

__all__ = ["Target", "request_for", "reserve_for", "route", "split_model"]


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


def route(
    snap: Snapshot,
    req: ChatRequest,
    provider: str | None,
    *,
    failover: bool = True,
    knows: Callable[[ProviderConfig, str], bool] | None = None,
) -> list[Target]:
    """The ordered targets for a request; raises ProviderNotFoundError / NoUsableProviderError.

    ``knows(provider, model)`` says whether the catalog knows ``model`` for that provider (module doc).
    """
    model = req.model
    if provider is None:
        provider, model = split_model(model, snap.by_name)
        if provider is None and "/" in model:
            provider = _catalog_owner(snap, model, knows, failover)
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
            targets = [
                Target(p, (model or p.default_model) if i == 0 else p.default_model, p.max_retries)
                for i, p in enumerate(auto)
            ]
            return targets[:1] if not failover else targets
    retries = policy.max_retries if policy else primary.max_retries
    targets = [Target(primary, model or primary.default_model, retries)]
    if failover and policy is not None:
        for pid in policy.fallback_ids:
            fallback = snap.by_id.get(pid)
            if fallback is not None and fallback.id != primary.id:
                targets.append(Target(fallback, fallback.default_model, policy.max_retries))
    return targets


def _catalog_owner(
    snap: Snapshot, model: str, knows: Callable[[ProviderConfig, str], bool] | None, failover: bool
) -> str | None:
    """For a slash model whose prefix is no provider: None (default route) if the default route's provider
    knows the whole id, else the name of the first provider that does; ProviderNotFoundError if none does."""
    owners = [p for p in snap.ordered if knows is not None and knows(p, model)]
    if not owners:
        prefix = model.partition("/")[0]
        raise ProviderNotFoundError(
            f"No provider named {prefix!r} is configured, and no configured provider serves a model {model!r}."
        )
    try:
        default_primary = route(snap, ChatRequest(model="", messages=()), None, failover=failover)[0].provider
    except NoUsableProviderError:
        default_primary = None
    if default_primary is not None and default_primary in owners:
        return None
    return owners[0].name


def request_for(target: Target, req: ChatRequest, *, stream: bool) -> ChatRequest:
    """The request to send to a target: as prepared for its model (max_tokens settled), with its model."""
    prepared = target.prepared.request if target.prepared is not None else req
    if prepared.model == target.model and prepared.stream == stream:
        return prepared
    return replace(prepared, model=target.model, stream=stream)


def reserve_for(target: Target, req: ChatRequest) -> int:
    """What a request counts against the target's rate windows (the prompt estimate plus max_tokens)."""
    if target.prepared is not None:
        return target.prepared.reserve
    return estimate_prompt_tokens(req) + (req.max_tokens or 0)
