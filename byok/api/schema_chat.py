"""OpenAPI for the chat endpoints, which are plain async Django views that drf-spectacular cannot see.

`add_chat_paths` is a drf-spectacular POSTPROCESSING hook (see `SPECTACULAR_SETTINGS`): it adds
`POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{model}` and `POST /api/chat`
with their component schemas to the generated document.

The request schemas state exactly what the views enforce (`byok.api.openai_compat`,
`byok.api.views_byok.parse_byok_chat`): a body the schema rejects is always rejected by byok.
The converse does not hold everywhere: some rules span fields (a `tool` message must answer an
earlier tool call, `tool_choice` must name a given tool, `stream_options` needs `stream`) and are
told in descriptions; byok answers 400 (OpenAI shape) or 422 (byok shape) for them. Fields byok
accepts without checking their type (OpenAI's ignored parameters) are left untyped.
"""

from __future__ import annotations

from typing import Any

from byok.schemas import rules

__all__ = ["add_chat_paths"]

JSON = "application/json"
SSE = "text/event-stream"


def _ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def _nullable(schema: dict[str, Any]) -> dict[str, Any]:
    return {**schema, "nullable": True}


STRING = {"type": "string"}
NONEMPTY = {"type": "string", "minLength": 1}
FUNCTION_NAME = {
    "type": "string",
    "pattern": r"^[A-Za-z0-9_-]{1,64}$",
    "description": "1-64 letters, digits, underscores or dashes.",
}
STOP = _nullable(
    {
        "description": f"A stop sequence or up to {rules.MAX_STOP} of them.",
        "oneOf": [STRING, {"type": "array", "items": STRING, "maxItems": rules.MAX_STOP}],
    }
)
TEMPERATURE = _nullable({"type": "number", "minimum": rules.TEMPERATURE[0], "maximum": rules.TEMPERATURE[1]})
TOP_P = _nullable({"type": "number", "minimum": rules.TOP_P[0], "maximum": rules.TOP_P[1]})
POSITIVE_INT = _nullable({"type": "integer", "minimum": 1, "maximum": rules.MAX_TOKENS})

# -- OpenAI-compatible schemas -----------------------------------------------------------------------

_TEXT_PART = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["text"]}, "text": STRING},
    "required": ["type", "text"],
}
_REFUSAL_PART = {
    "type": "object",
    "properties": {"type": {"type": "string", "enum": ["refusal"]}, "refusal": STRING},
    "required": ["type", "refusal"],
}
_USER_CONTENT = {
    "description": (
        "Text, or an array of text parts (joined by newlines). Other part types (images, audio) are refused."
    ),
    "oneOf": [STRING, {"type": "array", "items": _TEXT_PART}],
}
_ASSISTANT_CONTENT = _nullable(
    {
        "description": "Text, or an array of text and refusal parts.",
        "oneOf": [STRING, {"type": "array", "items": {"oneOf": [_TEXT_PART, _REFUSAL_PART]}}],
    }
)


def _message(roles: list[str], properties: dict[str, Any], required: list[str], description: str) -> dict[str, Any]:
    return {
        "type": "object",
        "description": description,
        "properties": {"role": {"type": "string", "enum": roles}, **properties},
        "required": ["role", *required],
    }


