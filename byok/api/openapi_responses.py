"""OpenAPI of `POST /v1/responses`, its request body generated from the pydantic model that validates it.

`add_responses_path` is a drf-spectacular POSTPROCESSING hook run after `openapi_chat.add_chat_paths`
(see `SPECTACULAR_SETTINGS`): it adds the operation, `ResponsesBody` and every model it uses as
OpenAPI 3.0 components (`openapi_chat.components`), and a `ResponsesResponse` object that names
the fields byok answers with. Cross-field rules (a `function_call_output` must answer an earlier
`function_call`, `tool_choice` must name a given tool) and the stateless refusals
(`previous_response_id`, `conversation`, `background`) are enforced by the view: a 400 naming the field.
"""

from __future__ import annotations

from typing import Any

from byok.api import openapi_chat as chat
from byok.schemas.responses_body import ResponsesBody

__all__ = ["RESPONSE_SCHEMA", "add_responses_path", "operation"]

_STRING = {"type": "string"}
_OBJECT = {"type": "object"}
RESPONSE_SCHEMA: dict[str, Any] = {
    "type": "object",
    "description": "OpenAI's `response` object (byok stores none: `store` is always false).",
    "properties": {
        "id": {**_STRING, "description": "`resp_<byok request id>`."},
        "object": {"type": "string", "enum": ["response"]},
        "created_at": {"type": "integer"},
        "status": {"type": "string", "enum": ["completed", "incomplete", "failed", "in_progress"]},
        "incomplete_details": {
            "type": "object",
            "nullable": True,
            "properties": {"reason": {"type": "string", "nullable": True}},
        },
        "error": {"type": "object", "nullable": True, "properties": {"code": _STRING, "message": _STRING}},
        "model": {**_STRING, "description": "`<provider>/<model>` that answered."},
        "output": {
            "type": "array",
            "description": "Items `reasoning` (summary_text, encrypted_content), `message` (output_text, refusal), "
            "`function_call` (call_id, name, arguments).",
            "items": _OBJECT,
        },
        "usage": {"type": "object", "nullable": True},
        "store": {"type": "boolean", "enum": [False]},
    },
    "required": ["id", "object", "created_at", "status", "model", "output"],
}
SSE_DESCRIPTION = (
    "With `stream: true`: server-sent events `event: <type>` / `data: <JSON with type and sequence_number>`: "
    "`response.created`, `response.in_progress`, per output item `response.output_item.added`, its content events "
    "and `response.output_item.done`, then `response.completed` or `response.incomplete`; a failure after the start "
    "is `response.failed` followed by an `error` event. While the provider is silent, an SSE comment "
    "(`: keep-alive`) now and then."
)
EVENTS = [
    "response.created",
    "response.in_progress",
    "response.output_item.added",
    "response.content_part.added",
    "response.output_text.delta",
    "response.output_text.done",
    "response.refusal.delta",
    "response.refusal.done",
    "response.content_part.done",
    "response.function_call_arguments.delta",
    "response.function_call_arguments.done",
    "response.reasoning_summary_part.added",
    "response.reasoning_summary_text.delta",
    "response.reasoning_summary_text.done",
    "response.reasoning_summary_part.done",
    "response.output_item.done",
    "response.completed",
    "response.incomplete",
    "response.failed",
    "error",
]


def operation() -> dict[str, Any]:
    return {
        "operationId": "openai_responses_create",
        "summary": "Create a response (OpenAI Responses API, stateless)",
        "description": (
            "OpenAI's `POST /v1/responses` in front of any provider: routing and failover as for "
            "`/v1/chat/completions`. Nothing is stored: send the whole conversation as `input` items; "
            "`previous_response_id` and `conversation` are a 400."
        ),
        "tags": ["chat"],
        "security": chat.SECURITY,
        "parameters": [
            {
                "name": "X-Byok-Provider",
                "in": "header",
                "required": False,
                "schema": _STRING,
                "description": "Only this provider (by name) is tried.",
            }
        ],
        "requestBody": {"required": True, "content": {chat.JSON: {"schema": {"$ref": _ref("ResponsesBody")}}}},
        "responses": {
            "200": {
                "description": "The `response` object, or " + SSE_DESCRIPTION[0].lower() + SSE_DESCRIPTION[1:],
                "headers": chat.SERVED_HEADERS,
                "content": {
                    chat.JSON: {"schema": {"$ref": _ref("ResponsesResponse")}},
                    chat.SSE: {"schema": chat._sse_event(SSE_DESCRIPTION, EVENTS)},
                },
            },
            **chat._errors(chat._OPENAI_ERRORS, chat._openai_error_schema),
        },
    }


def _ref(name: str) -> str:
    return chat.REF.format(model=name)


def add_responses_path(result: dict[str, Any], generator=None, request=None, public=None) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING hook: `POST /v1/responses` and its component schemas."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in {**chat.components((ResponsesBody,)), "ResponsesResponse": RESPONSE_SCHEMA}.items():
        if schemas.setdefault(name, schema) != schema:
            raise ValueError(f"Two chat schema models are named {name}: give one a dialect prefix.")
    result.setdefault("paths", {})["/v1/responses"] = {"post": operation()}
    return result
