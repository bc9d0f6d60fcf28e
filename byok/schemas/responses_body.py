"""The OpenAI Responses request body (`POST /v1/responses`) as pydantic v2 models: shapes and types only.

    body = ResponsesBody.model_validate_json(raw)     # pydantic.ValidationError when it is not one

Shapes follow the official `openai` SDK's `ResponseCreateParams` (the SDK is the judge). Every
union is told apart by a callable discriminator whose tags start with "~", so an error names one
branch and `byok.schemas.responses` can turn its location into OpenAI's `param` (`input[2].call_id`)
by dropping those tags. Types are strict, as OpenAI's are: "1" is not a number, 1 is not a boolean.

Input items and content parts ignore fields they do not use (`id`, `status`, `annotations`,
`logprobs`, `phase`...), so a client can send the output items of an earlier answer back as input,
as the SDK's own examples do. Unknown top-level fields are kept (`model_extra`) for the parser to
accept or refuse. Meaning (what is supported, what maps to what) lives in `byok.schemas.responses`.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Discriminator, Field, Tag

from byok.schemas import rules

__all__ = [
    "FunctionCallItem",
    "FunctionCallOutputItem",
    "FunctionTool",
    "InputImage",
    "InputText",
    "ItemReference",
    "JsonObjectFormat",
    "JsonSchemaFormat",
    "MessageItem",
    "OutputText",
    "ReasoningItem",
    "Refusal",
    "ResponsesBody",
    "TextFormat",
    "ToolChoiceFunction",
    "UnsupportedPart",
]

_CONFIG = ConfigDict(extra="ignore", frozen=True, strict=True, allow_inf_nan=False)


class _Model(BaseModel):
    model_config = _CONFIG


def _type_tag(value: Any, default: str | None = None) -> str | None:
    """The "~type" tag of an object (its `type`, else `default`); None for a non-object (a type error)."""
    if isinstance(value, dict):
        kind = value.get("type", default)
        return f"~{kind}" if isinstance(kind, str) else None
    kind = getattr(value, "type", None)
    return f"~{kind}" if isinstance(kind, str) else None


def _shape_tag(value: Any) -> str:
    """ "~text" for a string, "~list" for anything else (which then fails as a list if it is not one)."""
    return "~text" if isinstance(value, str) else "~list"


def _tagged(*members: tuple[str, Any], error: str) -> Any:
    """A union told apart by `_type_tag`; an unknown tag fails with the error type `error`."""
    union = functools.reduce(operator.or_, (Annotated[model, Tag(tag)] for tag, model in members))
    return Annotated[union, Discriminator(_type_tag, custom_error_type=error, custom_error_message="unsupported type")]


# -- content parts -----------------------------------------------------------------------------------


class InputText(_Model):
    type: Literal["input_text"]
    text: str


class OutputText(_Model):
    type: Literal["output_text"]
    text: str


class Refusal(_Model):
    type: Literal["refusal"]
    refusal: str


class InputImage(_Model):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class UnsupportedPart(_Model):
    """`input_file`, `input_audio`: recognised, and refused by the parser with a clear message."""

    type: Literal["input_file", "input_audio"]


if TYPE_CHECKING:  # what the tagged unions hold, for the type checker
    Part = InputText | OutputText | Refusal | InputImage | UnsupportedPart
else:
    Part = _tagged(
        ("~input_text", InputText),
        ("~output_text", OutputText),
        ("~refusal", Refusal),
        ("~input_image", InputImage),
        ("~input_file", UnsupportedPart),
        ("~input_audio", UnsupportedPart),
        error="unsupported_content",
    )
Content = Annotated[
    Annotated[str, Tag("~text")] | Annotated[list[Part], Tag("~list")],
    Discriminator(_shape_tag),
]

# -- input items -------------------------------------------------------------------------------------


class MessageItem(_Model):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content


class FunctionCallItem(_Model):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    arguments: str
    id: str | None = None


class FunctionCallOutputItem(_Model):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=200)
    output: Content


class SummaryText(_Model):
    type: Literal["summary_text"]
    text: str


class ReasoningText(_Model):
    type: Literal["reasoning_text"]
    text: str


class ReasoningItem(_Model):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[SummaryText] = []
    content: list[ReasoningText] | None = None
    encrypted_content: str | None = None


class ItemReference(_Model):
    """An item stored by an earlier response: byok stores none, so the parser refuses it."""

    type: Literal["item_reference"]
    id: str


Item = Annotated[
    Annotated[MessageItem, Tag("~message")]
    | Annotated[FunctionCallItem, Tag("~function_call")]
    | Annotated[FunctionCallOutputItem, Tag("~function_call_output")]
    | Annotated[ReasoningItem, Tag("~reasoning")]
    | Annotated[ItemReference, Tag("~item_reference")],
    Discriminator(
        lambda v: _type_tag(v, "message"), custom_error_type="unsupported_item", custom_error_message="unsupported type"
    ),
]
Input = Annotated[
    Annotated[str, Tag("~text")] | Annotated[list[Item], Field(max_length=rules.MAX_MESSAGES), Tag("~list")],
    Discriminator(_shape_tag),
]

# -- tools, tool choice, text format, reasoning -------------------------------------------------------


class FunctionTool(_Model):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class HostedTool(_Model):
    """OpenAI's built-in tools: recognised, and refused by the parser (byok serves function tools only)."""

    type: str


