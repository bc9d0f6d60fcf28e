"""OpenAI's chat-completions request body (`POST /v1/chat/completions`) as pydantic models -> `ParsedChat`.

    parsed = parse_chat_completion(raw)   # bytes or a dict -> ParsedChat, or InvalidRequest (a 400)

Validation is strict, as OpenAI's own is: an unknown field, a wrong type or an impossible value
is a 400 naming the parameter (`param`, OpenAI's spelling: `messages[0].content[1].text`) with
OpenAI's codes (`missing_required_parameter`, `invalid_type`, `invalid_value`,
`unknown_parameter`, ...), so a client learns at once that byok will not do what it asked rather
than getting a quietly different answer. A few parameters that cannot change the answer's shape
are accepted and ignored (`IGNORED`). The models state the shapes; `ChatCompletionRequest.to_parsed`
applies the rules that tie fields together (tools vs legacy functions, tool results answering
earlier calls, one token limit). Pure: no I/O, no ORM.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, Field, Tag, ValidationError, model_validator

from byok.providers.types import ChatRequest, Message, Role, Tool, ToolCall
from byok.schemas.base import LooseModel, StrictModel, problem, problems, tag, tagged, typed_required
from byok.schemas.carry import turn
from byok.schemas.fields import (
    FunctionName,
    MaxTokens,
    Messages,
    Stop,
    StoredText,
    Temperature,
    TopP,
    stop_tuple,
    stored_text,
)
from byok.schemas.openai_content import AssistantContent, TextContent, UserContent
from byok.schemas.openai_errors import InvalidRequest, invalid_request
from byok.schemas.openai_extras import (
    OpenAIExtraContent,
    OpenAIResponseFormat,
    OpenAIThinkingBlock,
    response_format,
    thinking_of,
)

__all__ = ["IGNORED", "ChatCompletionRequest", "InvalidRequest", "ParsedChat", "parse_chat_completion"]


@dataclass(frozen=True, slots=True)
class ParsedChat:
    """A parsed request: the normalised request and how to answer it."""

    request: ChatRequest
    stream: bool
    include_usage: bool
    legacy_functions: bool  # asked with `functions`: answer with `function_call`, as OpenAI did


# -- messages -------------------------------------------------------------------------------------


class OpenAIFunctionCall(LooseModel):
    name: Annotated[str, Field(min_length=1)]
    arguments: str = "{}"


class OpenAIToolCall(LooseModel):
    id: Annotated[str, Field(min_length=1)]
    type: Literal["function"] = "function"
    function: OpenAIFunctionCall
    extra_content: OpenAIExtraContent | None = None  # Gemini's thought signature, as byok's answers give it


class OpenAISystemMessage(LooseModel):
    role: Literal["system", "developer"]
    content: TextContent


class OpenAIUserMessage(LooseModel):
    role: Literal["user"]
    content: UserContent


class OpenAIAssistantMessage(LooseModel):
    role: Literal["assistant"]
    content: AssistantContent | None = None
    tool_calls: list[OpenAIToolCall] | None = None
    function_call: OpenAIFunctionCall | None = None  # the legacy functions API
    # What byok's answers give clients to send back (byok.api.render_openai): signed thinking, reasoning.
    thinking_blocks: list[OpenAIThinkingBlock] | None = None
    reasoning_content: str | None = None

    @model_validator(mode="after")
    def _says_something(self) -> OpenAIAssistantMessage:
        if self.content is None and not self.tool_calls and self.function_call is None:
            raise problem("invalid_value", "an assistant message needs 'content' or 'tool_calls'", at="content")
        return self


class OpenAIToolMessage(LooseModel):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: Annotated[str, Field(min_length=1)]


class OpenAIFunctionMessage(LooseModel):
    """A legacy function result, paired with its call by name."""

    role: Literal["function"]
    content: TextContent
    name: Annotated[str, Field(min_length=1)]


_ROLE_TAGS = {"system": "system", "developer": "system", "user": "user", "assistant": "assistant", "tool": "tool"}
_ROLE_TAGS["function"] = "function"


def _role_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return tag("user")  # not an object: the member says so
    role = value.get("role")
    return tag(_ROLE_TAGS[role]) if isinstance(role, str) and role in _ROLE_TAGS else None


ChatMessage = Annotated[
    Annotated[OpenAISystemMessage, Tag(tag("system"))]
    | Annotated[OpenAIUserMessage, Tag(tag("user"))]
    | Annotated[OpenAIAssistantMessage, Tag(tag("assistant"))]
    | Annotated[OpenAIToolMessage, Tag(tag("tool"))]
    | Annotated[OpenAIFunctionMessage, Tag(tag("function"))],
    tagged(
        _role_tag, kind="invalid_value", phrase="must be one of system, developer, user, assistant, tool", at="role"
    ),
]


# -- tools ----------------------------------------------------------------------------------------


class OpenAIFunction(LooseModel):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None

    def tool(self) -> Tool:
        parameters = self.parameters if self.parameters is not None else {"type": "object", "properties": {}}
        return Tool(name=self.name, description=self.description or "", parameters=parameters)


class OpenAITool(LooseModel):
    type: Literal["function"] = typed_required()
    function: OpenAIFunction


class OpenAINamedToolChoice(LooseModel):
    type: Literal["function"] = typed_required()
    function: dict[str, Any] | None = None


class OpenAINamedFunctionChoice(LooseModel):
    name: Any = None


def _choice_tag(value: Any) -> str | None:
    return tag("mode") if isinstance(value, str) else tag("named") if isinstance(value, dict) else None


_CHOICE = tagged(_choice_tag, kind="type", phrase="must be a string or an object")
ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag(tag("mode"))]
    | Annotated[OpenAINamedToolChoice, Tag(tag("named"))],
    _CHOICE,
]
FunctionChoice = Annotated[
    Annotated[Literal["none", "auto"], Tag(tag("mode"))] | Annotated[OpenAINamedFunctionChoice, Tag(tag("named"))],
    _CHOICE,
]


class OpenAIStreamOptions(StrictModel):
    include_usage: bool | None = None
    include_obfuscation: Any = None


# Accepted and ignored: they tune sampling or bookkeeping but do not change what the answer looks like.
IGNORED = frozenset(
    {
        "user",
        "seed",
        "metadata",
        "store",
        "service_tier",
        "frequency_penalty",
        "presence_penalty",
        "logit_bias",
        "prompt_cache_key",
        "safety_identifier",
    }
)


class ChatCompletionRequest(StrictModel):
    """The body of `POST /v1/chat/completions` as byok accepts it."""

    model: Annotated[str, Field(pattern=r"\S"), AfterValidator(stored_text)] = Field(
        description="A model; `<provider>/<model>` picks the provider, a bare name is routed by the catalog."
    )
    messages: Messages[ChatMessage] = Field(description="The conversation, oldest first.")
    tools: list[OpenAITool] | None = None
    tool_choice: ToolChoice | None = None
    functions: list[OpenAIFunction] | None = None
    function_call: FunctionChoice | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    max_completion_tokens: MaxTokens | None = Field(default=None, description="Same as `max_tokens`.")
    stop: Stop | None = None
    stream: bool | None = Field(default=None, description="Answer as server-sent `chat.completion.chunk` events.")
    stream_options: OpenAIStreamOptions | None = Field(default=None, description="Only with `stream: true`.")
    n: Annotated[int, Field(ge=1, le=1)] | None = None
    logprobs: bool | None = Field(
        default=None, description="Return each output token's log probability (OpenAI and compatible providers)."
    )
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = Field(
        default=None, description="With `logprobs`: this many most likely alternatives per token."
    )
    response_format: OpenAIResponseFormat | None = None
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high"] | None = None
    parallel_tool_calls: bool | None = None
    user: StoredText | None = None
    metadata: dict[StoredText, StoredText] | None = None
    # accepted, not used (IGNORED)
    prompt_cache_key: StoredText | None = None
    safety_identifier: StoredText | None = None
    seed: Any = None
    store: Any = None
    service_tier: Any = None
    frequency_penalty: Any = None
    presence_penalty: Any = None
    logit_bias: Any = None

    def to_parsed(self) -> ParsedChat:
        """The rules across fields, then the normalised request; InvalidRequest naming the parameter."""
        tools, choice, legacy = self._tools()
        if (
            self.max_tokens is not None
            and self.max_completion_tokens is not None
            and self.max_tokens != self.max_completion_tokens
        ):
            raise InvalidRequest(
                "Give 'max_completion_tokens' or 'max_tokens', not two different limits.", "max_tokens"
            )
        if self.stream_options is not None and not self.stream:
            raise InvalidRequest("'stream_options' is only allowed when 'stream' is true.", "stream_options")
        if self.top_logprobs is not None and not self.logprobs:
            raise InvalidRequest("'top_logprobs' is only allowed when 'logprobs' is true.", "top_logprobs")
        request = ChatRequest(
            model=self.model.strip(),
            messages=self._messages(),
            tools=tools,
            tool_choice=choice,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_completion_tokens if self.max_completion_tokens is not None else self.max_tokens,
            stop=stop_tuple(self.stop),
            stream=bool(self.stream),
            response_format=response_format(self.response_format),
            reasoning_effort=self.reasoning_effort,
            logprobs=bool(self.logprobs),
            top_logprobs=self.top_logprobs,
            parallel_tool_calls=self.parallel_tool_calls,
            user=self.user,
            metadata=self.metadata,
        )
        include_usage = bool(self.stream_options and self.stream_options.include_usage)
        return ParsedChat(request, bool(self.stream), include_usage, legacy)

    def _messages(self) -> tuple[Message, ...]:
        out: list[Message] = []
        call_names: dict[str, str] = {}  # tool call id -> function name (Gemini needs the name on results)
        for i, m in enumerate(self.messages):
            if isinstance(m, OpenAIAssistantMessage):
                if m.tool_calls is not None:
                    calls = [
                        ToolCall(
                            id=c.id,
                            name=c.function.name,
                            arguments=c.function.arguments,
                            thought_signature=c.extra_content.thought_signature if c.extra_content else None,
                        )
                        for c in m.tool_calls
                    ]
                elif m.function_call is not None:
                    calls = [ToolCall(id=None, name=m.function_call.name, arguments=m.function_call.arguments)]
                else:
                    calls = []
                call_names.update((c.id, c.name) for c in calls if c.id)
                thinking = thinking_of(m.thinking_blocks, m.reasoning_content)
                out.append(Message(role="assistant", content=m.content, tool_calls=tuple(calls), thinking=thinking))
            elif isinstance(m, OpenAIToolMessage):
                if m.tool_call_id not in call_names:
                    raise InvalidRequest(
                        f"Invalid 'messages[{i}]': a 'tool' message must answer a tool call of an earlier assistant"
                        " message.",
                        f"messages[{i}].tool_call_id",
                    )
                out.append(turn("tool", m.content, tool_call_id=m.tool_call_id, name=call_names[m.tool_call_id]))
            elif isinstance(m, OpenAIFunctionMessage):
                out.append(turn("tool", m.content, name=m.name))
            else:
                role: Role = "user" if isinstance(m, OpenAIUserMessage) else "system"
                out.append(turn(role, m.content))
        return tuple(out)

    def _tools(self) -> tuple[tuple[Tool, ...], str | None, bool]:
        """tools + tool_choice (or the legacy functions + function_call) -> (tools, tool_choice, legacy)."""
        if self.tools is not None and self.functions is not None:
            raise InvalidRequest("Use 'tools' or the legacy 'functions', not both.", "functions")
        legacy = self.functions is not None
        if legacy:
            tools = [f.tool() for f in self.functions or ()]
        else:
            tools = [t.function.tool() for t in self.tools or ()]
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise InvalidRequest("Tool names must be unique.", "functions" if legacy else "tools")
        if not legacy and self.function_call is not None:
            raise InvalidRequest(
                "'function_call' goes with the legacy 'functions'; use 'tool_choice'.", "function_call"
            )
        if legacy and self.tool_choice is not None:
            raise InvalidRequest(
                "'tool_choice' goes with 'tools'; use 'function_call' with 'functions'.", "tool_choice"
            )
        param = "function_call" if legacy else "tool_choice"
        raw = self.function_call if legacy else self.tool_choice
        if raw is None:
            return tuple(tools), None, legacy
        if isinstance(raw, str):
            choice: Any = raw
        elif isinstance(raw, OpenAINamedFunctionChoice):
            choice = raw.name
        else:
            choice = (raw.function or {}).get("name")
        if not isinstance(choice, str) or not choice:
            raise InvalidRequest(f"Missing the function name in '{param}'.", param, "missing_required_parameter")
        if choice not in ("none", "auto", "required") and choice not in names:
            raise InvalidRequest(f"Invalid '{param}': no tool named '{choice}' was given.", param)
        if choice == "required" and not tools:
            raise InvalidRequest(f"Invalid '{param}': 'required' needs tools.", param)
        return tuple(tools), choice, legacy


def parse_chat_completion(body: bytes | str | dict) -> ParsedChat:
    """A `POST /v1/chat/completions` body -> ParsedChat; InvalidRequest (400) when it is not valid."""
    try:
        if isinstance(body, dict):
            parsed = ChatCompletionRequest.model_validate(body)
        else:
            parsed = ChatCompletionRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request(problems(exc)[0]) from None
    return parsed.to_parsed()
