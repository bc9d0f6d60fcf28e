"""OpenAI's chat-completions wire format, in: a request body -> byok's normalised `ChatRequest`.

    parsed = parse_chat_completion(body)          # bytes -> ParsedChat, or InvalidRequest (a 400)

The answer side (completion objects, stream chunks, errors) is `byok.api.render_openai`,
re-exported here for callers that use both through one name.

Validation is strict, as OpenAI's own is: an unknown field, a wrong type or an
impossible value is a 400 naming the parameter, so a client learns at once
that byok will not do what it asked rather than getting a quietly different
answer. A few parameters that cannot change the answer's shape are accepted
and ignored (see IGNORED). Everything here is pure: no I/O, no ORM.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import orjson

from byok.api.render_openai import (
    DONE,
    SDK_MAX_RETRY_AFTER_S,
    ChunkWriter,
    error_body,
    error_response,
    finish_reason,
    model_list,
    render_completion,
    retry_after_headers,
    usage_dict,
)
from byok.providers.types import ChatRequest, Message, Role, Tool, ToolCall
from byok.schemas import rules

__all__ = [
    "DONE",
    "IGNORED",
    "ChunkWriter",
    "InvalidRequest",
    "ParsedChat",
    "error_body",
    "error_response",
    "finish_reason",
    "model_list",
    "parse_chat_completion",
    "render_completion",
    "retry_after_headers",
    "usage_dict",
    "SDK_MAX_RETRY_AFTER_S",
]

# Accepted and ignored: they tune sampling or bookkeeping but do not change what the answer looks like.
IGNORED = frozenset(
    {
        "user",
        "seed",
        "metadata",
        "store",
        "service_tier",
        "parallel_tool_calls",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "prompt_cache_key",
        "safety_identifier",
    }
)
_SUPPORTED = frozenset(
    {
        "model",
        "messages",
        "tools",
        "tool_choice",
        "functions",
        "function_call",
        "temperature",
        "top_p",
        "max_tokens",
        "max_completion_tokens",
        "stop",
        "stream",
        "stream_options",
        "n",
        "logprobs",
        "response_format",
    }
)
_ROLES: dict[str, Role] = {
    "system": "system",
    "developer": "system",
    "user": "user",
    "assistant": "assistant",
    "tool": "tool",
    "function": "tool",
}
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
MAX_STOP = rules.MAX_STOP


class InvalidRequest(Exception):
    """The request body is not a valid chat completion request: a 400 naming `param`."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclass(frozen=True, slots=True)
class ParsedChat:
    """A parsed request: the normalised request and how to answer it."""

    request: ChatRequest
    stream: bool
    include_usage: bool
    legacy_functions: bool  # asked with `functions`: answer with `function_call`, as OpenAI did


# -- parsing --------------------------------------------------------------------------------------


_is_number = rules.is_number
_is_int = rules.is_int


def _stored(value: str, param: str) -> str:
    """A string byok stores (usage rows, logs): refused with a 400 naming `param` if it holds control characters."""
    problem = rules.stored_text_problem(value)
    if problem:
        raise InvalidRequest(f"Invalid '{param}': it {problem}.", param)
    return value


def _type_error(param: str, expected: str) -> InvalidRequest:
    return InvalidRequest(f"Invalid type for '{param}': expected {expected}.", param, "invalid_type")


def _number(body: dict, name: str, low: float, high: float) -> float | None:
    v = body.get(name)
    if v is None:
        return None
    if not _is_number(v):
        raise _type_error(name, "a number")
    if not low <= v <= high:
        raise InvalidRequest(f"Invalid '{name}': {v} is not between {low:g} and {high:g}.", name)
    return float(v)


def _positive_int(body: dict, name: str) -> int | None:
    v = body.get(name)
    if v is None:
        return None
    if not _is_int(v):
        raise _type_error(name, "an integer")
    if v < 1:
        raise InvalidRequest(f"Invalid '{name}': it must be at least 1.", name)
    if v > rules.MAX_TOKENS:
        raise InvalidRequest(f"Invalid '{name}': it must be at most {rules.MAX_TOKENS}.", name)
    return v


