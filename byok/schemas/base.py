"""The pydantic plumbing every dialect's request schema shares: strict base models, tagged unions, problems.

A dialect writes its request body as pydantic v2 models on `StrictModel` (unknown fields refused)
or `LooseModel` (unknown fields ignored), using the shared field types of `byok.schemas.fields`.
Validation failures become `Problem`s, one per bad field, which the dialect turns into its own
error shape (OpenAI: a 400 naming `param`; `/api/chat`: a 422 per field; websocket: `bad_request`):

    try:
        body = MyChat.model_validate_json(raw)
    except ValidationError as exc:
        raise MyError(problems(exc)[0])          # or every problem

`Problem.param` is the field's path as the dialects spell it (`messages[0].content[1].text`);
`Problem.kind` is `missing`, `type`, `unknown` or `value`, or the code a custom rule names;
`Problem.phrase` reads after the field's name ("temperature must be at most 2"). A validator
that checks a whole object but blames one field raises `problem(kind, phrase, at="field")`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, ConfigDict, Discriminator, Field, ValidationError
from pydantic_core import PydanticCustomError

__all__ = [
    "LooseModel",
    "Problem",
    "StrictModel",
    "param_of",
    "problem",
    "problems",
    "tag",
    "tagged",
    "typed_required",
]


class StrictModel(BaseModel):
    """A request object: exact JSON types (no "1" for 1, no true for 1), no NaN, unknown fields refused."""

    model_config = ConfigDict(
        strict=True, extra="forbid", allow_inf_nan=False, json_schema_extra=lambda schema: required_in_schema(schema)
    )


class LooseModel(StrictModel):
    """A request object whose unknown fields are ignored (messages carry fields byok does not use)."""

    model_config = ConfigDict(extra="ignore")


def typed_required(**kwargs: Any) -> Any:
    """A required field whose absence is reported like a wrong type (`type`, not `missing`), as OpenAI does
    for a content part without its text. The OpenAPI schema still lists it as required (`required_in_schema`)."""
    return Field(default=None, validate_default=True, json_schema_extra={"x-required": True}, **kwargs)


def required_in_schema(schema: dict[str, Any]) -> None:
    """Move `typed_required` fields into the object's `required` list (a `json_schema_extra` hook)."""
    for name, prop in schema.get("properties", {}).items():
        if prop.pop("x-required", False):
            prop.pop("default", None)
            schema.setdefault("required", []).append(name)


# -- tagged unions ----------------------------------------------------------------------------------

TAG_MARK = "="  # tags look like `=user`, so `problems` can drop them from error paths
AT_MARK = "@"  # a union's error type `invalid_value@role`: the kind, and the field it blames


def tag(name: str) -> str:
    return f"{TAG_MARK}{name}"


def tagged(pick: Callable[[Any], str | None], *, kind: str, phrase: str, at: str | None = None) -> Discriminator:
    """A union chosen by `pick(value)` (a `tag(...)`, or None when no member fits: a `kind` problem, blamed on
    the field `at` of the object when given)."""
    _CUSTOM.add(kind)
    return Discriminator(pick, custom_error_type=f"{kind}{AT_MARK}{at}" if at else kind, custom_error_message=phrase)


# -- problems ---------------------------------------------------------------------------------------


def problem(kind: str, phrase: str, *, at: str | None = None) -> PydanticCustomError:
    """A custom rule's failure: raise it from a validator (`at`: the field of the object it blames)."""
    _CUSTOM.add(kind)
    return PydanticCustomError(kind, phrase, {"at": at} if at else None)


@dataclass(frozen=True, slots=True)
class Problem:
    param: str | None
    kind: str
    phrase: str
    loc: tuple[str | int, ...]
    type: str  # pydantic's error type
    input: Any


_EXPECTED = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "true or false",
    "list_type": "an array",
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
}


def param_of(loc: tuple[str | int, ...]) -> str | None:
    """`("messages", 0, "content")` -> `messages[0].content`; None for the body itself."""
    out = ""
    for part in loc:
        if part == "[key]":  # pydantic's marker for a dict key: the key names the place well enough
            continue
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else part)
    return out or None


_CUSTOM: set[str] = set()  # the kinds `problem` and `tagged` were given: a dialect's own codes


def _kind(error_type: str) -> str:
    if error_type in ("missing", "type", "unknown", "value") or error_type in _CUSTOM:
        return error_type
    if error_type == "extra_forbidden":
        return "unknown"
    if error_type in _EXPECTED:
        return "type"
    if error_type in ("json_invalid", "json_type"):
        return "json"
    return "value"


def _phrase(error: dict[str, Any]) -> str:
    kind, ctx = error["type"], error.get("ctx") or {}
    if kind == "missing":
        return "is required"
    if kind == "extra_forbidden":
        return "is not a known field"
    if kind in _EXPECTED:
        return f"must be {_EXPECTED[kind]}"
    if kind == "too_long":
        return f"has {ctx.get('actual_length')} items. At most {ctx.get('max_length')} are allowed"
    if kind == "too_short":
        return "must not be empty"
    if kind == "string_too_long":
        return f"must be a string of at most {ctx.get('max_length')} characters"
    msg: str = error["msg"]
    return "must" + msg[len("Input should") :] if msg.startswith("Input should") else msg


def problems(exc: ValidationError) -> list[Problem]:
    """A pydantic ValidationError -> one Problem per bad field, in the order pydantic found them."""
    out = []
    for error in exc.errors(include_url=False):
        loc = tuple(p for p in error["loc"] if not (isinstance(p, str) and p.startswith(TAG_MARK)))
        error_type, _, blamed = error["type"].partition(AT_MARK)
        at: str | None = blamed or (error.get("ctx") or {}).get("at")
        if at:
            loc += (at,)
        out.append(Problem(param_of(loc), _kind(error_type), _phrase(dict(error)), loc, error_type, error.get("input")))
    return out
