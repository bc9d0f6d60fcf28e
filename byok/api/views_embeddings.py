"""`POST /v1/embeddings` in OpenAI's shape, served through the gateway (`byok.gateway.embeddings.embed`): key
pools, failover, a gateway key's allow-list, limits and budgets, usage records (interface ``embeddings``)."""

from __future__ import annotations

import base64
import struct

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from byok.api import chat_entry as entry
from byok.api.views_openai import byok_error, read_openai_post
from byok.exceptions import ByokError
from byok.gateway.embeddings import EmbedResult, embed
from byok.overhead import time_in_byok_ms
from byok.schemas.openai_embeddings import parse_embeddings

__all__ = ["embeddings", "encode_base64", "render_embeddings"]


def encode_base64(vector: tuple[float, ...]) -> str:
    """OpenAI's base64 encoding: the vector as little-endian float32 bytes."""
    return base64.b64encode(struct.pack(f"<{len(vector)}f", *vector)).decode("ascii")


def render_embeddings(result: EmbedResult, encoding_format: str) -> dict:
    """OpenAI's answer: {object: list, data: [{object: embedding, index, embedding}], model, usage}."""
    tokens = result.response.input_tokens
    return {
        "object": "list",
        "data": [
            {
                "object": "embedding",
                "index": i,
                "embedding": encode_base64(v) if encoding_format == "base64" else list(v),
            }
            for i, v in enumerate(result.response.vectors)
        ],
        "model": f"{result.provider}/{result.model}",
        "usage": {"prompt_tokens": tokens, "total_tokens": tokens},
    }


@csrf_exempt
async def embeddings(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/embeddings`."""
    read = await read_openai_post(request, parse_embeddings)
    if isinstance(read, HttpResponse):
        return read
    user, parsed = read
    try:
        result = await embed(
            entry.get_handler(),
            parsed.request,
            user_id=user.pk,
            before_ms=time_in_byok_ms(request),
            grant=entry.grant_of(request),
        )
    except ByokError as exc:
        return byok_error(exc, entry.overhead_headers(exc))
    return entry.json_response(
        render_embeddings(result, parsed.encoding_format), headers=entry.served_result(result).headers()
    )