def _text(content: Any, param: str, *, allow_refusal: bool = False) -> str:
    """A message's content as text: a string, or an array of text parts joined (`rules.join_parts`)."""
    if isinstance(content, str):
        return _content(content, param)
    if not isinstance(content, list):
        raise _type_error(param, "a string or an array of content parts")
    texts = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if not isinstance(part, dict):
            raise _type_error(where, "an object")
        kind = part.get("type")
        if kind == "text" or (kind == "refusal" and allow_refusal):
            field_name = "text" if kind == "text" else "refusal"
            value = part.get(field_name)
            if not isinstance(value, str):
                raise _type_error(f"{where}.{field_name}", "a string")
            texts.append(value)
        elif isinstance(kind, str):
            raise InvalidRequest(
                f"Content parts of type '{kind}' are not supported by byok; send text.",
                f"{where}.type",
                "unsupported_content",
            )
        else:
            raise InvalidRequest(f"Missing or invalid '{where}.type'.", f"{where}.type")
    return _content(rules.join_parts(texts), param)


def _content(text: str, param: str) -> str:
    problem = rules.content_problem(text)
    if problem:
        raise InvalidRequest(f"Invalid '{param}': it {problem}.", param)
    return text


def _tool_call(raw: Any, param: str) -> ToolCall:
    if not isinstance(raw, dict):
        raise _type_error(param, "an object")
    if raw.get("type", "function") != "function":
        raise InvalidRequest(f"Invalid '{param}.type': only 'function' is supported.", f"{param}.type")
    call_id = raw.get("id")
    if not isinstance(call_id, str) or not call_id:
        raise InvalidRequest(f"Missing required parameter: '{param}.id'.", f"{param}.id", "missing_required_parameter")
    return _function_call(raw.get("function"), f"{param}.function", call_id)


def _function_call(fn: Any, param: str, call_id: str | None) -> ToolCall:
    if not isinstance(fn, dict):
        raise _type_error(param, "an object")
    name, arguments = fn.get("name"), fn.get("arguments", "{}")
    if not isinstance(name, str) or not name:
        raise InvalidRequest(
            f"Missing required parameter: '{param}.name'.", f"{param}.name", "missing_required_parameter"
        )
    if not isinstance(arguments, str):
        raise _type_error(f"{param}.arguments", "a string of JSON")
    return ToolCall(id=call_id, name=name, arguments=arguments)


def _messages(raw: Any) -> tuple[Message, ...]:
    if raw is None:
        raise InvalidRequest("Missing required parameter: 'messages'.", "messages", "missing_required_parameter")
    if not isinstance(raw, list):
        raise _type_error("messages", "an array")
    if not raw:
        raise InvalidRequest(
            "Invalid 'messages': empty array. Expected an array with minimum length 1.", "messages", "empty_array"
        )
    if len(raw) > rules.MAX_MESSAGES:
        raise InvalidRequest(
            f"Invalid 'messages': at most {rules.MAX_MESSAGES} messages.", "messages", "array_above_max_length"
        )
    out: list[Message] = []
    call_names: dict[str, str] = {}  # tool call id -> function name (Gemini needs the name on results)
    for i, m in enumerate(raw):
        param = f"messages[{i}]"
        if not isinstance(m, dict):
            raise _type_error(param, "an object")
        raw_role = m.get("role")
        role = _ROLES.get(raw_role) if isinstance(raw_role, str) else None
        if role is None:
            raise InvalidRequest(
                f"Invalid '{param}.role': expected one of system, developer, user, assistant, tool.", f"{param}.role"
            )
        content = m.get("content")
        if role == "assistant":
            calls: list[ToolCall] = []
            if m.get("tool_calls") is not None:
                if not isinstance(m["tool_calls"], list):
                    raise _type_error(f"{param}.tool_calls", "an array")
                calls = [_tool_call(tc, f"{param}.tool_calls[{j}]") for j, tc in enumerate(m["tool_calls"])]
            elif m.get("function_call") is not None:  # the legacy functions API
                calls = [_function_call(m["function_call"], f"{param}.function_call", None)]
            for call in calls:
                if call.id:
                    call_names[call.id] = call.name
            text = None if content is None else _text(content, f"{param}.content", allow_refusal=True)
            if text is None and not calls:
                raise InvalidRequest(
                    f"Invalid '{param}': an assistant message needs 'content' or 'tool_calls'.", f"{param}.content"
                )
            out.append(Message(role="assistant", content=text, tool_calls=tuple(calls)))
            continue
        if content is None:
            raise InvalidRequest(
                f"Missing required parameter: '{param}.content'.", f"{param}.content", "missing_required_parameter"
            )
        text = _text(content, f"{param}.content")
        if m.get("role") == "function":  # legacy: a function result, paired with its call by name
            name = m.get("name")
            if not isinstance(name, str) or not name:
                raise InvalidRequest(
                    f"Missing required parameter: '{param}.name'.", f"{param}.name", "missing_required_parameter"
                )
            out.append(Message(role="tool", content=text, name=name))
        elif role == "tool":
            call_id = m.get("tool_call_id")
            if not isinstance(call_id, str) or not call_id:
                raise InvalidRequest(
                    f"Missing required parameter: '{param}.tool_call_id'.",
                    f"{param}.tool_call_id",
                    "missing_required_parameter",
                )
            if call_id not in call_names:
                raise InvalidRequest(
                    f"Invalid '{param}': a 'tool' message must answer a tool call of an earlier assistant message.",
                    f"{param}.tool_call_id",
                )
            out.append(Message(role="tool", content=text, tool_call_id=call_id, name=call_names[call_id]))
        else:
            out.append(Message(role=role, content=text))
    return tuple(out)