_HOSTED = (
    "web_search",
    "web_search_preview",
    "file_search",
    "computer_use_preview",
    "code_interpreter",
    "image_generation",
    "mcp",
    "local_shell",
    "shell",
    "apply_patch",
    "custom",
)
if TYPE_CHECKING:
    Tool = FunctionTool | HostedTool
else:
    Tool = _tagged(("~function", FunctionTool), *((f"~{n}", HostedTool) for n in _HOSTED), error="unsupported_tool")


class ToolChoiceFunction(_Model):
    type: Literal["function"]
    name: str


ToolChoice = Annotated[
    Annotated[Literal["none", "auto", "required"], Tag("~mode")] | Annotated[ToolChoiceFunction, Tag("~function")],
    Discriminator(
        lambda v: "~mode" if isinstance(v, str) else _type_tag(v),
        custom_error_type="unsupported_tool_choice",
        custom_error_message="unsupported type",
    ),
]


class TextPlain(_Model):
    type: Literal["text"]


class JsonObjectFormat(_Model):
    type: Literal["json_object"]


class JsonSchemaFormat(_Model):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


if TYPE_CHECKING:
    TextFormat = TextPlain | JsonObjectFormat | JsonSchemaFormat
else:
    TextFormat = _tagged(
        ("~text", TextPlain),
        ("~json_object", JsonObjectFormat),
        ("~json_schema", JsonSchemaFormat),
        error="unsupported_format",
    )


class TextConfig(_Model):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # accepted, not passed on


class ReasoningConfig(_Model):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None  # accepted: byok returns what the model gives
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


# -- the body ------------------------------------------------------------------------------------------


class ResponsesBody(BaseModel):
    """A `POST /v1/responses` body; fields the SDK knows but byok does not use are in `model_extra`."""

    model_config = ConfigDict(extra="allow", frozen=True, strict=True, allow_inf_nan=False)

    model: str = Field(min_length=1, max_length=200)
    input: Input | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: int | None = Field(default=None, ge=1, le=rules.MAX_TOKENS)
    temperature: float | None = Field(default=None, ge=rules.TEMPERATURE[0], le=rules.TEMPERATURE[1])
    top_p: float | None = Field(default=None, ge=rules.TOP_P[0], le=rules.TOP_P[1])
    reasoning: ReasoningConfig | None = None
    text: TextConfig | None = None
    metadata: dict[str, str] | None = Field(default=None, max_length=16)
    user: str | None = Field(default=None, max_length=512)
    stream: bool | None = None
    store: bool | None = None
    # Refused by the parser (stateless byok), typed loosely so the refusal names them, not their shape.
    previous_response_id: Any = None
    conversation: Any = None
    background: bool | None = None
    prompt: Any = None
    top_logprobs: int | None = Field(default=None, ge=0, le=20)
    include: list[str] | None = None
