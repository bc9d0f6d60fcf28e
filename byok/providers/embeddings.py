"""Embeddings, translated per provider kind: an `EmbeddingRequest` -> the provider's HTTP request, its answer ->
an `EmbeddingResponse` (vectors in input order + prompt tokens).

- openai / openai_compatible: `POST {base}/embeddings` {model, input: [..], dimensions?, user?, encoding_format:
  "float"} -> {data: [{index, embedding}], usage: {prompt_tokens}}
  (https://platform.openai.com/docs/api-reference/embeddings/create). byok always asks for floats and encodes
  base64 itself, so every provider answers the same way.
- gemini: `POST {base}/models/{model}:batchEmbedContents` {requests: [{model: "models/{model}", content: {parts:
  [{text}]}, outputDimensionality?}]} -> {embeddings: [{values}]}
  (https://ai.google.dev/api/embeddings#method:-models.batchembedcontents). One call for one or many inputs
  (`embedContent` is the same thing for one); Gemini reports no token count, so byok estimates it.
- anthropic, deepseek: no embeddings API; `unsupported()` is the 400 byok answers before any upstream call.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import orjson

from byok.exceptions import BadRequestError, MalformedResponseError
from byok.providers.types import UpstreamRequest, Usage

__all__ = [
    "EMBEDDING_KINDS",
    "EmbeddingRequest",
    "EmbeddingResponse",
    "EmbeddingsNotSupported",
    "build_embeddings_request",
    "parse_embeddings_response",
]

EMBEDDING_KINDS = frozenset({"openai", "openai_compatible", "gemini"})


class EmbeddingsNotSupported(BadRequestError):
    """The provider a request routes to has no embeddings API (refused before any upstream call)."""

    code = "embeddings_not_supported"


@dataclass(frozen=True, slots=True)
class EmbeddingRequest:
    model: str
    inputs: tuple[str, ...]
    dimensions: int | None = None
    user: str | None = None


@dataclass(frozen=True, slots=True)
class EmbeddingResponse:
    vectors: tuple[tuple[float, ...], ...]
    model: str
    input_tokens: int
    estimated: bool = False  # the provider did not count: byok's estimate

    @property
    def usage(self) -> Usage:
        """What the request used, as the ledger and budgets count it (inputs only)."""
        return Usage(input_tokens=self.input_tokens, output_tokens=0)


def unsupported(provider: str, kind: str) -> EmbeddingsNotSupported:
    return EmbeddingsNotSupported(
        f"Provider {provider!r} ({kind}) has no embeddings API; use an openai, openai_compatible or gemini provider.",
        provider=provider,
    )


def build_embeddings_request(
    adapter: Any, req: EmbeddingRequest, *, api_key: str, base_url: str | None
) -> UpstreamRequest:
    """The upstream request for `req` on a provider served by `adapter` (its kind picks the wire format)."""
    base = adapter.base_url(base_url)
    if adapter.kind == "gemini":
        model = req.model.removeprefix("models/")
        one: dict[str, Any] = {"model": f"models/{model}"}
        if req.dimensions is not None:
            one["outputDimensionality"] = req.dimensions
        requests = [{**one, "content": {"parts": [{"text": text}]}} for text in req.inputs]
        headers = {"x-goog-api-key": api_key, "content-type": "application/json"}
        url = f"{base}/models/{model}:batchEmbedContents"
        return UpstreamRequest(method="POST", url=url, headers=headers, json={"requests": requests})
    body: dict[str, Any] = {"model": req.model, "input": list(req.inputs), "encoding_format": "float"}
    if req.dimensions is not None:
        body["dimensions"] = req.dimensions
    if req.user:
        body["user"] = req.user
    headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
    return UpstreamRequest(method="POST", url=f"{base}/embeddings", headers=headers, json=body)


def _vector(raw: Any, provider: str) -> tuple[float, ...]:
    if not isinstance(raw, list) or not all(isinstance(x, int | float) and not isinstance(x, bool) for x in raw):
        raise MalformedResponseError("The provider's embedding is not a list of numbers.", provider=provider)
    return tuple(float(x) for x in raw)


def parse_embeddings_response(
    kind: str, body: bytes, req: EmbeddingRequest, *, provider: str, estimate: Any = None
) -> EmbeddingResponse:
    """The provider's answer -> vectors in input order; `estimate(texts) -> int` counts tokens Gemini does not."""
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedResponseError("The provider's embeddings answer is not JSON.", provider=provider) from None
    if not isinstance(data, dict):
        raise MalformedResponseError("The provider's embeddings answer is not an object.", provider=provider)
    if kind == "gemini":
        items = data.get("embeddings")
        if not isinstance(items, list) or len(items) != len(req.inputs):
            raise MalformedResponseError("Gemini answered a different number of embeddings.", provider=provider)
        vectors = tuple(_vector((i or {}).get("values") if isinstance(i, dict) else None, provider) for i in items)
        tokens = int(estimate(req.inputs)) if estimate is not None else 0
        return EmbeddingResponse(vectors, req.model, tokens, estimated=True)
    items = data.get("data")
    if not isinstance(items, list) or len(items) != len(req.inputs):
        raise MalformedResponseError("The provider answered a different number of embeddings.", provider=provider)
    ordered = sorted(items, key=lambda i: i.get("index", 0) if isinstance(i, dict) else 0)
    vectors = tuple(_vector(i.get("embedding") if isinstance(i, dict) else None, provider) for i in ordered)
    usage = data.get("usage")
    counted = usage.get("prompt_tokens") if isinstance(usage, dict) else None
    model = str(data.get("model") or req.model)
    if not isinstance(counted, int) or isinstance(counted, bool):
        return EmbeddingResponse(vectors, model, int(estimate(req.inputs)) if estimate else 0, estimated=True)
    return EmbeddingResponse(vectors, model, counted)
