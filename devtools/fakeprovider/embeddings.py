"""The fake provider's embeddings endpoints, with deterministic vectors (the same text, model and size always give
the same unit vector), validated the way the real APIs validate:

- OpenAI `POST /v1/embeddings` (https://platform.openai.com/docs/api-reference/embeddings/create): `input` a string,
  a list of strings or token arrays; `dimensions` only for text-embedding-3 models; `encoding_format` float|base64.
- Gemini `POST /v1beta/models/{model}:embedContent` / `:batchEmbedContents`
  (https://ai.google.dev/api/embeddings): `content.parts[].text`, `outputDimensionality`; each batch request's
  `model` must be the URL's model.
"""

from __future__ import annotations

import base64
import hashlib
import math
import struct
from typing import Any

__all__ = ["gemini_embeddings", "openai_embeddings", "vector"]

DEFAULT_DIMS = {"text-embedding-3-large": 3072, "gemini-embedding-001": 3072}


def vector(text: str, model: str, dims: int) -> list[float]:
    """A deterministic unit vector of `dims` floats for (text, model)."""
    values: list[float] = []
    counter = 0
    while len(values) < dims:
        digest = hashlib.sha256(f"{model}\0{counter}\0{text}".encode()).digest()
        values.extend((b - 127.5) / 127.5 for b in digest)
        counter += 1
    values = values[:dims]
    norm = math.sqrt(sum(v * v for v in values)) or 1.0
    return [round(v / norm, 6) for v in values]


def _tokens(texts: list[str]) -> int:
    return sum(max(1, math.ceil(len(t) / 4)) for t in texts)


def openai_embeddings(body: dict[str, Any]) -> tuple[int, str | dict[str, Any]]:
    """(200, answer) or (400, message) for an OpenAI embeddings request body."""
    model, raw, dims = body.get("model"), body.get("input"), body.get("dimensions")
    if not isinstance(model, str) or not model:
        return 400, "you must provide a model parameter"
    if isinstance(raw, str):
        texts = [raw]
    elif isinstance(raw, list) and raw and all(isinstance(t, str) for t in raw):
        texts = raw
    elif isinstance(raw, list) and raw and all(isinstance(t, int | list) for t in raw):
        texts = [str(t) for t in raw]  # token arrays: embedded as their text form
    else:
        return (
            400,
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        )
    if any(t == "" for t in texts):
        return (
            400,
            "'$.input' is invalid. Please check the API reference: https://platform.openai.com/docs/api-reference.",
        )
    if dims is not None and (not model.startswith("text-embedding-3") or not isinstance(dims, int) or dims < 1):
        return 400, "This model does not support specifying dimensions."
    size = dims or DEFAULT_DIMS.get(model, 1536)
    base64_out = body.get("encoding_format") == "base64"
    data = []
    for i, text in enumerate(texts):
        values = vector(text, model, size)
        out: Any = base64.b64encode(struct.pack(f"<{size}f", *values)).decode() if base64_out else values
        data.append({"object": "embedding", "index": i, "embedding": out})
    tokens = _tokens(texts)
    return 200, {
        "object": "list",
        "data": data,
        "model": model,
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


def _gemini_one(request: Any, model: str) -> tuple[str, int] | str:
    """(text, size) of one embedContent request, or the error message."""
    if not isinstance(request, dict):
        return "Invalid JSON payload received."
    parts = (request.get("content") or {}).get("parts") if isinstance(request.get("content"), dict) else None
    if not isinstance(parts, list) or not parts:
        return "* BatchEmbedContentsRequest.requests[0].content.parts: contents.parts must not be empty."
    text = " ".join(p.get("text", "") for p in parts if isinstance(p, dict))
    dims = request.get("outputDimensionality")
    if dims is not None and (not isinstance(dims, int) or dims < 1):
        return "* outputDimensionality: must be a positive integer."
    return text, dims or DEFAULT_DIMS.get(model, 768)


def gemini_embeddings(body: dict[str, Any], model: str, method: str) -> tuple[int, str | dict[str, Any]]:
    """(200, answer) or (400, message) for Gemini `embedContent` / `batchEmbedContents`."""
    if method == "embedContent":
        one = _gemini_one(body, model)
        if isinstance(one, str):
            return 400, one
        return 200, {"embedding": {"values": vector(one[0], model, one[1])}}
    requests = body.get("requests")
    if not isinstance(requests, list) or not requests:
        return 400, "* BatchEmbedContentsRequest.requests: must not be empty."
    out = []
    for i, request in enumerate(requests):
        if isinstance(request, dict) and request.get("model") != f"models/{model}":
            return 400, f"* BatchEmbedContentsRequest.requests[{i}].model: the model must be models/{model}."
        one = _gemini_one(request, model)
        if isinstance(one, str):
            return 400, one
        out.append({"values": vector(one[0], model, one[1])})
    return 200, {"embeddings": out}
