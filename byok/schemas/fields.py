"""Field types every dialect's request schema shares, each carrying one rule of `byok.schemas.rules`.

    class MyChat(StrictModel):
        model: StoredText | None = None         # no control characters (it is stored)
        temperature: Temperature | None = None  # 0-2, a JSON number
        max_tokens: MaxTokens | None = None     # 1-rules.MAX_TOKENS, a JSON integer
        stop: Stop | None = None                # a string or at most rules.MAX_STOP strings
        messages: Messages[MyMessage]           # 1-rules.MAX_MESSAGES items

Content text (`content_text`, `join_parts`) refuses control characters other than tab and line
breaks, and text parts are joined with `rules.PART_SEPARATOR`. The constraints are declared
(`Field(ge=..., max_length=...)`), so the OpenAPI schema generated from the models states them.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Annotated, Any, TypeVar

from pydantic import AfterValidator, BeforeValidator, Field

from byok.schemas import rules
from byok.schemas.base import problem

__all__ = [
    "FUNCTION_NAME",
    "FunctionName",
    "MaxTokens",
    "Messages",
    "Stop",
    "StoredText",
    "Temperature",
    "TopP",
    "content_text",
    "stored_text",
    "join_text",
    "stop_tuple",
]

FUNCTION_NAME = r"^[A-Za-z0-9_-]{1,64}$"


def stored_text(value: str) -> str:
    found = rules.stored_text_problem(value)
    if found:
        raise problem("invalid_value", found)
    return value


def content_text(value: str) -> str:
    """Message text: refused when it holds control characters other than tab and line breaks."""
    found = rules.content_problem(value)
    if found:
        raise problem("invalid_value", found)
    return value


def join_text(parts: Iterable[str]) -> str:
    """Text parts -> one message text (`rules.join_parts`), checked as content."""
    return content_text(rules.join_parts(parts))


def _one_or_many(value: Any) -> Any:
    return [value] if isinstance(value, str) else value


StoredText = Annotated[str, AfterValidator(stored_text)]
Temperature = Annotated[float, Field(ge=rules.TEMPERATURE[0], le=rules.TEMPERATURE[1])]
TopP = Annotated[float, Field(ge=rules.TOP_P[0], le=rules.TOP_P[1])]
MaxTokens = Annotated[int, Field(ge=1, le=rules.MAX_TOKENS)]
FunctionName = Annotated[str, Field(pattern=FUNCTION_NAME)]
# A string or a list of strings; empty strings are dropped by `stop_tuple`.
Stop = Annotated[
    list[str], BeforeValidator(_one_or_many, json_schema_input_type=str | list[str]), Field(max_length=rules.MAX_STOP)
]

T = TypeVar("T")
Messages = Annotated[list[T], Field(min_length=1, max_length=rules.MAX_MESSAGES)]


def stop_tuple(stop: list[str] | None) -> tuple[str, ...]:
    return tuple(s for s in stop or () if s)
