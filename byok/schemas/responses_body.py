"""The OpenAI Responses request body (`POST /v1/responses`) as pydantic v2 models: shapes and types only.

    body = ResponsesBody.model_validate_json(raw)     # pydantic.ValidationError when it is not one

Shapes follow the official `openai` SDK's `ResponseCreateParams` (the SDK is the judge), on the
shared plumbing of `byok.schemas.base` (strict JSON types, tagged unions, problems) and the rule
types of `byok.schemas.fields`: an error names one union branch, and its path is OpenAI's `param`.

Input items and content parts ignore fields they do not use (`id`, `status`, `annotations`,
`logprobs`, `phase`...), so a client can send the output items of an earlier answer back as input,
as the SDK's own examples do. The body itself refuses unknown fields; the documented ones that
cannot change the answer are declared and ignored. Meaning (what is supported, what maps to what)
lives in `byok.schemas.responses`.
"""

from __future__ import annotations

import functools
import operator
from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import Field, Tag

from byok.schemas import rules
from byok.schemas.base import LooseModel, StrictModel, tag, tagged
from byok.schemas.fields import MaxTokens, StoredText, Temperature, TopP

__all__ = [
    "ResponsesFunctionCallItem",
    "ResponsesFunctionCallOutputItem",
    "ResponsesFunctionTool",
    "ResponsesHostedTool",
    "ResponsesInputImage",
    "ResponsesInputText",
    "ResponsesItemReference",
    "ResponsesJsonObjectFormat",
    "ResponsesJsonSchemaFormat",
    "ResponsesMessageItem",
    "ResponsesOutputText",
    "ResponsesReasoningItem",
    "ResponsesRefusal",
    "ResponsesBody",
    "TextFormat",
    "ResponsesTextPlain",
    "ResponsesToolChoiceFunction",
    "ResponsesUnsupportedPart",
]


def _type_tag(value: Any, default: str | None = None) -> str | None:
    """The tag of an object's `type` (else `default`); None for a non-object or a non-string type."""
    kind = value.get("type", default) if isinstance(value, dict) else getattr(value, "type", None)
    return tag(kind) if isinstance(kind, str) else None


def _shape_tag(value: Any) -> str | None:
    """A string is text, a list a list; anything else fails as neither."""
    return tag("text") if isinstance(value, str) else tag("list") if isinstance(value, list) else None


def _tagged(*members: tuple[str, Any], kind: str, pick: Any = _type_tag) -> Any:
    """A union of `members` (type name, model) chosen by `pick`; an unknown type is a `kind` problem."""
    union = functools.reduce(operator.or_, (Annotated[model, Tag(tag(name))] for name, model in members))
    return Annotated[union, tagged(pick, kind=kind, phrase="has a type byok does not support")]


# -- content parts -----------------------------------------------------------------------------------


class ResponsesInputText(LooseModel):
    type: Literal["input_text"]
    text: str


class ResponsesOutputText(LooseModel):
    type: Literal["output_text"]
    text: str


class ResponsesRefusal(LooseModel):
    type: Literal["refusal"]
    refusal: str


class ResponsesInputImage(LooseModel):
    type: Literal["input_image"]
    image_url: str | None = None
    file_id: str | None = None
    detail: Literal["low", "high", "auto", "original"] | None = None


class ResponsesUnsupportedPart(LooseModel):
    """`input_file`, `input_audio`: recognised, and refused by the parser with a clear message."""

    type: Literal["input_file", "input_audio"]


if TYPE_CHECKING:  # what the tagged unions hold, for the type checker
    Part = ResponsesInputText | ResponsesOutputText | ResponsesRefusal | ResponsesInputImage | ResponsesUnsupportedPart
else:
    Part = _tagged(
        ("input_text", ResponsesInputText),
        ("output_text", ResponsesOutputText),
        ("refusal", ResponsesRefusal),
        ("input_image", ResponsesInputImage),
        ("input_file", ResponsesUnsupportedPart),
        ("input_audio", ResponsesUnsupportedPart),
        kind="unsupported_content",
    )
_STRING_OR_LIST = tagged(_shape_tag, kind="type", phrase="must be a string or an array")
Content = Annotated[Annotated[str, Tag(tag("text"))] | Annotated[list[Part], Tag(tag("list"))], _STRING_OR_LIST]

# -- input items -------------------------------------------------------------------------------------


class ResponsesMessageItem(LooseModel):
    type: Literal["message"] = "message"
    role: Literal["user", "assistant", "system", "developer"]
    content: Content


class ResponsesFunctionCallItem(LooseModel):
    type: Literal["function_call"]
    call_id: str = Field(min_length=1, max_length=200)
    name: str = Field(min_length=1, max_length=200)
    arguments: str
    id: str | None = None


class ResponsesFunctionCallOutputItem(LooseModel):
    type: Literal["function_call_output"]
    call_id: str = Field(min_length=1, max_length=200)
    output: Content


class ResponsesSummaryText(LooseModel):
    type: Literal["summary_text"]
    text: str


class ResponsesReasoningText(LooseModel):
    type: Literal["reasoning_text"]
    text: str


class ResponsesReasoningItem(LooseModel):
    type: Literal["reasoning"]
    id: str | None = None
    summary: list[ResponsesSummaryText] = []
    content: list[ResponsesReasoningText] | None = None
    encrypted_content: str | None = None


