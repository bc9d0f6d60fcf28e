"""The structured pieces of a conversation, beyond plain text: part of byok's provider-neutral vocabulary.

Re-exported by `byok.providers.types`; import them from there.

- `TextPart` / `ImagePart`: a message's content when it is more than one string
  (`Message.parts`); either may carry `CacheControl` (Anthropic prompt caching).
- `Thinking`: a reasoning block of an earlier assistant turn (or of an answer),
  kept with the provider's proof so the next turn is accepted: Anthropic's
  `signature` (or a `redacted_thinking` block's opaque `redacted` data),
  DeepSeek's `reasoning_content` (text only).
- `ResponseFormat`: structured output (OpenAI `response_format`, Responses
  `text.format`), translated per provider.

    Message(role="user", parts=(TextPart(text="What is this?"), ImagePart(url="https://x/cat.png")))
    Message(role="assistant", thinking=(Thinking(text="...", signature="EqQB..."),), tool_calls=...)
"""

from __future__ import annotations

import base64
import binascii
import re
from dataclasses import dataclass
from typing import Any, Literal

__all__ = [
    "REASONING_EFFORTS",
    "CacheControl",
    "ContentPart",
    "ImagePart",
    "ReasoningEffort",
    "ResponseFormat",
    "TextPart",
    "Thinking",
]

# OpenAI's reasoning_effort values ("none" turns reasoning off where a model allows it).
ReasoningEffort = Literal["none", "minimal", "low", "medium", "high"]
REASONING_EFFORTS: tuple[str, ...] = ("none", "minimal", "low", "medium", "high")

_DATA_URL = re.compile(r"^data:(?P<type>[\w.+-]+/[\w.+-]+)?(?:;[^,;]*?)*?;base64,(?P<data>.*)$", re.S)


@dataclass(frozen=True, kw_only=True, slots=True)
class CacheControl:
    """An Anthropic prompt-cache breakpoint: `{"type": "ephemeral", "ttl": "5m" | "1h"}`.

    https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching
    Providers that cache by themselves (OpenAI, DeepSeek, Gemini's implicit cache) ignore it.
    """

    type: str = "ephemeral"
    ttl: str | None = None

    def to_anthropic(self) -> dict[str, Any]:
        out: dict[str, Any] = {"type": self.type}
        if self.ttl:
            out["ttl"] = self.ttl
        return out


@dataclass(frozen=True, kw_only=True, slots=True)
class TextPart:
    """A piece of text content."""

    text: str
    cache_control: CacheControl | None = None
    type: Literal["text"] = "text"


@dataclass(frozen=True, kw_only=True, slots=True)
class ImagePart:
    """An image: a URL (`url`), or inline base64 `data` with its `media_type` (e.g. image/png).

    `ImagePart.from_url()` turns a `data:` URL into the inline form, so adapters
    only ever see a fetchable URL or inline bytes. `detail` is OpenAI's hint.
    """

    url: str | None = None
    data: str | None = None
    media_type: str | None = None
    detail: str | None = None
    cache_control: CacheControl | None = None
    type: Literal["image"] = "image"

    @classmethod
    def from_url(cls, url: str, *, detail: str | None = None, cache_control: CacheControl | None = None) -> ImagePart:
        """An http(s) URL kept as is; a base64 `data:` URL decoded into `data` + `media_type`.

        Raises ValueError for a `data:` URL that is not base64 or not valid base64.
        """
        if not url.startswith("data:"):
            return cls(url=url, detail=detail, cache_control=cache_control)
        match = _DATA_URL.match(url)
        if not match:
            raise ValueError("a data: URL must be base64 (data:<media type>;base64,<data>)")
        data = match["data"].strip()
        try:
            base64.b64decode(data, validate=True)
        except (binascii.Error, ValueError):
            raise ValueError("the data: URL's base64 data is not valid base64") from None
        return cls(data=data, media_type=match["type"] or None, detail=detail, cache_control=cache_control)

    @property
    def data_url(self) -> str:
        """The image as a URL: its own, or a `data:` URL built from the inline data."""
        if self.url:
            return self.url
        return f"data:{self.media_type or 'application/octet-stream'};base64,{self.data or ''}"


ContentPart = TextPart | ImagePart


@dataclass(frozen=True, kw_only=True, slots=True)
class Thinking:
    """One reasoning block of an assistant turn.

    `signature` is the provider's proof of an Anthropic thinking block: it must
    come back unchanged on the next turn. A `redacted_thinking` block has no
    text, only `redacted` (its opaque `data`). DeepSeek reasoning has text only.
    Adapters send back what their provider accepts and drop the rest (Anthropic
    drops unsigned text, which no other provider could have signed for it).
    """

    text: str = ""
    signature: str | None = None
    redacted: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class ResponseFormat:
    """What shape the answer must take.

    `text` (the default, nothing asked), `json_object` (any JSON object), or
    `json_schema`: `schema` (a JSON Schema) under `name`, `strict` as OpenAI means it.
    """

    type: Literal["text", "json_object", "json_schema"] = "text"
    name: str | None = None
    schema: dict[str, Any] | None = None
    description: str | None = None
    strict: bool | None = None
