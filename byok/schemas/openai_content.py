"""The content of OpenAI chat messages: a string or an array of parts, as pydantic types (for `openai_chat`).

What validation leaves: the text (parts joined with a newline), or, when the parts carry more
than text (an `image_url`, a `cache_control` breakpoint), byok's `ContentPart`s for the provider.
User messages take text and image parts; system, tool and function messages text parts;
assistant messages text and refusal parts (always joined).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Annotated, Any, Literal

from pydantic import AfterValidator, Tag

from byok.providers.types import ContentPart
from byok.schemas.base import LooseModel, tag, tagged, typed_required
from byok.schemas.fields import join_text
from byok.schemas.openai_extras import OpenAICacheControl, OpenAIImageURLPart, image_part, parts_or_text, text_part

__all__ = ["AssistantContent", "OpenAIRefusalPart", "OpenAITextPart", "TextContent", "UserContent"]


class OpenAITextPart(LooseModel):
    type: Literal["text"] = typed_required()
    text: str = typed_required()
    cache_control: OpenAICacheControl | None = None


class OpenAIRefusalPart(LooseModel):
    type: Literal["refusal"]
    refusal: str = typed_required()


def _part_tag(allowed: tuple[str, ...]):
    def pick(value: Any) -> str | None:
        kind = value.get("type") if isinstance(value, dict) else None
        if kind in allowed:
            return tag(kind)
        return None if isinstance(kind, str) else tag("text")  # no type: OpenAITextPart says what is wrong

    return pick


_UNSUPPORTED = "is a kind of content part byok does not support; send text or image_url"
UserParts = list[
    Annotated[
        Annotated[OpenAITextPart, Tag(tag("text"))] | Annotated[OpenAIImageURLPart, Tag(tag("image_url"))],
        tagged(_part_tag(("text", "image_url")), kind="unsupported_content", phrase=_UNSUPPORTED, at="type"),
    ]
]
TextParts = list[
    Annotated[
        OpenAITextPart,
        Tag(tag("text")),
        tagged(_part_tag(("text",)), kind="unsupported_content", phrase="is not a text part", at="type"),
    ]
]
AssistantParts = list[
    Annotated[
        Annotated[OpenAITextPart, Tag(tag("text"))] | Annotated[OpenAIRefusalPart, Tag(tag("refusal"))],
        tagged(_part_tag(("text", "refusal")), kind="unsupported_content", phrase=_UNSUPPORTED, at="type"),
    ]
]


def _content_tag(value: Any) -> str | None:
    return tag("text") if isinstance(value, str) else tag("parts") if isinstance(value, list) else None


def _as_text(content: str | list[OpenAITextPart | OpenAIRefusalPart]) -> str:
    if isinstance(content, str):
        return join_text((content,))
    return join_text(p.text if isinstance(p, OpenAITextPart) else p.refusal for p in content)


def _as_content(content: str | list[OpenAITextPart | OpenAIImageURLPart]) -> str | tuple[ContentPart, ...]:
    """Text, or the parts when they carry more than text (images, cache breakpoints) for the provider."""
    if isinstance(content, str):
        return join_text((content,))
    parts = tuple(
        image_part(p) if isinstance(p, OpenAIImageURLPart) else text_part(join_text((p.text,)), p.cache_control)
        for p in content
    )
    rich = parts_or_text(parts)
    return rich if rich is not None else join_text(p.text for p in content if isinstance(p, OpenAITextPart))


_CONTENT = tagged(_content_tag, kind="type", phrase="must be a string or an array of content parts")
if TYPE_CHECKING:  # what validation leaves: the text, parts joined (or kept when they carry more)
    UserContent = str | tuple[ContentPart, ...]
    TextContent = str | tuple[ContentPart, ...]
    AssistantContent = str
else:
    UserContent = Annotated[
        Annotated[str, Tag(tag("text"))] | Annotated[UserParts, Tag(tag("parts"))],
        _CONTENT,
        AfterValidator(_as_content),
    ]
    TextContent = Annotated[
        Annotated[str, Tag(tag("text"))] | Annotated[TextParts, Tag(tag("parts"))],
        _CONTENT,
        AfterValidator(_as_content),
    ]
    AssistantContent = Annotated[
        Annotated[str, Tag(tag("text"))] | Annotated[AssistantParts, Tag(tag("parts"))],
        _CONTENT,
        AfterValidator(_as_text),
    ]
