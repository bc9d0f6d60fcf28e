"""The websocket's `chat.request` frame as pydantic models -> (ChatRequest, provider).

    req, provider = ChatRequestFrame.model_validate(frame).to_request()

Lenient where the websocket always was (a message's unknown fields, the frame's `type`/`id`, tool
calls and tools either OpenAI-shaped `{"function": {...}}` or flat `{"name": ...}`, arguments as
JSON text or an object); strict about types, ranges and control characters, with the limits
every dialect shares (`byok.schemas.fields`). The consumer (`byok.ws.frames.parse_chat_request`)
turns the first problem into a `bad_request` error frame.

Beyond text it carries what `POST /api/chat` carries, with the OpenAI dialect's field types
(`byok.schemas.carry`): content as a string or parts (`text`, `image_url`), an assistant turn's
signed `thinking` blocks, a tool call's `thought_signature`, `response_format`,
`reasoning_effort` (what `chat.done` gave, sent back as given). Pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BeforeValidator, Field, Tag, field_validator, model_validator

from byok.providers.types import ChatRequest, Message, ReasoningEffort, Tool, ToolCall
from byok.schemas import rules
from byok.schemas.base import LooseModel, problem, tag, tagged
from byok.schemas.carry import turn
from byok.schemas.fields import MaxTokens, Messages, StoredText, Temperature, TopP
from byok.schemas.openai_content import UserContent
from byok.schemas.openai_extras import OpenAIResponseFormat, OpenAIThinkingBlock, response_format, thinking_of

__all__ = ["ROLES", "ChatRequestFrame"]

ROLES = ("system", "user", "assistant", "tool")


def _json_text(value: Any) -> Any:
    return value if isinstance(value, str) else orjson.dumps(value).decode()


class FunctionIn(LooseModel):
    """A function (of a tool call or a tool) as OpenAI nests it, or flat."""

    name: str | None = None
    arguments: Annotated[str, BeforeValidator(_json_text, json_schema_input_type=Any)] = "{}"
    description: Any = None
    parameters: dict[str, Any] | None = Field(default=None, description="A JSON schema object.")


class ToolCallIn(FunctionIn):
    id: str | None = None
    thought_signature: str | None = None
    function: FunctionIn | None = None

    @property
    def fn(self) -> FunctionIn:
        return self.function or self

    @model_validator(mode="after")
    def _named(self) -> ToolCallIn:
        if not self.fn.name:
            raise problem("value", "needs a function name")
        return self


class ToolIn(ToolCallIn):
    type: Any = None


class MessageIn(LooseModel):
    role: Literal["system", "user", "assistant", "tool"]
    content: UserContent | None = None  # text, or parts when they carry an image
    thinking: list[OpenAIThinkingBlock] | None = None
    tool_calls: list[ToolCallIn] | None = None
    tool_call_id: str | None = None
    name: str | None = None

    @field_validator("thinking", mode="after")
    @classmethod
    def _complete(cls, value: list[OpenAIThinkingBlock] | None) -> list[OpenAIThinkingBlock] | None:
        for block in value or ():
            block.value()  # a redacted block without its data is refused here, naming the field
        return value

    def message(self) -> Message:
        return turn(
            self.role,
            self.content,
            thinking=thinking_of(self.thinking, None),
            tool_calls=tuple(
                ToolCall(
                    id=c.id,
                    name=c.fn.name or "",
                    arguments=c.fn.arguments,
                    thought_signature=c.thought_signature,
                )
                for c in self.tool_calls or ()
            ),
            tool_call_id=self.tool_call_id,
            name=self.name,
        )


def _role_tag(value: Any) -> str | None:
    return tag("message") if isinstance(value, dict) and value.get("role") in ROLES else None


FrameMessage = Annotated[
    Annotated[MessageIn, Tag(tag("message"))],
    tagged(_role_tag, kind="value", phrase=f"must be one of {', '.join(ROLES)}", at="role"),
]


def _blank_is_none(value: Any) -> Any:
    return None if value == "" else value


class NamedChoice(LooseModel):
    function: dict[str, Any]

    @model_validator(mode="after")
    def _named(self) -> NamedChoice:
        if not isinstance(self.function.get("name"), str) or not self.function["name"]:
            raise problem("value", "must be auto, none, required or a function name")
        return self


def _choice_tag(value: Any) -> str | None:
    return tag("mode") if isinstance(value, str) else tag("named") if isinstance(value, dict) else None


ToolChoice = Annotated[
    Annotated[str, Tag(tag("mode"))] | Annotated[NamedChoice, Tag(tag("named"))],
    tagged(_choice_tag, kind="type", phrase="must be auto, none, required or a function name"),
]
Stop = Annotated[
    list[Annotated[str, Field(min_length=1)]],
    BeforeValidator(lambda v: [v] if isinstance(v, str) else v, json_schema_input_type=str | list[str]),
    Field(max_length=rules.MAX_STOP),
]


class ChatRequestFrame(LooseModel):
    """`{"type": "chat.request", "id": ..., "messages": [...], ...}` (the consumer reads `type` and `id`)."""

    messages: Messages[FrameMessage]
    provider: Annotated[Annotated[StoredText, Field(max_length=64)] | None, BeforeValidator(_blank_is_none)] = None
    model: Annotated[Annotated[StoredText, Field(max_length=200)] | None, BeforeValidator(_blank_is_none)] = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    stop: Stop | None = None
    tools: list[ToolIn] | None = None
    tool_choice: ToolChoice | None = None
    response_format: OpenAIResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None

    def to_request(self) -> tuple[ChatRequest, str | None]:
        choice = self.tool_choice
        tools = tuple(
            Tool(
                name=t.fn.name or "",
                description=str(t.fn.description or ""),
                parameters=t.fn.parameters or {"type": "object", "properties": {}},
            )
            for t in self.tools or ()
        )
        req = ChatRequest(
            model=self.model or "",
            messages=tuple(m.message() for m in self.messages),
            tools=tools,
            tool_choice=choice.function["name"] if isinstance(choice, NamedChoice) else choice,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=tuple(self.stop or ()),
            stream=True,
            response_format=response_format(self.response_format),
            reasoning_effort=self.reasoning_effort,
        )
        return req, self.provider
