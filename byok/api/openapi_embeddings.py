"""OpenAPI of `POST /v1/embeddings`, its request body generated from the pydantic model that validates it.

`add_embeddings_path` is a drf-spectacular POSTPROCESSING hook (see `SPECTACULAR_SETTINGS`) run after
`openapi_chat.add_chat_paths`: it adds the operation, `OpenAIEmbeddingsRequest` as an OpenAPI 3.0 component
(`openapi_chat.components`) and `OpenAIEmbeddingsResponse`, the answer byok writes (`views_embeddings`).
"""

from __future__ import annotations

from typing import Any

from byok.api import openapi_chat as chat
from byok.schemas.openai_embeddings import OpenAIEmbeddingsRequest

__all__ = ["RESPONSE_SCHEMA", "add_embeddings_path", "operation"]

_INT = {"type": "integer"}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "properties": {
        "object": {"type": "string", "enum": ["list"]},
        "data": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "object": {"type": "string", "enum": ["embedding"]},
                    "index": _INT,
                    "embedding": {
                        "description": "Floats, or with `encoding_format: base64` little-endian float32 bytes "
                        "in base64.",
                        "oneOf": [{"type": "array", "items": {"type": "number"}}, {"type": "string"}],
                    },
                },
                "required": ["object", "index", "embedding"],
            },
        },
        "model": {"type": "string", "description": "`<provider>/<model>` that answered."},
        "usage": {
            "type": "object",
            "properties": {"prompt_tokens": _INT, "total_tokens": _INT},
            "required": ["prompt_tokens", "total_tokens"],
        },
    },
    "required": ["object", "data", "model", "usage"],
}


def operation() -> dict[str, Any]:
    return {
        "operationId": "openai_embeddings_create",
        "summary": "Create embeddings (OpenAI's shape)",
        "description": (
            "Served by openai, openai_compatible and gemini providers, routed and failed over as "
            "`/v1/chat/completions`; a model routed to anthropic or deepseek is a 400 `embeddings_not_supported`."
        ),
        "tags": ["chat"],
        "security": chat.SECURITY,
        "requestBody": {
            "required": True,
            "content": {chat.JSON: {"schema": {"$ref": chat.REF.format(model="OpenAIEmbeddingsRequest")}}},
        },
        "responses": {
            "200": {
                "description": "The embeddings, in input order.",
                "headers": chat.SERVED_HEADERS,
                "content": {chat.JSON: {"schema": {"$ref": chat.REF.format(model="OpenAIEmbeddingsResponse")}}},
            },
            **chat._errors(chat._OPENAI_ERRORS, chat._openai_error_schema),
        },
    }


def add_embeddings_path(result: dict[str, Any], generator=None, request=None, public=None) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING hook: `POST /v1/embeddings` and its component schemas."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    own = {**chat.components((OpenAIEmbeddingsRequest,)), "OpenAIEmbeddingsResponse": RESPONSE_SCHEMA}
    for name, schema in own.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"Two chat schema models are named {name}: give one a dialect prefix.")
    result.setdefault("paths", {})["/v1/embeddings"] = {"post": operation()}
    return result