def _function(fn: Any, param: str) -> Tool:
    if not isinstance(fn, dict):
        raise _type_error(param, "an object")
    name = fn.get("name")
    if not isinstance(name, str) or not _FUNCTION_NAME.match(name):
        raise InvalidRequest(
            f"Invalid '{param}.name': use 1-64 letters, digits, underscores or dashes.", f"{param}.name"
        )
    description = fn.get("description") or ""
    if not isinstance(description, str):
        raise _type_error(f"{param}.description", "a string")
    parameters = fn.get("parameters")
    if parameters is None:
        parameters = {"type": "object", "properties": {}}
    elif not isinstance(parameters, dict):
        raise _type_error(f"{param}.parameters", "a JSON schema object")
    return Tool(name=name, description=description, parameters=parameters)


def _tools(body: dict) -> tuple[tuple[Tool, ...], str | None, bool]:
    """tools + tool_choice (or the legacy functions + function_call) -> (tools, tool_choice, legacy)."""
    tools_raw, functions_raw = body.get("tools"), body.get("functions")
    if tools_raw is not None and functions_raw is not None:
        raise InvalidRequest("Use 'tools' or the legacy 'functions', not both.", "functions")
    legacy = functions_raw is not None
    tools: list[Tool] = []
    if tools_raw is not None:
        if not isinstance(tools_raw, list):
            raise _type_error("tools", "an array")
        for i, t in enumerate(tools_raw):
            if not isinstance(t, dict):
                raise _type_error(f"tools[{i}]", "an object")
            if t.get("type") != "function":
                raise InvalidRequest(
                    f"Invalid 'tools[{i}].type': only 'function' tools are supported.", f"tools[{i}].type"
                )
            tools.append(_function(t.get("function"), f"tools[{i}].function"))
    elif legacy:
        if not isinstance(functions_raw, list):
            raise _type_error("functions", "an array")
        tools = [_function(fn, f"functions[{i}]") for i, fn in enumerate(functions_raw)]
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", "functions" if legacy else "tools")

    choice_param = "function_call" if legacy else "tool_choice"
    choice_raw = body.get(choice_param)
    if not legacy and body.get("function_call") is not None:
        raise InvalidRequest("'function_call' goes with the legacy 'functions'; use 'tool_choice'.", "function_call")
    if legacy and body.get("tool_choice") is not None:
        raise InvalidRequest("'tool_choice' goes with 'tools'; use 'function_call' with 'functions'.", "tool_choice")
    choice: str | None = None
    if choice_raw is not None:
        modes = ("none", "auto") if legacy else ("none", "auto", "required")
        if isinstance(choice_raw, str):
            if choice_raw not in modes:
                raise InvalidRequest(
                    f"Invalid '{choice_param}': expected one of {', '.join(modes)} or a function.", choice_param
                )
            choice = choice_raw
        elif isinstance(choice_raw, dict):
            fn = choice_raw if legacy else choice_raw.get("function")
            if not legacy and choice_raw.get("type") != "function":
                raise InvalidRequest(f"Invalid '{choice_param}.type': expected 'function'.", f"{choice_param}.type")
            name = fn.get("name") if isinstance(fn, dict) else None
            if not isinstance(name, str) or not name:
                raise InvalidRequest(
                    f"Missing the function name in '{choice_param}'.", choice_param, "missing_required_parameter"
                )
            choice = name
        else:
            raise _type_error(choice_param, "a string or an object")
        if choice not in ("none", "auto", "required") and choice not in names:
            raise InvalidRequest(f"Invalid '{choice_param}': no tool named '{choice}' was given.", choice_param)
        if choice in ("required",) and not tools:
            raise InvalidRequest(f"Invalid '{choice_param}': 'required' needs tools.", choice_param)
    return tuple(tools), choice, legacy