class ResponsesItemReference(LooseModel):
    """An item stored by an earlier response: byok stores none, so the parser refuses it."""

    type: Literal["item_reference"]
    id: str


if TYPE_CHECKING:
    Item = (
        ResponsesMessageItem
        | ResponsesFunctionCallItem
        | ResponsesFunctionCallOutputItem
        | ResponsesReasoningItem
        | ResponsesItemReference
    )
else:
    Item = _tagged(
        ("message", ResponsesMessageItem),
        ("function_call", ResponsesFunctionCallItem),
        ("function_call_output", ResponsesFunctionCallOutputItem),
        ("reasoning", ResponsesReasoningItem),
        ("item_reference", ResponsesItemReference),
        kind="unsupported_item",
        pick=lambda v: _type_tag(v, "message"),
    )
Input = Annotated[
    Annotated[str, Tag(tag("text"))] | Annotated[list[Item], Field(max_length=rules.MAX_MESSAGES), Tag(tag("list"))],
    _STRING_OR_LIST,
]

# -- tools, tool choice, text format, reasoning -------------------------------------------------------


class ResponsesFunctionTool(LooseModel):
    type: Literal["function"]
    name: str
    description: str | None = None
    parameters: dict[str, Any] | None = None
    strict: bool | None = None


class ResponsesHostedTool(LooseModel):
    """OpenAI's built-in tools: recognised, and refused by the parser (byok serves function tools only)."""

    type: str


HOSTED = (
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
    Tool = ResponsesFunctionTool | ResponsesHostedTool
else:
    Tool = _tagged(
        ("function", ResponsesFunctionTool), *((name, ResponsesHostedTool) for name in HOSTED), kind="unsupported_tool"
    )


class ResponsesToolChoiceFunction(LooseModel):
    type: Literal["function"]
    name: str


if TYPE_CHECKING:
    ToolChoice = Literal["none", "auto", "required"] | ResponsesToolChoiceFunction
else:
    ToolChoice = _tagged(
        ("mode", Literal["none", "auto", "required"]),
        ("function", ResponsesToolChoiceFunction),
        kind="unsupported_tool_choice",
        pick=lambda v: tag("mode") if isinstance(v, str) else _type_tag(v),
    )


class ResponsesTextPlain(LooseModel):
    type: Literal["text"]


class ResponsesJsonObjectFormat(LooseModel):
    type: Literal["json_object"]


class ResponsesJsonSchemaFormat(LooseModel):
    type: Literal["json_schema"]
    name: str = Field(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_-]+$")
    schema_: dict[str, Any] = Field(alias="schema")
    description: str | None = None
    strict: bool | None = None


if TYPE_CHECKING:
    TextFormat = ResponsesTextPlain | ResponsesJsonObjectFormat | ResponsesJsonSchemaFormat
else:
    TextFormat = _tagged(
        ("text", ResponsesTextPlain),
        ("json_object", ResponsesJsonObjectFormat),
        ("json_schema", ResponsesJsonSchemaFormat),
        kind="unsupported_format",
    )


class ResponsesTextConfig(LooseModel):
    format: TextFormat | None = None
    verbosity: Literal["low", "medium", "high"] | None = None  # accepted, not passed on


class ResponsesReasoningConfig(LooseModel):
    effort: Literal["none", "minimal", "low", "medium", "high", "xhigh"] | None = None
    summary: Literal["auto", "concise", "detailed"] | None = None  # accepted: byok returns what the model gives
    generate_summary: Literal["auto", "concise", "detailed"] | None = None


# -- the body ------------------------------------------------------------------------------------------


class ResponsesBody(StrictModel):
    """A `POST /v1/responses` body as byok accepts it; any field not declared here is a 400 `unknown`."""

    model: Annotated[StoredText, Field(min_length=1, max_length=200)]
    input: Input | None = None
    instructions: str | None = None
    tools: list[Tool] | None = None
    tool_choice: ToolChoice | None = None
    parallel_tool_calls: bool | None = None
    max_output_tokens: MaxTokens | None = None
    temperature: Temperature | None = None
    top_p: TopP | None = None
    reasoning: ResponsesReasoningConfig | None = None
    text: ResponsesTextConfig | None = None
    metadata: (
        Annotated[
            dict[Annotated[StoredText, Field(max_length=64)], Annotated[StoredText, Field(max_length=512)]],
            Field(max_length=16),
        ]
        | None
    ) = None
    user: Annotated[StoredText, Field(max_length=512)] | None = None
    stream: bool | None = None
    store: bool | None = None
    # Refused by the parser (byok is stateless), typed loosely so the refusal names them, not their shape.
    previous_response_id: Any = None
    conversation: Any = None
    background: bool | None = None
    prompt: Any = None
    top_logprobs: Annotated[int, Field(ge=0, le=20)] | None = None
    # Accepted and ignored: they cannot change what the answer looks like (`byok.schemas.responses.IGNORED`).
    include: list[str] | None = None
    max_tool_calls: Any = None
    prompt_cache_key: Any = None
    prompt_cache_retention: Any = None
    prompt_cache_options: Any = None
    safety_identifier: Any = None
    service_tier: Any = None
    stream_options: Any = None
    truncation: Any = None
    context_management: Any = None
