"""The max_tokens policy and the context-window refusal: a request made ready for one model, before any key is picked.

    prepared = prepare_request(req, kind="anthropic", model="claude-sonnet-4", info=catalog.lookup(...))
    pairs = prepare_targets(req, targets, catalog)     # [(target, Prepared)] for the targets kept

Pure code (no ORM, no I/O): the catalog entry comes from ``byok.catalog``, the
prompt estimate from ``byok.tokens``.

**max_tokens policy** (``prepare_request``), for a model the catalog knows:

- a ``max_tokens`` above the model's output limit is **clamped** to the limit
  (never refused): clients such as the OpenAI SDK often send a generic large
  value, and the provider would refuse it with a 400 otherwise;
- a missing ``max_tokens`` is filled: with the catalog's ``default_max_tokens``
  if it has one (DeepSeek's documented 4K / 32K defaults), else for providers
  that require one (Anthropic) with the adapter's default (4096), else with the
  model's output limit (what OpenAI and Gemini do themselves). The fill never
  exceeds the output limit nor the room the prompt leaves in the window
  (estimate + 10 % margin); when the room is the tighter bound, an optional
  ``max_tokens`` is left out so the provider uses what is left;
- ``ContextLengthExceededError`` (400 ``context_length_exceeded``, before any
  key is picked or upstream call made) when the estimated prompt exceeds the
  model's input limit, when estimated prompt + ``max_tokens`` (after the
  clamp) exceeds the context window, or when the prompt leaves no room at all.

For a model the catalog does not know nothing is enforced, except that
Anthropic always gets ``max_tokens`` (the adapter default). With failover,
the primary target is checked strictly; a fallback whose window cannot take
the request is dropped from the chain rather than failing the request.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any, Protocol, TypeVar

from byok.catalog import Catalog, ModelInfo
from byok.exceptions import ContextLengthExceededError
from byok.providers import get_adapter
from byok.providers.types import ChatRequest
from byok.tokens import estimate_prompt_tokens

__all__ = ["FILL_MARGIN", "Prepared", "R", "Routed", "prepare_request", "prepare_targets"]

# The prompt estimate's safety margin when filling max_tokens up to the room left in the window.
FILL_MARGIN = 1.10


@dataclass(frozen=True, slots=True)
class Prepared:
    """A request made ready for one model: its max_tokens settled, its prompt estimated."""

    request: ChatRequest
    prompt_tokens: int
    reserve: int  # what the key pool's rate windows count before the answer: prompt + the caller's max_tokens
    info: ModelInfo | None
    filled: bool = False
    clamped_from: int | None = None


def _requires_max_tokens(kind: str) -> tuple[bool, int]:
    try:
        adapter = get_adapter(kind)
    except Exception:  # an unknown kind: treat like an OpenAI-style endpoint
        return False, 4096
    return bool(getattr(adapter, "requires_max_tokens", False)), int(getattr(adapter, "default_max_tokens", 4096))


def prepare_request(req: ChatRequest, *, kind: str, model: str, info: ModelInfo | None) -> Prepared:
    """Apply the max_tokens policy (module doc) for ``model`` of a ``kind`` provider; may raise
    ContextLengthExceededError.
    """
    required, adapter_default = _requires_max_tokens(kind)
    prompt = estimate_prompt_tokens(req, kind, info)
    asked = req.max_tokens
    if info is None:
        if asked is None and required:
            return Prepared(replace(req, max_tokens=adapter_default), prompt, prompt, None, filled=True)
        return Prepared(req, prompt, prompt + (asked or 0), None)
    limit = info.prompt_limit
    if limit is not None and prompt > limit:
        raise ContextLengthExceededError(
            f"The prompt (about {prompt} tokens) is longer than {model}'s input limit of {limit} tokens.",
            model=model,
            prompt_tokens=prompt,
            max_tokens=asked,
            context_window=info.context_window,
            max_input_tokens=info.max_input_tokens,
        )
    window = info.context_window
    clamped_from = None
    if asked is not None:
        if info.max_output_tokens is not None and asked > info.max_output_tokens:
            clamped_from, asked = asked, info.max_output_tokens
        if window is not None and prompt + asked > window:
            raise ContextLengthExceededError(
                f"The prompt (about {prompt} tokens) plus max_tokens ({asked}) exceeds {model}'s context window "
                f"of {window} tokens; shorten the conversation or lower max_tokens.",
                model=model,
                prompt_tokens=prompt,
                max_tokens=asked,
                context_window=window,
                max_input_tokens=info.max_input_tokens,
            )
        out = req if asked == req.max_tokens else replace(req, max_tokens=asked)
        return Prepared(out, prompt, prompt + asked, info, clamped_from=clamped_from)
    if window is not None and prompt >= window:
        raise ContextLengthExceededError(
            f"The prompt (about {prompt} tokens) leaves no room for an answer in {model}'s context window of {window} "
            f"tokens.",
            model=model,
            prompt_tokens=prompt,
            max_tokens=None,
            context_window=window,
            max_input_tokens=info.max_input_tokens,
        )
    default = info.default_max_tokens or (adapter_default if required else info.max_output_tokens)
    if default is None:  # no output limit known: leave it to the provider (or the adapter's default)
        return Prepared(req, prompt, prompt, info)
    if info.max_output_tokens is not None:
        default = min(default, info.max_output_tokens)
    if window is not None:
        room = window - math.ceil(prompt * FILL_MARGIN)
        if default > room:
            if not required:
                return Prepared(req, prompt, prompt, info)
            default = max(room, min(default, window - prompt), 1)
    return Prepared(replace(req, max_tokens=default), prompt, prompt, info, filled=True)


class Routed(Protocol):
    """What the policy reads of a routing target (``byok.gateway.routing.Target``): its provider and model."""

    @property
    def provider(self) -> Any: ...  # kind, name

    @property
    def model(self) -> str: ...


R = TypeVar("R", bound=Routed)


def prepare_targets(req: ChatRequest, targets: Sequence[R], catalog: Catalog) -> list[tuple[R, Prepared]]:
    """The request prepared for every target, as (target, `Prepared`) pairs; the targets are left as they are.

    The first target's refusal is raised; a later target that cannot take the request is dropped.
    """
    kept: list[tuple[R, Prepared]] = []
    for i, target in enumerate(targets):
        provider = target.provider
        info = catalog.lookup(provider.kind, target.model, provider.name)
        try:
            prepared = prepare_request(
                replace(req, model=target.model) if target.model != req.model else req,
                kind=provider.kind,
                model=target.model,
                info=info,
            )
        except ContextLengthExceededError:
            if i == 0:
                raise
            continue
        kept.append((target, prepared))
    return kept