def _stop(value: Any) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,) if value else ()
    if not isinstance(value, list) or not all(isinstance(s, str) for s in value):
        raise _type_error("stop", "a string or an array of strings")
    if len(value) > MAX_STOP:
        raise InvalidRequest(f"Invalid 'stop': at most {MAX_STOP} sequences.", "stop")
    return tuple(s for s in value if s)


def parse_chat_completion(body: bytes | dict) -> ParsedChat:
    """A `POST /v1/chat/completions` body -> ParsedChat; InvalidRequest (400) when it is not valid."""
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidRequest(
                "We could not parse the JSON body of your request. Send a JSON object.", None, "invalid_json"
            ) from None
    if not isinstance(body, dict):
        raise InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
    unknown = [k for k in body if k not in _SUPPORTED and k not in IGNORED]
    if unknown:
        raise InvalidRequest(f"Unrecognized request argument supplied: {unknown[0]}", unknown[0], "unknown_parameter")

    model = body.get("model")
    if model is None:
        raise InvalidRequest("Missing required parameter: 'model'.", "model", "missing_required_parameter")
    if not isinstance(model, str) or not model.strip():
        raise InvalidRequest("Invalid 'model': expected a non-empty string.", "model")
    messages = _messages(body.get("messages"))
    tools, tool_choice, legacy = _tools(body)

    n = body.get("n")
    if n is not None and (not _is_int(n) or n != 1):
        raise InvalidRequest("Invalid 'n': byok returns one choice; n must be 1.", "n", "unsupported_value")
    if body.get("logprobs") not in (None, False):
        raise InvalidRequest("'logprobs' is not supported by byok.", "logprobs", "unsupported_parameter")
    response_format = body.get("response_format")
    if response_format is not None and response_format != {"type": "text"}:
        raise InvalidRequest(
            'Only \'response_format\' {"type": "text"} is supported by byok.', "response_format", "unsupported_value"
        )
    _stored(model, "model")
    for name in ("user", "prompt_cache_key", "safety_identifier"):
        if body.get(name) is not None:
            if not isinstance(body[name], str):
                raise _type_error(name, "a string")
            _stored(body[name], name)
    metadata = body.get("metadata")
    if metadata is not None:
        if not isinstance(metadata, dict) or not all(isinstance(v, str) for v in metadata.values()):
            raise _type_error("metadata", "an object of strings")
        for k, v in metadata.items():
            _stored(k, "metadata")
            _stored(v, f"metadata.{k}")

    max_tokens = _positive_int(body, "max_tokens")
    max_completion = _positive_int(body, "max_completion_tokens")
    if max_tokens is not None and max_completion is not None and max_tokens != max_completion:
        raise InvalidRequest("Give 'max_completion_tokens' or 'max_tokens', not two different limits.", "max_tokens")

    stream = body.get("stream")
    if stream is not None and not isinstance(stream, bool):
        raise _type_error("stream", "a boolean")
    include_usage = False
    options = body.get("stream_options")
    if options is not None:
        if not stream:
            raise InvalidRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options")
        if not isinstance(options, dict):
            raise _type_error("stream_options", "an object")
        extra = set(options) - {"include_usage", "include_obfuscation"}
        if extra:
            raise InvalidRequest(
                f"Unrecognized stream option: {sorted(extra)[0]}", "stream_options", "unknown_parameter"
            )
        value = options.get("include_usage")
        if value is not None and not isinstance(value, bool):
            raise _type_error("stream_options.include_usage", "a boolean")
        include_usage = bool(value)

    request = ChatRequest(
        model=model.strip(),
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        temperature=_number(body, "temperature", 0, 2),
        top_p=_number(body, "top_p", 0, 1),
        max_tokens=max_completion if max_completion is not None else max_tokens,
        stop=_stop(body.get("stop")),
        stream=bool(stream),
    )
    return ParsedChat(request=request, stream=bool(stream), include_usage=include_usage, legacy_functions=legacy)
