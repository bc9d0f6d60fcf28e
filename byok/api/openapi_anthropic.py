"""OpenAPI of Anthropic's Messages dialect: `POST /v1/messages` and `POST /v1/messages/count_tokens`.

A drf-spectacular POSTPROCESSING hook beside `openapi_chat.add_chat_paths` (see `SPECTACULAR_SETTINGS`):
the request bodies are the dialect's pydantic models (`byok.schemas.anthropic`, named `Anthropic*`),
turned into OpenAPI 3.0 components by `openapi_chat.components`, so the document states what the view
enforces. Answers and errors are described in Anthropic's shapes (`render_anthropic`).
"""

from __future__ import annotations

from typing import Any

from byok.api.openapi_chat import JSON, SERVED_HEADERS, SSE, STRING, components
from byok.schemas.anthropic import AnthropicCountTokensRequest, AnthropicMessagesRequest

__all__ = ["add_anthropic_paths"]

REF = "#/components/schemas/{name}"
SECURITY: list[dict[str, list[str]]] = [{"apiKeyAuth": []}, {"tokenAuth": []}]
EVENTS = [
    "message_start",
    "content_block_start",
    "content_block_delta",
    "content_block_stop",
    "message_delta",
    "message_stop",
    "ping",
    "error",
]
STREAM = (
    "With `stream: true`: Anthropic's server-sent events: `message_start`, `ping`, then per content block "
    "`content_block_start` / `content_block_delta` (`text_delta`, `thinking_delta`, `signature_delta`, "
    "`input_json_delta`) / `content_block_stop`, then `message_delta` (stop reason, usage) and `message_stop`; "
    "`ping` again while the provider is silent; a failure after the stream started is an `error` event."
)
ERRORS = {
    "400": "An invalid request (`invalid_request_error`, the message names the field), or the provider refused it.",
    "401": "No or invalid byok credential in `x-api-key` or `Authorization: Bearer` (`authentication_error`).",
    "403": "The credential may not use this model (`permission_error`).",
    "404": "Unknown provider or model (`not_found_error`).",
    "413": "The request body is too large (`request_too_large`).",
    "429": "Rate limited or over budget (`rate_limit_error`); `retry-after` when byok knows when to come back.",
    "502": "Every provider failed, or answered what byok could not read (`api_error`).",
    "503": "No provider or key is usable now (`overloaded_error`); `retry-after` when known.",
    "504": "The provider timed out (`timeout_error`).",
    "529": "The provider stayed overloaded (`overloaded_error`).",
}
SCHEMAS: dict[str, Any] = {
    "AnthropicError": {
        "type": "object",
        "properties": {
            "type": {"type": "string", "enum": ["error"]},
            "error": {
                "type": "object",
                "properties": {"type": STRING, "message": STRING},
                "required": ["type", "message"],
            },
            "request_id": STRING,
        },
        "required": ["type", "error"],
    },
    "AnthropicMessage": {
        "type": "object",
        "description": "The answer: `content` blocks `thinking`, `redacted_thinking`, `text`, `tool_use`.",
        "properties": {
            "id": STRING,
            "type": {"type": "string", "enum": ["message"]},
            "role": {"type": "string", "enum": ["assistant"]},
            "model": STRING,
            "content": {"type": "array", "items": {"type": "object"}},
            "stop_reason": {
                "type": "string",
                "enum": ["end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"],
            },
            "stop_sequence": {"type": "string", "nullable": True},
            "usage": {
                "type": "object",
                "properties": {
                    "input_tokens": {"type": "integer"},
                    "output_tokens": {"type": "integer"},
                    "cache_creation_input_tokens": {"type": "integer"},
                    "cache_read_input_tokens": {"type": "integer"},
                },
                "required": ["input_tokens", "output_tokens"],
            },
        },
        "required": ["id", "type", "role", "model", "content", "stop_reason", "usage"],
    },
    "AnthropicTokenCount": {
        "type": "object",
        "properties": {"input_tokens": {"type": "integer"}},
        "required": ["input_tokens"],
    },
}


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(name=name)}


def _errors(*statuses: str) -> dict[str, Any]:
    return {s: {"description": ERRORS[s], "content": {JSON: {"schema": _ref("AnthropicError")}}} for s in statuses}


def _paths() -> dict[str, Any]:
    provider = {
        "name": "X-Byok-Provider",
        "in": "header",
        "required": False,
        "schema": STRING,
        "description": "Only this provider (by name) is tried.",
    }
    beta = {
        "name": "anthropic-beta",
        "in": "header",
        "required": False,
        "schema": STRING,
        "description": "Beta features, comma-separated: sent to an Anthropic upstream, ignored by the others.",
    }
    event = {
        "type": "object",
        "description": STREAM,
        "properties": {"event": {"type": "string", "enum": EVENTS}, "data": {"type": "string"}},
        "required": ["event", "data"],
    }
    messages = {
        "operationId": "anthropic_messages",
        "summary": "Create a message (Anthropic Messages API)",
        "description": (
            "Anthropic's `POST /v1/messages` in front of every provider kind: `model` routes as on "
            "`/v1/chat/completions`, failover happens before the first token, and the answer, stream and errors are "
            "Anthropic's."
        ),
        "tags": ["chat"],
        "security": SECURITY,
        "parameters": [provider, beta],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("AnthropicMessagesRequest")}}},
        "responses": {
            "200": {
                "description": "The message, or " + STREAM[0].lower() + STREAM[1:],
                "headers": SERVED_HEADERS,
                "content": {JSON: {"schema": _ref("AnthropicMessage")}, SSE: {"schema": event}},
            },
            **_errors(*ERRORS),
        },
    }
    count = {
        "operationId": "anthropic_count_tokens",
        "summary": "Count a message's input tokens (Anthropic Messages API)",
        "description": "byok's estimate for the provider the model routes to; nothing is sent upstream.",
        "tags": ["chat"],
        "security": SECURITY,
        "parameters": [provider],
        "requestBody": {"required": True, "content": {JSON: {"schema": _ref("AnthropicCountTokensRequest")}}},
        "responses": {
            "200": {"description": "The count.", "content": {JSON: {"schema": _ref("AnthropicTokenCount")}}},
            **_errors("400", "401", "403", "404", "413"),
        },
    }
    return {"/v1/messages": {"post": messages}, "/v1/messages/count_tokens": {"post": count}}


def add_anthropic_paths(result: dict[str, Any], generator=None, request=None, public=None) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING hook: the Messages dialect's operations and component schemas."""
    found = result.setdefault("components", {})
    schemas = found.setdefault("schemas", {})
    schemas.update(components((AnthropicMessagesRequest, AnthropicCountTokensRequest)))
    schemas.update(SCHEMAS)
    found.setdefault("securitySchemes", {})["apiKeyAuth"] = {
        "type": "apiKey",
        "in": "header",
        "name": "x-api-key",
        "description": "A byok token or gateway key, as Anthropic's clients send their API key.",
    }
    result.setdefault("paths", {}).update(_paths())
    return result
