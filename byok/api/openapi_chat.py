"""OpenAPI for the chat endpoints, generated from their pydantic request and answer models.

The chat endpoints are plain async Django views that drf-spectacular cannot see, so
`add_chat_paths`, a drf-spectacular POSTPROCESSING hook (see `SPECTACULAR_SETTINGS`), adds
`POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{model}` and `POST /api/chat`.
Their bodies are the dialects' request schemas (`byok.schemas.openai_chat.ChatCompletionRequest`,
`byok.schemas.byok_chat.ByokChatRequest`) and the answer models of `byok.schemas.answers`, turned
into OpenAPI 3.0 components by `components()` (pydantic writes JSON Schema 2020-12: `const`,
`anyOf` with `null`, `$defs`). So the document states exactly what the views enforce, field for
field: a body the schema rejects is always rejected by byok. Rules that span fields (a `tool`
message must answer an earlier tool call, `tool_choice` must name a given tool, `stream_options`
needs `stream`, `top_logprobs` needs `logprobs`) are enforced by the views and answered with a 400
(OpenAI shape) or 422 (byok's).
"""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from byok.schemas import answers
from byok.schemas.byok_chat import ByokChatRequest
from byok.schemas.openai_chat import ChatCompletionRequest

__all__ = ["add_chat_paths", "components"]

JSON = "application/json"
SSE = "text/event-stream"
STRING = {"type": "string"}
REF = "#/components/schemas/{model}"
MODELS: tuple[type[BaseModel], ...] = (
    ChatCompletionRequest,
    answers.ChatCompletion,
    answers.OpenAIError,
    answers.ModelList,
    ByokChatRequest,
    answers.ByokChatResponse,
)


def _ref(name: str) -> dict[str, str]:
    return {"$ref": REF.format(model=name)}