OPENAI_SCHEMAS: dict[str, Any] = {
    "OpenAIFunctionCall": {
        "type": "object",
        "properties": {
            "name": NONEMPTY,
            "arguments": {"type": "string", "description": "JSON text; `{}` when absent."},
        },
        "required": ["name"],
    },
    "OpenAIToolCall": {
        "type": "object",
        "properties": {
            "id": NONEMPTY,
            "type": {"type": "string", "enum": ["function"], "description": "`function` when absent."},
            "function": _ref("OpenAIFunctionCall"),
        },
        "required": ["id", "function"],
    },
    "OpenAISystemMessage": _message(
        ["system", "developer"],
        {"content": _USER_CONTENT, "name": {}},
        ["content"],
        "`developer` is treated as `system`.",
    ),
    "OpenAIUserMessage": _message(["user"], {"content": _USER_CONTENT, "name": {}}, ["content"], "A user turn."),
    "OpenAIAssistantMessage": _message(
        ["assistant"],
        {
            "content": _ASSISTANT_CONTENT,
            "tool_calls": _nullable({"type": "array", "items": _ref("OpenAIToolCall")}),
            "function_call": {
                "description": "Legacy functions API: an `OpenAIFunctionCall`, read when `tool_calls` is absent."
            },
        },
        [],
        "An earlier answer; needs `content` or `tool_calls`.",
    ),
    "OpenAIToolMessage": _message(
        ["tool"],
        {
            "content": _USER_CONTENT,
            "tool_call_id": {**NONEMPTY, "description": "The id of a tool call of an earlier assistant message."},
        },
        ["content", "tool_call_id"],
        "A tool result.",
    ),
    "OpenAIFunctionMessage": _message(
        ["function"],
        {"content": _USER_CONTENT, "name": NONEMPTY},
        ["content", "name"],
        "Legacy: a function result, paired with its call by name.",
    ),
    "OpenAIMessage": {
        "oneOf": [
            _ref("OpenAISystemMessage"),
            _ref("OpenAIUserMessage"),
            _ref("OpenAIAssistantMessage"),
            _ref("OpenAIToolMessage"),
            _ref("OpenAIFunctionMessage"),
        ],
    },
    "OpenAIFunction": {
        "type": "object",
        "properties": {
            "name": FUNCTION_NAME,
            "description": {"description": "A string (empty when absent)."},
            "parameters": _nullable(
                {
                    "type": "object",
                    "additionalProperties": True,
                    "description": 'A JSON schema; `{"type": "object"}` when absent.',
                }
            ),
        },
        "required": ["name"],
    },
    "OpenAITool": {
        "type": "object",
        "properties": {"type": {"type": "string", "enum": ["function"]}, "function": _ref("OpenAIFunction")},
        "required": ["type", "function"],
    },
    "ChatCompletionRequest": {
        "type": "object",
        "description": (
            "OpenAI's chat-completions request, validated as strictly as OpenAI does: an unknown field, a wrong type "
            "or "
            "an impossible value is a 400 naming `param`. Tool names must be unique; `tools` and the legacy "
            "`functions` "
            "exclude each other, as do `tool_choice` and `function_call`."
        ),
        "additionalProperties": False,
        "properties": {
            "model": {
                "type": "string",
                "pattern": r"\S",
                "description": "`<provider>/<model>`, a bare model name, or a provider's default.",
            },
            "messages": {"type": "array", "minItems": 1, "items": _ref("OpenAIMessage")},
            "tools": _nullable({"type": "array", "items": _ref("OpenAITool")}),
            "tool_choice": _nullable(
                {
                    "description": "`none`, `auto`, `required` (needs tools) or a function of `tools`.",
                    "oneOf": [
                        {"type": "string", "enum": ["none", "auto", "required"]},
                        {
                            "type": "object",
                            "properties": {
                                "type": {"type": "string", "enum": ["function"]},
                                "function": {"type": "object", "properties": {"name": NONEMPTY}, "required": ["name"]},
                            },
                            "required": ["type", "function"],
                        },
                    ],
                }
            ),
            "functions": _nullable(
                {"type": "array", "items": _ref("OpenAIFunction"), "description": "Legacy: use `tools`."}
            ),
            "function_call": _nullable(
                {
                    "description": 'Legacy, with `functions`: `none`, `auto` or `{"name": ...}`.',
                    "oneOf": [
                        {"type": "string", "enum": ["none", "auto"]},
                        {"type": "object", "properties": {"name": NONEMPTY}, "required": ["name"]},
                    ],
                }
            ),
            "temperature": TEMPERATURE,
            "top_p": TOP_P,
            "max_tokens": POSITIVE_INT,
            "max_completion_tokens": {**POSITIVE_INT, "description": "Equal to `max_tokens` when both are given."},
            "stop": STOP,
            "stream": _nullable(
                {"type": "boolean", "description": "Answer as `text/event-stream` of `chat.completion.chunk`s."}
            ),
            "stream_options": _nullable(
                {
                    "type": "object",
                    "description": "Only with `stream: true`.",
                    "additionalProperties": False,
                    "properties": {
                        "include_usage": _nullable({"type": "boolean"}),
                        "include_obfuscation": {"description": "Accepted and ignored."},
                    },
                }
            ),
            "n": _nullable({"type": "integer", "enum": [1], "description": "byok returns one choice."}),
            "logprobs": _nullable({"type": "boolean", "enum": [False], "description": "Not supported."}),
            "response_format": _nullable(
                {
                    "type": "object",
                    "description": 'Only `{"type": "text"}`.',
                    "additionalProperties": False,
                    "properties": {"type": {"type": "string", "enum": ["text"]}},
                    "required": ["type"],
                }
            ),
            "user": _nullable({**STRING, "description": "Accepted and ignored."}),
            "prompt_cache_key": _nullable({**STRING, "description": "Accepted and ignored."}),
            "safety_identifier": _nullable({**STRING, "description": "Accepted and ignored."}),
            **{
                name: {"description": "Accepted and ignored."}
                for name in (
                    "seed",
                    "metadata",
                    "store",
                    "service_tier",
                    "parallel_tool_calls",
                    "frequency_penalty",
                    "presence_penalty",
                    "logit_bias",
                )
            },
        },
        "required": ["model", "messages"],
    },
    "ChatCompletionMessageToolCall": {
        "type": "object",
        "properties": {
            "id": STRING,
            "type": {"type": "string", "enum": ["function"]},
            "function": {
                "type": "object",
                "properties": {"name": STRING, "arguments": STRING},
                "required": ["name", "arguments"],
            },
        },
        "required": ["id", "type", "function"],
    },
    "CompletionUsage": {
        "type": "object",
        "properties": {
            "prompt_tokens": {"type": "integer"},
            "completion_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "prompt_tokens_details": {"type": "object", "properties": {"cached_tokens": {"type": "integer"}}},
            "completion_tokens_details": {"type": "object", "properties": {"reasoning_tokens": {"type": "integer"}}},
        },
        "required": ["prompt_tokens", "completion_tokens", "total_tokens"],
    },
    "ChatCompletion": {
        "type": "object",
        "description": "OpenAI's `chat.completion` object.",
        "properties": {
            "id": STRING,
            "object": {"type": "string", "enum": ["chat.completion"]},
            "created": {"type": "integer"},
            "model": {"type": "string", "description": "`<provider>/<model>` that answered."},
            "choices": {
                "type": "array",
                "minItems": 1,
                "maxItems": 1,
                "items": {
                    "type": "object",
                    "properties": {
                        "index": {"type": "integer"},
                        "message": {
                            "type": "object",
                            "properties": {
                                "role": {"type": "string", "enum": ["assistant"]},
                                "content": _nullable(STRING),
                                "refusal": _nullable(STRING),
                                "tool_calls": {"type": "array", "items": _ref("ChatCompletionMessageToolCall")},
                                "function_call": {
                                    "type": "object",
                                    "properties": {"name": STRING, "arguments": STRING},
                                    "description": "Legacy: asked with `functions`.",
                                },
                                "reasoning_content": STRING,
                            },
                            "required": ["role", "content", "refusal"],
                        },
                        "logprobs": {"type": "object", "nullable": True, "description": "Always null."},
                        "finish_reason": {
                            "type": "string",
                            "enum": ["stop", "length", "tool_calls", "content_filter", "function_call"],
                        },
                    },
                    "required": ["index", "message", "logprobs", "finish_reason"],
                },
            },
            "usage": _ref("CompletionUsage"),
            "system_fingerprint": {"type": "string", "nullable": True, "description": "Always null."},
        },
        "required": ["id", "object", "created", "model", "choices", "usage"],
    },
    "OpenAIError": {
        "type": "object",
        "description": "OpenAI's error shape, so the official SDKs raise their typed exceptions.",
        "properties": {
            "error": {
                "type": "object",
                "properties": {
                    "message": STRING,
                    "type": {
                        "type": "string",
                        "description": (
                            "e.g. `invalid_request_error`, `authentication_error`, `rate_limit_error`, "
                            "`upstream_error`."
                        ),
                    },
                    "param": _nullable(
                        {**STRING, "description": "The offending request parameter, e.g. `messages[0].role`."}
                    ),
                    "code": _nullable(
                        {
                            **STRING,
                            "description": (
                                "e.g. `invalid_type`, `missing_required_parameter`, `invalid_api_key`, "
                                "`model_not_found`."
                            ),
                        }
                    ),
                },
                "required": ["message", "type", "param", "code"],
            },
        },
        "required": ["error"],
    },
    "Model": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "`<provider>/<default model>` or a bare default model."},
            "object": {"type": "string", "enum": ["model"]},
            "created": {"type": "integer"},
            "owned_by": {"type": "string", "description": "The provider's name."},
        },
        "required": ["id", "object", "created", "owned_by"],
    },
    "ModelList": {
        "type": "object",
        "properties": {
            "object": {"type": "string", "enum": ["list"]},
            "data": {"type": "array", "items": _ref("Model")},
        },
        "required": ["object", "data"],
    },
}

