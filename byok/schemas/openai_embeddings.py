"""`POST /v1/embeddings` (OpenAI's shape, https://platform.openai.com/docs/api-reference/embeddings/create):
the body -> `EmbeddingRequest` + the provider prefix + encoding. Token arrays (lists of integers) are refused
with a 400 naming `input`: byok routes to providers with different tokenizers, so only text is meaningful."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BeforeValidator, Field, ValidationError

from byok.providers.embeddings import EmbeddingRequest
from byok.schemas.base import StrictModel, problem, problems
from byok.schemas.fields import StoredText
from byok.schemas.openai_errors import invalid_request

__all__ = ["MAX_INPUTS", "OpenAIEmbeddingsRequest", "ParsedEmbeddings", "parse_embeddings"]

MAX_INPUTS = 2048  # OpenAI's limit of inputs per request
EmbeddingText = Annotated[StoredText, Field(min_length=1, max_length=200_000)]


def _text_or_texts(value: Any) -> Any:
    """A string is a list of one; token arrays (integers, lists of integers) are refused by name."""
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and value and all(isinstance(v, int | list) for v in value):
        raise problem("unsupported_value", "token arrays are not supported: send text")
    return value


class OpenAIEmbeddingsRequest(StrictModel):
    """The body of `POST /v1/embeddings`."""

    model: Annotated[str, Field(min_length=1, max_length=256)]
    input: Annotated[
        list[EmbeddingText],
        BeforeValidator(_text_or_texts, json_schema_input_type=EmbeddingText | list[EmbeddingText]),
        Field(min_length=1, max_length=MAX_INPUTS),
    ]
    dimensions: Annotated[int, Field(ge=1, le=65536)] | None = None
    encoding_format: Literal["float", "base64"] = "float"
    user: Annotated[str, Field(max_length=256)] | None = None


@dataclass(frozen=True, slots=True)
class ParsedEmbeddings:
    request: EmbeddingRequest  # model as sent: `<provider>/<model>` or bare, routed like chat
    encoding_format: str


def parse_embeddings(body: bytes | str) -> ParsedEmbeddings:
    """A `POST /v1/embeddings` body -> ParsedEmbeddings; InvalidRequest (400 naming the param) when invalid."""
    try:
        parsed = OpenAIEmbeddingsRequest.model_validate_json(body)
    except ValidationError as exc:
        raise invalid_request(problems(exc)[0]) from None
    req = EmbeddingRequest(
        model=parsed.model, inputs=tuple(parsed.input), dimensions=parsed.dimensions, user=parsed.user
    )
    return ParsedEmbeddings(req, parsed.encoding_format)
