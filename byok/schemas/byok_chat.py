"""byok's own chat request body (`POST /api/chat`) as pydantic models -> (ChatRequest, provider, stream).

    req, provider, stream = ByokChatRequest.model_validate(body).to_request()

Every bad field is reported (the view answers a 422 listing them, `byok.api.views_byok`), so the
rules that tie fields together are field validators that read the fields declared before them
(an assistant message's `content` after its `tool_calls`, `tool_choice` after `tools`).
Unknown fields of the body are refused; unknown fields of a message or tool are ignored.

Beyond text it carries what `/v1/chat/completions` carries, with the same field types
(`byok.schemas.carry`): user, system and tool content as a string or parts (`text`,
`image_url`), an assistant turn's signed `thinking` blocks and its tool calls'
`thought_signature` (as the answers give them), `response_format`, `reasoning_effort`. Pure.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from pydantic import BeforeValidator, Field, Tag, ValidationInfo, field_validator, model_validator

from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.schemas.base import LooseModel, StrictModel, problem, tag, tagged
from byok.schemas.carry import turn
from byok.schemas.fields import (
    FunctionName,
    MaxTokens,
    Messages,
    Stop,
    StoredText,
    Temperature,
    TopP,
    content_text,
    stop_tuple,
)
from byok.schemas.openai_content import TextContent, UserContent
from byok.schemas.openai_extras import OpenAIResponseFormat, OpenAIThinkingBlock, response_format, thinking_of

__all__ = ["ROLES", "ByokChatRequest"]

ROLES = ("system", "user", "assistant", "tool")
MODES = ("auto", "none", "required")


def _json_text(value: Any) -> Any:
    return orjson.dumps(value).decode() if isinstance(value, dict) else value


class ByokToolCall(LooseModel):
    """A tool call of an earlier assistant message."""

    name: Annotated[str, Field(min_length=1)]
    id: str | None = None
    arguments: Annotated[str, BeforeValidator(_json_text, json_schema_input_type=str | dict[str, Any])] = "{}"
    thought_signature: str | None = Field(default=None, description="Gemini's, as the answer gave it.")


class _Text(LooseModel):
    @field_validator("content", mode="after", check_fields=False)
    @classmethod
    def _clean(cls, value: str | None) -> str | None:
        return content_text(value) if value else value


class ByokSystemMessage(LooseModel):
    role: Literal["system"]
    content: TextContent


class ByokUserMessage(LooseModel):
    role: Literal["user"]
    content: UserContent


class ByokAssistantMessage(_Text):
    role: Literal["assistant"]
    thinking: list[OpenAIThinkingBlock] | None = Field(
        default=None, description="The signed thinking blocks of the answer this turn repeats, sent back as given."
    )
    tool_calls: list[ByokToolCall] | None = None
    content: str | None = Field(default=None, validate_default=True)

    @field_validator("thinking", mode="after")
    @classmethod
    def _complete(cls, value: list[OpenAIThinkingBlock] | None) -> list[OpenAIThinkingBlock] | None:
        for block in value or ():
            block.value()  # a redacted block without its data is refused here, naming the field
        return value

    @field_validator("content", mode="after")
    @classmethod
    def _says_something(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is None and not info.data.get("tool_calls"):  # absent when the tool calls were refused
            raise problem("missing", "this field is required (or valid `tool_calls`)")
        return value


class ByokToolMessage(LooseModel):
    role: Literal["tool"]
    content: TextContent
    tool_call_id: str | None = None
    name: str | None = None

    @model_validator(mode="after")
    def _answers_a_call(self) -> ByokToolMessage:
        if not self.tool_call_id and not self.name:
            raise problem(
                "value", "a tool result needs the `tool_call_id` (or the function `name`) it answers", at="tool_call_id"
            )
        return self


def _role_tag(value: Any) -> str | None:
    if not isinstance(value, dict):
        return tag("user")
    role = value.get("role")
    return tag(role) if isinstance(role, str) and role in ROLES else None


ByokMessage = Annotated[
    Annotated[ByokSystemMessage, Tag(tag("system"))]
    | Annotated[ByokUserMessage, Tag(tag("user"))]
    | Annotated[ByokAssistantMessage, Tag(tag("assistant"))]
    | Annotated[ByokToolMessage, Tag(tag("tool"))],
    tagged(_role_tag, kind="value", phrase=f"must be one of: {', '.join(ROLES)}", at="role"),
]


class ByokTool(LooseModel):
    name: FunctionName
    description: str | None = None
    parameters: dict[str, Any] | None = None


Name = Annotated[StoredText, Field(max_length=64)]
Model = Annotated[StoredText, Field(max_length=200)]


class ByokChatRequest(StrictModel):
    """The body of `POST /api/chat`."""

    messages: Messages[ByokMessage]
    provider: Name | None = Field(default=None, description="A provider's name: only that provider is tried.")
    model: Model | None = Field(default=None, description="The provider's default model when absent.")
    temperature: Temperature | None = None
    top_p: TopP | None = None
    max_tokens: MaxTokens | None = None
    stop: Stop | None = None
    tools: list[ByokTool] | None = None
    response_format: OpenAIResponseFormat | None = None
    # null inside the enum: OpenAPI 3.0 validators refuse a nullable enum's null otherwise, which the view accepts
    reasoning_effort: Literal["none", "minimal", "low", "medium", "high", None] = None
    tool_choice: Name | None = Field(
        default=None, description="`auto`, `none`, `required` or the name of one of the tools."
    )
    stream: bool | None = Field(
        default=False, description="Answer as `text/event-stream`: events `delta`, `tool_call`, then `done` or `error`."
    )

    @field_validator("tool_choice", mode="after")
    @classmethod
    def _names_a_tool(cls, value: str | None, info: ValidationInfo) -> str | None:
        value = (value or "").strip() or None
        names = {t.name for t in info.data.get("tools") or ()}
        if value and value not in MODES and value not in names:
            raise problem("value", "auto, none, required, or the name of one of the tools")
        return value

    def to_request(self) -> tuple[ChatRequest, str | None, bool]:
        """(the normalised request, the provider named, whether to stream)."""
        messages = []
        for m in self.messages:
            if isinstance(m, ByokAssistantMessage):
                calls = tuple(
                    ToolCall(id=c.id, name=c.name, arguments=c.arguments, thought_signature=c.thought_signature)
                    for c in m.tool_calls or ()
                )
                thinking = thinking_of(m.thinking, None)
                messages.append(Message(role="assistant", content=m.content, tool_calls=calls, thinking=thinking))
            elif isinstance(m, ByokToolMessage):
                messages.append(turn("tool", m.content, tool_call_id=m.tool_call_id, name=m.name))
            else:
                messages.append(turn(m.role, m.content))
        tools = tuple(
            Tool(
                name=t.name,
                description=t.description or "",
                parameters=t.parameters or {"type": "object", "properties": {}},
            )
            for t in self.tools or ()
        )
        req = ChatRequest(
            model=(self.model or "").strip(),
            messages=tuple(messages),
            tools=tools,
            tool_choice=self.tool_choice,
            temperature=self.temperature,
            top_p=self.top_p,
            max_tokens=self.max_tokens,
            stop=stop_tuple(self.stop),
            stream=bool(self.stream),
            response_format=response_format(self.response_format),
            reasoning_effort=self.reasoning_effort,
        )
        return req, (self.provider or "").strip() or None, bool(self.stream)
