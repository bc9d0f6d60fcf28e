"""The OpenAI Responses dialect, in: a `POST /v1/responses` body -> byok's normalised `ChatRequest`. Pure.

    parsed = parse_responses(raw)      # bytes -> ParsedResponses, or InvalidRequest (a 400 naming `param`)

The shapes are `byok.schemas.responses_body` (pydantic v2); this module gives them meaning:

- `instructions` and `system`/`developer` messages become system turns; `input` as a string is one user
  turn; a run of assistant items (`message`, `function_call`, `reasoning`) becomes one assistant turn
  with its text and tool calls; `function_call_output` a tool turn, paired with its call by `call_id`.
- byok keeps no conversations (nothing is stored): `previous_response_id`, `conversation`,
  `item_reference` items and `background` are refused with a 400 naming the field, as are hosted tools,
  files and log probabilities, rather than answered without them.
- fields OpenAI documents that cannot change the answer's shape are accepted and ignored (`IGNORED`);
  any other unknown field is a 400 `unknown_parameter`, as OpenAI answers it.

The limits shared with the other dialects are `byok.schemas.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import pydantic

from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.schemas import responses_body as rb
from byok.schemas import rules

__all__ = ["IGNORED", "InvalidRequest", "ParsedResponses", "parse_responses"]

# Accepted and ignored: bookkeeping, caching and sampling hints that do not change what the answer looks like.
IGNORED = frozenset(
    {
        "include",
        "max_tool_calls",
        "prompt_cache_key",
        "prompt_cache_retention",
        "prompt_cache_options",
        "safety_identifier",
        "service_tier",
        "stream_options",
        "truncation",
        "context_management",
    }
)
_FUNCTION_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_DEFAULT_PARAMETERS = {"type": "object", "properties": {}}


class InvalidRequest(Exception):
    """The body is not a valid Responses request: a 400 naming `param`, in OpenAI's error shape."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


@dataclass(frozen=True, slots=True)
class ParsedResponses:
    """A parsed request: the normalised request, whether to stream, and what the answer echoes back."""

    request: ChatRequest
    stream: bool
    echo: dict[str, Any] = field(default_factory=dict)  # request parameters the response object repeats


# -- pydantic errors -> OpenAI's 400 ---------------------------------------------------------------------

_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "an array",
    "literal_error": None,
}
_UNSUPPORTED = {
    "unsupported_item": "input items of type {kind!r} are not supported by byok (it takes message, function_call,"
    " function_call_output and reasoning items)",
    "unsupported_content": "content parts of type {kind!r} are not supported by byok (it takes input_text,"
    " input_image, output_text and refusal)",
    "unsupported_tool": "tools of type {kind!r} are not supported by byok (it takes function tools)",
    "unsupported_tool_choice": "tool_choice of type {kind!r} is not supported by byok (use none, auto, required"
    " or a function)",
    "unsupported_format": "text.format of type {kind!r} is not supported (use text, json_object or json_schema)",
}