# -- byok's own chat ----------------------------------------------------------------------------------

BYOK_SCHEMAS: dict[str, Any] = {
    "ByokToolCall": {
        "type": "object",
        "properties": {
            "name": NONEMPTY,
            "id": _nullable(STRING),
            "arguments": {
                "description": "JSON text or an object; `{}` when absent.",
                "oneOf": [STRING, {"type": "object", "additionalProperties": True}],
            },
        },
        "required": ["name"],
    },
    "ByokChatMessage": {
        "oneOf": [
            _message(["system", "user"], {"content": STRING}, ["content"], "A system or user turn."),
            _message(
                ["assistant"],
                {
                    "content": _nullable(STRING),
                    "tool_calls": _nullable({"type": "array", "items": _ref("ByokToolCall")}),
                },
                [],
                "An earlier answer; needs `content` or `tool_calls`.",
            ),
            _message(
                ["tool"],
                {
                    "content": STRING,
                    "tool_call_id": {
                        "description": "The tool call answered (a string); or give the function's `name`."
                    },
                    "name": {"description": "The function answered (a string), when there is no `tool_call_id`."},
                },
                ["content"],
                "A tool result; needs `tool_call_id` or `name`.",
            ),
        ],
    },
    "ByokTool": {
        "type": "object",
        "properties": {
            "name": FUNCTION_NAME,
            "description": {"description": "A string (empty when absent)."},
            "parameters": _nullable({"type": "object", "additionalProperties": True, "description": "A JSON schema."}),
        },
        "required": ["name"],
    },
    "ByokChatRequest": {
        "type": "object",
        "description": "byok's chat request. Every invalid field is listed in one 422 `validation_error`.",
        "additionalProperties": False,
        "properties": {
            "messages": {"type": "array", "minItems": 1, "items": _ref("ByokChatMessage")},
            "provider": _nullable(
                {"type": "string", "maxLength": 64, "description": "A provider's name: only that provider is tried."}
            ),
            "model": _nullable(
                {"type": "string", "maxLength": 200, "description": "The provider's default model when absent."}
            ),
            "temperature": TEMPERATURE,
            "top_p": TOP_P,
            "max_tokens": POSITIVE_INT,
            "stop": STOP,
            "tools": _nullable({"type": "array", "items": _ref("ByokTool")}),
            "tool_choice": _nullable(
                {
                    "type": "string",
                    "maxLength": 64,
                    "description": "`auto`, `none`, `required` or the name of one of the tools.",
                }
            ),
            "stream": _nullable(
                {
                    "type": "boolean",
                    "description": (
                        "Answer as `text/event-stream`: events `delta`, `tool_call`, then `done` or `error`."
                    ),
                }
            ),
        },
        "required": ["messages"],
    },
    "ByokAttempt": {
        "type": "object",
        "properties": {
            "provider": STRING,
            "key_hint": STRING,
            "status": _nullable({"type": "integer"}),
            "error_class": _nullable(STRING),
            "ms": {"type": "number"},
        },
        "required": ["provider", "key_hint", "status", "error_class", "ms"],
    },
    "ByokUsage": {
        "type": "object",
        "properties": {
            "input_tokens": {"type": "integer"},
            "output_tokens": {"type": "integer"},
            "total_tokens": {"type": "integer"},
            "cached_input_tokens": _nullable({"type": "integer"}),
            "reasoning_tokens": _nullable({"type": "integer"}),
        },
        "required": ["input_tokens", "output_tokens", "total_tokens"],
    },
    "ByokChatResponse": {
        "type": "object",
        "properties": {
            "id": {"type": "string", "description": "byok's request id."},
            "provider": STRING,
            "model": STRING,
            "key_hint": STRING,
            "attempts": {"type": "array", "items": _ref("ByokAttempt"), "description": "Every try, failed ones first."},
            "latency_ms": {"type": "number"},
            "failover_ms": {"type": "number"},
            "message": {
                "type": "object",
                "properties": {
                    "role": {"type": "string", "enum": ["assistant"]},
                    "content": _nullable(STRING),
                    "reasoning": _nullable(STRING),
                    "refusal": _nullable(STRING),
                    "tool_calls": {
                        "type": "array",
                        "items": {
                            "type": "object",
                            "properties": {"id": _nullable(STRING), "name": STRING, "arguments": STRING},
                            "required": ["id", "name", "arguments"],
                        },
                    },
                },
                "required": ["role", "content", "reasoning", "refusal", "tool_calls"],
            },
            "finish_reason": {"type": "string", "enum": ["stop", "length", "tool_calls", "content_filter", "error"]},
            "usage": {"nullable": True, "allOf": [_ref("ByokUsage")]},
        },
        "required": [
            "id",
            "provider",
            "model",
            "key_hint",
            "attempts",
            "latency_ms",
            "failover_ms",
            "message",
            "finish_reason",
            "usage",
        ],
    },
}

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

# -- responses -----------------------------------------------------------------------------------------

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
    schemas.update(OPENAI_SCHEMAS)
    schemas.update(BYOK_SCHEMAS)
    result.setdefault("paths", {}).update(_paths())
    tags = result.setdefault("tags", [])
    if not any(t.get("name") == "chat" for t in tags):
        tags.append({"name": "chat", "description": "Chat: OpenAI-compatible `/v1/*` and byok's own `/api/chat`."})
    return result