def openapi30(node: Any) -> Any:
    """A pydantic JSON Schema (2020-12) node -> OpenAPI 3.0: `nullable` for `anyOf [X, null]`, `enum` for
    `const`, no titles (pydantic derives them from field names; they only add noise)."""
    if isinstance(node, list):
        return [openapi30(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {k: openapi30(v) for k, v in node.items() if k != "title"}
    if "const" in out:
        out["enum"] = [out.pop("const")]
    options = out.get("anyOf")
    if options and {"type": "null"} in options:
        rest = [o for o in options if o != {"type": "null"}]
        del out["anyOf"]
        if len(rest) == 1 and "$ref" not in rest[0]:
            out = {**rest[0], **out}
        elif len(rest) == 1:
            out["allOf"] = rest
        else:
            out["anyOf"] = rest
        out["nullable"] = True
    return out


def components(models: tuple[type[BaseModel], ...] = MODELS) -> dict[str, Any]:
    """The models and every model they use, as OpenAPI 3.0 component schemas by class name."""
    found: dict[str, Any] = {}
    for model in models:
        schema = model.model_json_schema(ref_template=REF)
        for name, sub in {**schema.pop("$defs", {}), model.__name__: schema}.items():
            converted = openapi30(sub)
            if found.setdefault(name, converted) != converted:
                raise ValueError(f"Two chat schema models are named {name}: give one a dialect prefix.")
    return found


# -- responses -----------------------------------------------------------------------------------------

_FALLBACK_ERRORS = {  # the management API defines these; only used if it ever stops doing so
    "Error": {
        "type": "object",
        "properties": {"code": STRING, "message": STRING, "retryable": {"type": "boolean"}},
        "required": ["code", "message"],
    },
    "ValidationError": {
        "type": "object",
        "properties": {
            "code": STRING,
            "message": STRING,
            "retryable": {"type": "boolean"},
            "errors": {"type": "object", "additionalProperties": {"type": "array", "items": STRING}},
        },
        "required": ["code", "message", "errors"],
    },
}

SERVED_HEADERS = {
    "x-byok-provider": {"schema": STRING, "description": "The provider that answered."},
    "x-byok-attempts": {"schema": {"type": "integer"}, "description": "How many provider/key tries it took."},
    "x-byok-failover-ms": {"schema": {"type": "number"}, "description": "Time spent on failed tries."},
    "x-byok-request-id": {"schema": STRING, "description": "byok's id of the request."},
    "x-byok-key-hint": {"schema": STRING, "description": "Which key was used (a hint, never the key)."},
}

OPENAI_SSE = (
    "With `stream: true`: server-sent events, each `data: <chat.completion.chunk JSON>`; the last chunk has "
    "`finish_reason`, then a usage chunk (`choices: []`) when `stream_options.include_usage`, then `data: [DONE]`. "
    'A failure after the first token is a `data: {"error": {...}}` event, then `data: [DONE]`.'
)
BYOK_SSE = (
    'With `stream: true`: server-sent events `delta` (`{"text"}`, `{"reasoning"}` or `{"refusal"}`), '
    "`tool_call` (`{index, id, name, arguments}`, each call whole), then `done` (`{id, finish_reason, usage, provider, "
    "model, key_hint, attempts, latency_ms, failover_ms, ttft_ms}`) or `error` (`{code, message, retryable, status, "
    "partial, id}`)."
)

_OPENAI_ERRORS = {
    "400": (
        "An invalid request (`param` names what), or the provider refused it (`upstream_bad_request`, "
        "`context_length_exceeded`)."
    ),
    "401": "No or invalid byok token (`invalid_api_key`).",
    "403": "Not allowed, or a session request without its CSRF token (`permission_denied`).",
    "404": "Unknown provider (`X-Byok-Provider`) or model.",
    "413": "The request body is too large.",
    "422": "The provider refused the request as unprocessable.",
    "429": "Rate limited or over budget; `Retry-After` when byok knows when to come back.",
    "502": "Every provider failed, or answered what byok could not read.",
    "503": "No provider or key is usable now; `Retry-After` when known.",
    "504": "The provider timed out.",
}
_BYOK_ERRORS = {
    "400": "The body is not JSON (`parse_error`), or the provider refused the request.",
    "401": "No or invalid byok token (`not_authenticated`, `authentication_failed`).",
    "403": "Not allowed, or a session request without its CSRF token (`permission_denied`).",
    "404": "Unknown provider (`provider_not_found`) or model.",
    "413": "The request body is too large (`payload_too_large`).",
    "422": (
        "An invalid body (`validation_error`, with `errors` per field), or the provider refused the request as "
        "unprocessable."
    ),
    "429": "Rate limited or over budget; `Retry-After` when byok knows when to come back.",
    "502": "Every provider failed, or answered what byok could not read.",
    "503": "No provider or key is usable now; `Retry-After` when known.",
    "504": "The provider timed out.",
}


def _sse_event(description: str, events: list[str] | None) -> dict[str, Any]:
    """One server-sent event (how tools such as schemathesis read a `text/event-stream` schema): `data` is JSON text."""
    event = (
        {"type": "string", "enum": events, "description": "The event type."}
        if events
        else {"type": "string", "description": "Unnamed (`message`)."}
    )
    return {
        "type": "object",
        "description": description,
        "properties": {
            "event": event,
            "data": {"type": "string", "description": "JSON text (or `[DONE]`)."},
            "id": STRING,
        },
        "required": ["data"],
    }


def _json_content(schema: dict[str, Any]) -> dict[str, Any]:
    return {JSON: {"schema": schema}}


def _errors(descriptions: dict[str, str], schema_for) -> dict[str, Any]:
    return {
        status: {"description": text, "content": _json_content(schema_for(status))}
        for status, text in descriptions.items()
    }


def _openai_error_schema(_status: str) -> dict[str, Any]:
    return _ref("OpenAIError")


def _byok_error_schema(status: str) -> dict[str, Any]:
    if status == "422":
        return {"anyOf": [_ref("ValidationError"), _ref("Error")]}
    return _ref("Error")


def _auth_only(descriptions: dict[str, str], *statuses: str) -> dict[str, str]:
    return {s: descriptions[s] for s in statuses}


SECURITY: list[dict[str, list[str]]] = [{"tokenAuth": []}, {"cookieAuth": []}]


def _paths() -> dict[str, Any]:
    chat_completions = {
        "operationId": "openai_chat_completions",
        "summary": "Chat completion (OpenAI-compatible)",
        "description": (
            "OpenAI's `POST /v1/chat/completions`: byok picks a provider (or the one named by `X-Byok-Provider`, or "
            "the "
            "`<provider>/` prefix of `model`), fails over between providers and keys until the first token, and "
            "answers "
            "in OpenAI's format. A failure before the first token is an ordinary JSON error, never a 200."
        ),
        "tags": ["chat"],
        "security": SECURITY,
        "parameters": [
            {
                "name": "X-Byok-Provider",
                "in": "header",
                "required": False,
                "schema": STRING,
                "description": "Only this provider (by name) is tried.",
            }
        ],
        "requestBody": {"required": True, "content": _json_content(_ref("ChatCompletionRequest"))},
        "responses": {
            "200": {
                "description": "The answer; a `chat.completion` object, or " + OPENAI_SSE[0].lower() + OPENAI_SSE[1:],
                "headers": SERVED_HEADERS,
                "content": {
                    JSON: {"schema": _ref("ChatCompletion")},
                    SSE: {"schema": _sse_event(OPENAI_SSE, None)},
                },
            },
            **_errors(_OPENAI_ERRORS, _openai_error_schema),
        },
    }
    auth_errors = _errors(_auth_only(_OPENAI_ERRORS, "401", "403"), _openai_error_schema)
    models = {
        "operationId": "openai_models_list",
        "summary": "List models (OpenAI-compatible)",
        "description": "`<provider>/<default model>` for each enabled provider, then each bare default model.",
        "tags": ["chat"],
        "security": SECURITY,
        "responses": {
            "200": {"description": "The models.", "content": _json_content(_ref("ModelList"))},
            **auth_errors,
        },
    }
    model_detail = {
        "operationId": "openai_models_retrieve",
        "summary": "One model (OpenAI-compatible)",
        "tags": ["chat"],
        "security": SECURITY,
        "parameters": [
            {
                "name": "model",
                "in": "path",
                "required": True,
                "schema": STRING,
                "description": "A model id of `GET /v1/models`; may contain a slash (`<provider>/<model>`).",
            }
        ],
        "responses": {
            "200": {"description": "The model.", "content": _json_content(_ref("Model"))},
            **auth_errors,
            "404": {"description": "No such model (`model_not_found`).", "content": _json_content(_ref("OpenAIError"))},
        },
    }
    byok_chat = {
        "operationId": "chat",
        "summary": "Chat (byok's own shape)",
        "description": (
            "One answer with how byok got it (provider, key hint, every attempt, latency); failover as for "
            "`/v1/chat/completions`."
        ),
        "tags": ["chat"],
        "security": SECURITY,
        "requestBody": {"required": True, "content": _json_content(_ref("ByokChatRequest"))},
        "responses": {
            "200": {
                "description": "The answer, or " + BYOK_SSE[0].lower() + BYOK_SSE[1:],
                "headers": SERVED_HEADERS,
                "content": {
                    JSON: {"schema": _ref("ByokChatResponse")},
                    SSE: {"schema": _sse_event(BYOK_SSE, ["delta", "tool_call", "done", "error"])},
                },
            },
            **_errors(_BYOK_ERRORS, _byok_error_schema),
        },
    }
    return {
        "/v1/chat/completions": {"post": chat_completions},
        "/v1/models": {"get": models},
        "/v1/models/{model}": {"get": model_detail},
        "/api/chat": {"post": byok_chat},
    }


def add_chat_paths(result: dict[str, Any], generator=None, request=None, public=None) -> dict[str, Any]:
    """drf-spectacular POSTPROCESSING hook: the chat endpoints and their component schemas."""
    schemas = result.setdefault("components", {}).setdefault("schemas", {})
    for name, schema in _FALLBACK_ERRORS.items():
        schemas.setdefault(name, schema)
    schemas.update(components())
    result.setdefault("paths", {}).update(_paths())
    tags = result.setdefault("tags", [])
    if not any(t.get("name") == "chat" for t in tags):
        tags.append({"name": "chat", "description": "Chat: OpenAI-compatible `/v1/*` and byok's own `/api/chat`."})
    return result