def param_of(loc: tuple[Any, ...]) -> str | None:
    """A pydantic location as OpenAI's `param`: `input[2].content[0].text` (union tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("~"):
            out += f".{part}" if out else part
    return out or None


def _from_validation(exc: pydantic.ValidationError) -> InvalidRequest:
    err = exc.errors(include_url=False)[0]
    kind, loc, value = err["type"], err["loc"], err.get("input")
    param = param_of(loc)
    if kind == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object.", None, "invalid_json"
        )
    if param is None:
        return InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind in _UNSUPPORTED:
        tag = value.get("type") if isinstance(value, dict) else None
        if tag is None:
            where = f"{param}.type" if isinstance(value, dict) else param
            return InvalidRequest(f"Missing or invalid '{where}'.", where, "invalid_type")
        message = _UNSUPPORTED[kind].format(kind=tag)
        return InvalidRequest(f"Invalid '{param}.type': {message}.", f"{param}.type", "unsupported_value")
    if kind == "list_type" and loc and loc[-1] == "~list":
        return InvalidRequest(f"Invalid type for '{param}': expected a string or an array.", param, "invalid_type")
    if kind in _TYPE_NAMES and _TYPE_NAMES[kind]:
        return InvalidRequest(f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}.", param, "invalid_type")
    return InvalidRequest(f"Invalid '{param}': {err['msg']}.", param, "invalid_value")


# -- checks the shapes cannot say ------------------------------------------------------------------------


def _stored(value: str, param: str) -> str:
    problem = rules.stored_text_problem(value)
    if problem:
        raise InvalidRequest(f"Invalid '{param}': it {problem}.", param)
    return value


def _content(text: str, param: str) -> str:
    problem = rules.content_problem(text)
    if problem:
        raise InvalidRequest(f"Invalid '{param}': it {problem}.", param)
    return text


def _unsupported(message: str, param: str, code: str = "unsupported_parameter") -> InvalidRequest:
    return InvalidRequest(message, param, code)


def _refuse_stateful(body: rb.ResponsesBody) -> None:
    if body.previous_response_id is not None:
        raise _unsupported(
            "byok does not store responses, so 'previous_response_id' cannot be used: send the whole"
            " conversation as 'input' items (the previous output items, then the new input).",
            "previous_response_id",
            "previous_response_not_supported",
        )
    if body.conversation is not None:
        raise _unsupported(
            "byok does not store conversations: send the whole conversation as 'input' items.",
            "conversation",
            "conversation_not_supported",
        )
    if body.background:
        raise _unsupported("byok does not run responses in the background; use 'stream' instead.", "background")
    if body.prompt is not None:
        raise _unsupported("Stored prompt templates are not supported by byok; send 'instructions'.", "prompt")
    if body.top_logprobs:
        raise _unsupported("Log probabilities are not supported by byok.", "top_logprobs")
    for i, name in enumerate(body.include or ()):
        if name == "message.output_text.logprobs":
            raise _unsupported("Log probabilities are not supported by byok.", f"include[{i}]")


def _unknown_fields(body: rb.ResponsesBody) -> None:
    for name in body.model_extra or {}:
        if name not in IGNORED:
            raise InvalidRequest(f"Unknown parameter: '{name}'.", name, "unknown_parameter")


def _text(content: str | list[Any], param: str) -> str:
    """A message's content as text: a string, or its text parts joined (`rules.join_parts`)."""
    if isinstance(content, str):
        return _content(content, param)
    texts = []
    for i, part in enumerate(content):
        if isinstance(part, (rb.InputText, rb.OutputText)):
            texts.append(part.text)
        elif isinstance(part, rb.Refusal):
            texts.append(part.refusal)
        elif isinstance(part, rb.InputImage):
            raise _unsupported(
                "Image input is not supported by byok yet; send text.", f"{param}[{i}]", "unsupported_content"
            )
        else:
            raise _unsupported(
                f"Content parts of type '{part.type}' are not supported by byok; send text.",
                f"{param}[{i}].type",
                "unsupported_content",
            )
    return _content(rules.join_parts(texts), param)


# -- input items -> messages -----------------------------------------------------------------------------


