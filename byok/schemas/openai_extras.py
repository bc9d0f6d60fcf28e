"""The parts of an OpenAI chat-completions body that carry more than text, as pydantic models.

Used by `byok.schemas.openai_chat`:

- content parts: `image_url` (an http(s) or base64 `data:` URL, `detail`), and `cache_control`
  on text parts (`{"type": "ephemeral", "ttl": "5m" | "1h"}`, as clients send it for Anthropic);
- `response_format`: `text`, `json_object`, `json_schema` (`name`, `schema`, `strict`, `description`);
- on assistant messages, what a previous answer gave the client to send back (see
  `byok.api.render_openai`): `thinking_blocks` (Anthropic thinking with its `signature`, or
  `redacted_thinking` data), `reasoning_content` (DeepSeek), and on tool calls Gemini's
  `extra_content.google.thought_signature`.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, Tag, model_validator

from byok.providers.types import CacheControl, ContentPart, ImagePart, ResponseFormat, TextPart, Thinking
from byok.schemas.base import LooseModel, StrictModel, problem, tag, tagged, typed_required
from byok.schemas.fields import FunctionName

__all__ = [
    "OpenAICacheControl",
    "OpenAIExtraContent",
    "OpenAIImageURLPart",
    "OpenAIResponseFormat",
    "OpenAIThinkingBlock",
    "image_part",
    "parts_or_text",
    "response_format",
    "text_part",
    "thinking_of",
]


class OpenAICacheControl(StrictModel):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h", None] = None  # null in the enum: OpenAPI 3.0 validators refuse a nullable enum's null

    def value(self) -> CacheControl:
        return CacheControl(type=self.type, ttl=self.ttl)


class OpenAIImageURL(LooseModel):
    url: Annotated[str, Field(min_length=1)]
    detail: Literal["auto", "low", "high", None] = None


class OpenAIImageURLPart(LooseModel):
    type: Literal["image_url"]
    image_url: OpenAIImageURL = typed_required()
    cache_control: OpenAICacheControl | None = None

    @model_validator(mode="after")
    def _readable(self) -> OpenAIImageURLPart:
        url = self.image_url.url
        if not url.startswith(("https://", "http://", "data:")):
            raise problem("invalid_value", "must be an http(s) URL or a base64 data: URL", at="image_url")
        try:
            ImagePart.from_url(url)
        except ValueError as exc:
            raise problem("invalid_value", f"is not usable: {exc}", at="image_url") from None
        return self


def image_part(p: OpenAIImageURLPart) -> ImagePart:
    cache = p.cache_control.value() if p.cache_control else None
    return ImagePart.from_url(p.image_url.url, detail=p.image_url.detail, cache_control=cache)


def text_part(text: str, cache_control: OpenAICacheControl | None) -> TextPart:
    return TextPart(text=text, cache_control=cache_control.value() if cache_control else None)


# -- response_format ------------------------------------------------------------------------------


class OpenAITextFormat(StrictModel):
    type: Literal["text"]


class OpenAIJsonObjectFormat(StrictModel):
    type: Literal["json_object"]


class OpenAIJsonSchema(StrictModel):
    name: FunctionName
    description: str | None = None
    schema_: Annotated[dict[str, Any] | None, Field(alias="schema")] = None
    strict: bool | None = None


class OpenAIJsonSchemaFormat(StrictModel):
    type: Literal["json_schema"]
    json_schema: OpenAIJsonSchema


def _format_tag(value: Any) -> str | None:
    kind = value.get("type") if isinstance(value, dict) else None
    return tag(kind) if kind in ("text", "json_object", "json_schema") else None


OpenAIResponseFormat = Annotated[
    Annotated[OpenAITextFormat, Tag(tag("text"))]
    | Annotated[OpenAIJsonObjectFormat, Tag(tag("json_object"))]
    | Annotated[OpenAIJsonSchemaFormat, Tag(tag("json_schema"))],
    tagged(_format_tag, kind="invalid_value", phrase="must be of type text, json_object or json_schema", at="type"),
]


def response_format(
    fmt: OpenAITextFormat | OpenAIJsonObjectFormat | OpenAIJsonSchemaFormat | None,
) -> ResponseFormat | None:
    if fmt is None or isinstance(fmt, OpenAITextFormat):
        return None
    if isinstance(fmt, OpenAIJsonObjectFormat):
        return ResponseFormat(type="json_object")
    spec = fmt.json_schema
    return ResponseFormat(
        type="json_schema", name=spec.name, schema=spec.schema_, description=spec.description, strict=spec.strict
    )


# -- what answers gave the client to send back -----------------------------------------------------


class OpenAIThinkingBlock(LooseModel):
    type: Literal["thinking", "redacted_thinking"]
    thinking: str | None = None
    signature: str | None = None
    data: str | None = None

    @model_validator(mode="after")
    def _complete(self) -> OpenAIThinkingBlock:
        # Checked while validating, so it is a 400 naming the block (raised later, it was a 500).
        if self.type == "redacted_thinking" and not self.data:
            raise problem("invalid_value", "a redacted_thinking block needs its data", at="data")
        return self

    def value(self) -> Thinking:
        if self.type == "redacted_thinking":
            return Thinking(redacted=self.data or "")
        return Thinking(text=self.thinking or "", signature=self.signature)


class OpenAIGoogleExtra(LooseModel):
    thought_signature: str | None = None


class OpenAIExtraContent(LooseModel):
    google: OpenAIGoogleExtra | None = None

    @property
    def thought_signature(self) -> str | None:
        return self.google.thought_signature if self.google else None


def thinking_of(blocks: list[OpenAIThinkingBlock] | None, reasoning: str | None) -> tuple[Thinking, ...]:
    """Signed blocks when the client kept them, else the reasoning text (DeepSeek's, which it needs back)."""
    if blocks:
        return tuple(b.value() for b in blocks)
    return (Thinking(text=reasoning),) if reasoning else ()


def parts_or_text(parts: tuple[ContentPart, ...]) -> tuple[ContentPart, ...] | None:
    """The parts when they carry more than text (an image, a cache breakpoint), else None (plain text will do)."""
    if any(isinstance(p, ImagePart) or p.cache_control for p in parts):
        return parts
    return None
