"""The OpenAI Responses dialect, in: a `POST /v1/responses` body -> byok's normalised `ChatRequest`. Pure.

    parsed = parse_responses(raw)      # bytes -> ParsedResponses, or InvalidRequest (a 400 naming `param`)

The shapes are `byok.schemas.responses_body` (pydantic v2); this module gives them meaning:

- `instructions` and `system`/`developer` messages become system turns; `input` as a string is one user
  turn; `input_image` parts (a URL or a base64 data: URL) image parts of user turns and tool results;
  a run of assistant items (`reasoning`, `message`, `function_call`) becomes one assistant turn with
  its thinking, text and tool calls; `function_call_output` a tool turn, paired with its call by `call_id`.
- reasoning items come back as the turn's thinking: exactly as the provider signed it when their
  `encrypted_content` is byok's (`byok.schemas.responses_carry`), else their summary text, unsigned.
- `text.format` becomes `response_format`, `reasoning.effort` `reasoning_effort` ("xhigh" -> "high"),
  `parallel_tool_calls`, `user`, `metadata` and a tool's `strict` are passed on as they are.
- byok keeps no conversations (nothing is stored): `previous_response_id`, `conversation`,
  `item_reference` items and `background` are refused with a 400 naming the field, as are hosted tools,
  files and log probabilities, rather than answered without them.
- fields OpenAI documents that cannot change the answer's shape are accepted and ignored (`IGNORED`,
  declared on the body); any other unknown field is a 400 `unknown_parameter`, as OpenAI answers it.

The limits shared with the other dialects are `byok.schemas.rules`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace
from typing import Any

import pydantic

from byok.providers.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    ReasoningEffort,
    ResponseFormat,
    Role,
    TextPart,
    Thinking,
    Tool,
    ToolCall,
)
from byok.schemas import responses_body as rb
from byok.schemas import responses_carry, rules
from byok.schemas.base import problems
from byok.schemas.fields import FUNCTION_NAME
from byok.schemas.responses_errors import InvalidRequest, invalid_request

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
_FUNCTION_NAME = re.compile(FUNCTION_NAME)
_DEFAULT_PARAMETERS = {"type": "object", "properties": {}}


@dataclass(frozen=True, slots=True)
class ParsedResponses:
    """A parsed request: the normalised request, whether to stream, and what the answer echoes back."""

    request: ChatRequest
    stream: bool
    echo: dict[str, Any] = field(default_factory=dict)  # request parameters the response object repeats


# -- checks the shapes cannot say ------------------------------------------------------------------------


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


def _image(part: rb.ResponsesInputImage, param: str) -> ImagePart:
    if not part.image_url:
        raise _unsupported(
            "byok has no file store: send the image as 'image_url' (a URL or a base64 data: URL), not 'file_id'.",
            f"{param}.image_url" if part.file_id is None else f"{param}.file_id",
        )
    try:
        return ImagePart.from_url(part.image_url, detail=part.detail)
    except ValueError as exc:
        raise InvalidRequest(f"Invalid '{param}.image_url': {exc}.", f"{param}.image_url") from None


def _content_of(content: str | list[Any], param: str, *, images: bool) -> tuple[str | None, tuple[ContentPart, ...]]:
    """A message's content: (text, ()) for text alone, (None, parts) when it holds images."""
    if isinstance(content, str):
        return _content(content, param), ()
    parts: list[ContentPart] = []
    for i, part in enumerate(content):
        where = f"{param}[{i}]"
        if isinstance(part, (rb.ResponsesInputText, rb.ResponsesOutputText)):
            parts.append(TextPart(text=_content(part.text, f"{where}.text")))
        elif isinstance(part, rb.ResponsesRefusal):
            parts.append(TextPart(text=_content(part.refusal, f"{where}.refusal")))
        elif isinstance(part, rb.ResponsesInputImage) and images:
            parts.append(_image(part, where))
        else:
            raise _unsupported(
                f"Content parts of type '{part.type}' are not supported here by byok.",
                f"{where}.type",
                "unsupported_content",
            )
    if any(isinstance(p, ImagePart) for p in parts):
        return None, tuple(parts)
    return rules.join_parts(p.text for p in parts if isinstance(p, TextPart)), ()


def _text(content: str | list[Any], param: str) -> str:
    return _content_of(content, param, images=False)[0] or ""


# -- input items -> messages -----------------------------------------------------------------------------