class _Conversation:
    """Builds the message list; a run of assistant items becomes one assistant message."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.calls: dict[str, str] = {}  # call_id -> function name (Gemini needs it on results)
        self._texts: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._open = False

    def system(self, text: str) -> None:
        self.flush()
        self.messages.append(Message(role="system", content=text))

    def user(self, text: str) -> None:
        self.flush()
        self.messages.append(Message(role="user", content=text))

    def assistant_text(self, text: str) -> None:
        self._open = True
        self._texts.append(text)

    def assistant_reasoning(self) -> None:
        self._open = True  # its text is the model's own: not sent back (providers reject or ignore it)

    def call(self, item: rb.FunctionCallItem, param: str) -> None:
        if item.call_id in self.calls:
            raise InvalidRequest(f"Duplicate function call id '{item.call_id}'.", f"{param}.call_id")
        self._open = True
        self.calls[item.call_id] = item.name
        self._tool_calls.append(ToolCall(id=item.call_id, name=item.name, arguments=item.arguments))

    def result(self, item: rb.FunctionCallOutputItem, param: str) -> None:
        self.flush()
        name = self.calls.get(item.call_id)
        if name is None:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id {item.call_id}.", f"{param}.call_id"
            )
        text = _text(item.output, f"{param}.output")
        self.messages.append(Message(role="tool", content=text, tool_call_id=item.call_id, name=name))

    def flush(self) -> None:
        if self._open and (self._texts or self._tool_calls):
            text = rules.join_parts(self._texts) if self._texts else None
            self.messages.append(Message(role="assistant", content=text, tool_calls=tuple(self._tool_calls)))
        self._texts, self._tool_calls, self._open = [], [], False


def _messages(body: rb.ResponsesBody) -> tuple[Message, ...]:
    convo = _Conversation()
    if body.instructions:
        convo.system(_content(body.instructions, "instructions"))
    if isinstance(body.input, str):
        convo.user(_content(body.input, "input"))
    for i, item in enumerate(body.input if isinstance(body.input, list) else ()):
        param = f"input[{i}]"
        if isinstance(item, rb.MessageItem):
            text = _text(item.content, f"{param}.content")
            if item.role in ("system", "developer"):
                convo.system(text)
            elif item.role == "user":
                convo.user(text)
            else:
                convo.assistant_text(text)
        elif isinstance(item, rb.FunctionCallItem):
            convo.call(item, param)
        elif isinstance(item, rb.FunctionCallOutputItem):
            convo.result(item, param)
        elif isinstance(item, rb.ReasoningItem):
            convo.assistant_reasoning()
        else:  # an item_reference
            raise _unsupported(
                "byok does not store items, so 'item_reference' cannot be used: send the item itself.",
                f"{param}.type",
                "item_reference_not_supported",
            )
    convo.flush()
    if not any(m.role != "system" for m in convo.messages):
        raise InvalidRequest("Missing required parameter: 'input'.", "input", "missing_required_parameter")
    return tuple(convo.messages)


# -- tools ----------------------------------------------------------------------------------------------


def _tools(body: rb.ResponsesBody) -> tuple[tuple[Tool, ...], str | None]:
    tools: list[Tool] = []
    for i, t in enumerate(body.tools or ()):
        if not isinstance(t, rb.FunctionTool):
            raise _unsupported(
                f"Tools of type '{t.type}' are not supported by byok; use function tools.",
                f"tools[{i}].type",
                "unsupported_value",
            )
        if not _FUNCTION_NAME.match(t.name):
            raise InvalidRequest(
                f"Invalid 'tools[{i}].name': use 1-64 letters, digits, underscores or dashes.", f"tools[{i}].name"
            )
        parameters = t.parameters if t.parameters is not None else _DEFAULT_PARAMETERS
        tools.append(Tool(name=t.name, description=t.description or "", parameters=parameters))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", "tools")
    choice = body.tool_choice
    name = choice.name if isinstance(choice, rb.ToolChoiceFunction) else choice
    if name is not None and name not in ("none", "auto", "required") and name not in names:
        raise InvalidRequest(f"Invalid 'tool_choice': no function named '{name}' was given in 'tools'.", "tool_choice")
    if name == "required" and not tools:
        raise InvalidRequest("Invalid 'tool_choice': 'required' needs 'tools'.", "tool_choice")
    return tuple(tools), name


def _format(body: rb.ResponsesBody) -> None:
    fmt = body.text.format if body.text else None
    if fmt is not None and not isinstance(fmt, rb.TextPlain):
        raise _unsupported(
            f"text.format of type '{fmt.type}' is not supported by byok yet.", "text.format", "unsupported_value"
        )


# -- the parser -----------------------------------------------------------------------------------------


def _validate(raw: bytes | str | dict) -> rb.ResponsesBody:
    try:
        if isinstance(raw, dict):
            return rb.ResponsesBody.model_validate(raw)
        return rb.ResponsesBody.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise _from_validation(exc) from None


def _echo(body: rb.ResponsesBody) -> dict[str, Any]:
    """What the response object repeats of the request (OpenAI echoes its parameters)."""
    return body.model_dump(
        mode="json",
        by_alias=True,
        include={
            "instructions",
            "max_output_tokens",
            "metadata",
            "parallel_tool_calls",
            "reasoning",
            "temperature",
            "text",
            "tool_choice",
            "tools",
            "top_p",
            "user",
        },
    )


def parse_responses(raw: bytes | str | dict) -> ParsedResponses:
    """A `POST /v1/responses` body -> ParsedResponses; InvalidRequest (400) when it is not valid."""
    body = _validate(raw)
    _unknown_fields(body)
    _refuse_stateful(body)
    model = _stored(body.model.strip(), "model")
    if not model:
        raise InvalidRequest("Invalid 'model': expected a non-empty string.", "model")
    if body.user is not None:
        _stored(body.user, "user")
    for key, value in (body.metadata or {}).items():
        if len(key) > 64 or len(value) > 512:
            raise InvalidRequest("Invalid 'metadata': keys are at most 64 and values 512 characters.", "metadata")
        _stored(key, "metadata")
        _stored(value, f"metadata.{key}")
    messages = _messages(body)
    tools, tool_choice = _tools(body)
    _format(body)
    request = ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_output_tokens,
        stream=bool(body.stream),
    )
    return ParsedResponses(request=request, stream=bool(body.stream), echo=_echo(body))
