"""`embed()`: embeddings through the gateway's shared machinery, the way `BYOKHandler.chat()` serves a chat.

The request is admitted as a chat request with the inputs as user turns and one output token (so routing,
a gateway key's allow-list, rpm/tpm limits and token/spend budgets see its size), served by the handler's one
failover path (`_serve`: key pool, retries, failover across targets) with `Upstream.send_embeddings` in place
of `Upstream.send`, and recorded by the ledger (usage record, metrics) under interface ``embeddings``.
A request that routes to a provider without an embeddings API (anthropic, deepseek) is a 400
`embeddings_not_supported` before any upstream call; such providers are skipped as failover targets.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from byok.providers.embeddings import EMBEDDING_KINDS, EmbeddingRequest, EmbeddingResponse, unsupported
from byok.providers.types import ChatRequest, Message, Usage

if TYPE_CHECKING:
    from byok.gateway.config_cache import KeyConfig, ProviderConfig
    from byok.gateway.failover import Attempt
    from byok.gateway.handler import BYOKHandler
    from byok.keys.grant import Grant

__all__ = ["EmbedResult", "embed"]


@dataclass(frozen=True, slots=True)
class EmbedResult:
    """The vectors and how byok got them."""

    response: EmbeddingResponse
    provider: str
    model: str
    key_hint: str
    attempts: list[Attempt]
    latency_ms: float
    failover_ms: float
    request_id: str
    overhead_ms: float = 0.0


def as_chat(req: EmbeddingRequest) -> ChatRequest:
    """What admission and the ledger see: the inputs as user turns, one output token."""
    return ChatRequest(
        model=req.model, messages=tuple(Message(role="user", content=t) for t in req.inputs), max_tokens=1
    )


async def embed(
    handler: BYOKHandler,
    req: EmbeddingRequest,
    *,
    provider: str | None = None,
    user_id: int | None = None,
    interface: str = "embeddings",
    before_ms: float = 0.0,
    grant: Grant | None = None,
    deadline_s: float = 300.0,
) -> EmbedResult:
    """Vectors for `req.inputs`, with failover; raises a ByokError subclass when it cannot get them."""
    chat = as_chat(req)
    run, entry = handler.ledger.start(
        chat, user_id=user_id, interface=interface, stream=False, before_ms=before_ms, grant=grant
    )
    ticket = None

    async def send(p: ProviderConfig, key: KeyConfig, secret: str, routed: ChatRequest) -> EmbeddingResponse:
        return await handler.upstream.send_embeddings(p, key, secret, replace(req, model=routed.model))

    try:
        targets, ticket = await handler._admit(chat, provider, user_id, grant=grant)
        first = targets[0].provider
        if first.kind not in EMBEDDING_KINDS:
            raise unsupported(first.name, first.kind)
        targets = [t for t in targets if t.provider.kind in EMBEDDING_KINDS]
        answer, target, key = await handler._serve(run, chat, targets, send, stream=False, deadline_s=deadline_s)
    except BaseException as exc:
        handler.ledger.finish(entry, run, error=exc)
        await handler._settle(ticket, run, Usage(), None)
        raise
    usage = Usage(input_tokens=answer.input_tokens, output_tokens=0)
    handler.ledger.fill(entry, run, target, key, usage)
    handler.ledger.finish(entry, run)
    await handler._settle(ticket, run, usage, entry.cost)
    return EmbedResult(
        response=answer,
        provider=target.provider.name,
        model=answer.model or target.model,
        key_hint=key.hint,
        attempts=run.attempts,
        latency_ms=entry.latency_ms,
        failover_ms=entry.failover_ms,
        request_id=run.request_id,
        overhead_ms=entry.overhead_ms or 0.0,
    )