class _Conversation:
    """Builds the message list; a run of assistant items (reasoning, message, function_call) is one turn."""

    def __init__(self) -> None:
        self.messages: list[Message] = []
        self.calls: dict[str, str] = {}  # call_id -> function name (Gemini needs it on results)
        self._texts: list[str] = []
        self._tool_calls: list[ToolCall] = []
        self._thinking: list[Thinking] = []
        self._signatures: dict[str, str] = {}  # call_id -> Gemini thought signature, from reasoning items

    def add(self, role: Role, content: str | list[Any], param: str) -> None:
        self.flush()
        text, parts = _content_of(content, param, images=role == "user")
        self.messages.append(Message(role=role, content=text, parts=parts))

    def assistant_text(self, content: str | list[Any], param: str) -> None:
        self._texts.append(_text(content, param))

    def reasoning(self, item: rb.ResponsesReasoningItem) -> None:
        blocks, signatures = responses_carry.unpack(item.encrypted_content)
        if not blocks:
            text = rules.join_parts(s.text for s in item.summary) or rules.join_parts(
                c.text for c in item.content or ()
            )
            blocks = (Thinking(text=text),) if text else ()
        self._thinking.extend(blocks)
        self._signatures.update(signatures)

    def call(self, item: rb.ResponsesFunctionCallItem, param: str) -> None:
        if item.call_id in self.calls:
            raise InvalidRequest(f"Duplicate function call id '{item.call_id}'.", f"{param}.call_id")
        self.calls[item.call_id] = item.name
        self._tool_calls.append(ToolCall(id=item.call_id, name=item.name, arguments=item.arguments))

    def result(self, item: rb.ResponsesFunctionCallOutputItem, param: str) -> None:
        self.flush()
        name = self.calls.get(item.call_id)
        if name is None:
            raise InvalidRequest(
                f"No tool call found for function call output with call_id {item.call_id}.", f"{param}.call_id"
            )
        text, parts = _content_of(item.output, f"{param}.output", images=True)
        self.messages.append(Message(role="tool", content=text, parts=parts, tool_call_id=item.call_id, name=name))

    def flush(self) -> None:
        if self._texts or self._tool_calls:
            calls = tuple(replace(c, thought_signature=self._signatures.get(c.id or "")) for c in self._tool_calls)
            text = rules.join_parts(self._texts) if self._texts else None
            self.messages.append(
                Message(role="assistant", content=text, tool_calls=calls, thinking=tuple(self._thinking))
            )
        # reasoning alone (no text, no call) is not a turn: nothing to send
        self._texts, self._tool_calls, self._thinking, self._signatures = [], [], [], {}


def _messages(body: rb.ResponsesBody) -> tuple[Message, ...]:
    convo = _Conversation()
    if body.instructions:
        convo.add("system", body.instructions, "instructions")
    if isinstance(body.input, str):
        convo.add("user", body.input, "input")
    for i, item in enumerate(body.input if isinstance(body.input, list) else ()):
        param = f"input[{i}]"
        if isinstance(item, rb.ResponsesMessageItem):
            if item.role == "assistant":
                convo.assistant_text(item.content, f"{param}.content")
            else:
                convo.add("user" if item.role == "user" else "system", item.content, f"{param}.content")
        elif isinstance(item, rb.ResponsesFunctionCallItem):
            convo.call(item, param)
        elif isinstance(item, rb.ResponsesFunctionCallOutputItem):
            convo.result(item, param)
        elif isinstance(item, rb.ResponsesReasoningItem):
            convo.reasoning(item)
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
        if not isinstance(t, rb.ResponsesFunctionTool):
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
        tools.append(Tool(name=t.name, description=t.description or "", parameters=parameters, strict=t.strict))
    names = [t.name for t in tools]
    if len(set(names)) != len(names):
        raise InvalidRequest("Tool names must be unique.", "tools")
    choice = body.tool_choice
    name = choice.name if isinstance(choice, rb.ResponsesToolChoiceFunction) else choice
    if name is not None and name not in ("none", "auto", "required") and name not in names:
        raise InvalidRequest(f"Invalid 'tool_choice': no function named '{name}' was given in 'tools'.", "tool_choice")
    if name == "required" and not tools:
        raise InvalidRequest("Invalid 'tool_choice': 'required' needs 'tools'.", "tool_choice")
    return tuple(tools), name


def _format(body: rb.ResponsesBody) -> ResponseFormat | None:
    """`text.format` -> ResponseFormat (None for plain text, the default)."""
    fmt = body.text.format if body.text else None
    if isinstance(fmt, rb.ResponsesJsonSchemaFormat):
        return ResponseFormat(
            type="json_schema", name=fmt.name, schema=fmt.schema_, description=fmt.description, strict=fmt.strict
        )
    if isinstance(fmt, rb.ResponsesJsonObjectFormat):
        return ResponseFormat(type="json_object")
    return None


def _effort(body: rb.ResponsesBody) -> ReasoningEffort | None:
    """`reasoning.effort`; "xhigh" asks for the most there is, which byok's providers call "high"."""
    effort = body.reasoning.effort if body.reasoning else None
    return "high" if effort == "xhigh" else effort


# -- the parser -----------------------------------------------------------------------------------------


def _validate(raw: bytes | str | dict) -> rb.ResponsesBody:
    try:
        if isinstance(raw, dict):
            return rb.ResponsesBody.model_validate(raw)
        return rb.ResponsesBody.model_validate_json(raw)
    except pydantic.ValidationError as exc:
        raise invalid_request(problems(exc)[0]) from None


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
    _refuse_stateful(body)
    model = body.model.strip()
    if not model:
        raise InvalidRequest("Invalid 'model': expected a non-empty string.", "model")
    messages = _messages(body)
    tools, tool_choice = _tools(body)
    request = ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        parallel_tool_calls=body.parallel_tool_calls,
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_output_tokens,
        response_format=_format(body),
        reasoning_effort=_effort(body),
        user=body.user,
        metadata=dict(body.metadata) if body.metadata else None,
        stream=bool(body.stream),
    )
    return ParsedResponses(request=request, stream=bool(body.stream), echo=_echo(body))
