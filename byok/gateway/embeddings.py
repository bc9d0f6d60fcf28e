"""`embed()`: embeddings through the gateway's shared machinery, the way `BYOKHandler.chat()` serves a chat.

The request is admitted as a chat request with the inputs as user turns and one output token (so routing,
a gateway key's allow-list, rpm/tpm limits and token/spend budgets see its size), and served by the handler's
one path for complete answers (`BYOKHandler.complete()`: key pool, retries, failover across targets, budgets
reserved then settled or released, the usage record and metrics) with `Upstream.send_embeddings` in place of
`Upstream.send`, under interface ``embeddings``.
A request that routes to a provider without an embeddings API (anthropic, deepseek) is a 400
`embeddings_not_supported` before any upstream call; such providers are skipped as failover targets.
"""

from __future__ import annotations

from dataclasses import replace
from typing import TYPE_CHECKING

from byok.gateway.accounting import Result
from byok.providers.embeddings import EMBEDDING_KINDS, EmbeddingRequest, EmbeddingResponse, unsupported
from byok.providers.types import ChatRequest, Message

if TYPE_CHECKING:
    from byok.gateway.config_cache import KeyConfig, ProviderConfig
    from byok.gateway.handler import BYOKHandler
    from byok.gateway.routing import Target
    from byok.keys.grant import Grant

__all__ = ["EmbedResult", "embed"]

EmbedResult = Result[EmbeddingResponse]  # the vectors and how byok got them


def as_chat(req: EmbeddingRequest) -> ChatRequest:
    """What admission and the ledger see: the inputs as user turns, one output token."""
    return ChatRequest(
        model=req.model, messages=tuple(Message(role="user", content=t) for t in req.inputs), max_tokens=1
    )


def embedding_targets(targets: list[Target]) -> list[Target]:
    """The targets that can embed; a 400 when the one the request routes to cannot."""
    first = targets[0].provider
    if first.kind not in EMBEDDING_KINDS:
        raise unsupported(first.name, first.kind)
    return [t for t in targets if t.provider.kind in EMBEDDING_KINDS]


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

    async def send(p: ProviderConfig, key: KeyConfig, secret: str, routed: ChatRequest) -> EmbeddingResponse:
        return await handler.upstream.send_embeddings(p, key, secret, replace(req, model=routed.model))

    return await handler.complete(
        as_chat(req),
        send,
        provider=provider,
        user_id=user_id,
        interface=interface,
        deadline_s=deadline_s,
        before_ms=before_ms,
        grant=grant,
        usable=embedding_targets,
    )
