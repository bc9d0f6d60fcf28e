"""Pydantic validation errors of the Responses schema -> OpenAI's 400: a message, the `param` it names, a code.

    raise from_validation(exc)          # pydantic.ValidationError -> InvalidRequest

`param` is the error's location in OpenAI's notation (`input[2].content[0].text`): the "~" tags of
`byok.schemas.responses_body`'s unions are dropped. Codes are OpenAI's: `missing_required_parameter`,
`invalid_type`, `invalid_value`, `unsupported_value`, `invalid_json`.
"""

from __future__ import annotations

from typing import Any

import pydantic

__all__ = ["InvalidRequest", "from_validation", "param_of"]


class InvalidRequest(Exception):
    """The body is not a valid Responses request: a 400 naming `param`, in OpenAI's error shape."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


_TYPE_NAMES = {
    "string_type": "a string",
    "int_type": "an integer",
    "float_type": "a number",
    "bool_type": "a boolean",
    "dict_type": "an object",
    "model_type": "an object",
    "list_type": "an array",
    "literal_error": None,
}
_UNSUPPORTED = {
    "unsupported_item": "input items of type {kind!r} are not supported by byok (it takes message, function_call,"
    " function_call_output and reasoning items)",
    "unsupported_content": "content parts of type {kind!r} are not supported by byok (it takes input_text,"
    " input_image, output_text and refusal)",
    "unsupported_tool": "tools of type {kind!r} are not supported by byok (it takes function tools)",
    "unsupported_tool_choice": "tool_choice of type {kind!r} is not supported by byok (use none, auto, required"
    " or a function)",
    "unsupported_format": "text.format of type {kind!r} is not supported (use text, json_object or json_schema)",
}


def param_of(loc: tuple[Any, ...]) -> str | None:
    """A pydantic location as OpenAI's `param`: `input[2].content[0].text` (union tags dropped)."""
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        elif isinstance(part, str) and not part.startswith("~"):
            out += f".{part}" if out else part
    return out or None


def from_validation(exc: pydantic.ValidationError) -> InvalidRequest:
    err = exc.errors(include_url=False)[0]
    kind, loc, value = err["type"], err["loc"], err.get("input")
    param = param_of(loc)
    if kind == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object.", None, "invalid_json"
        )
    if param is None:
        return InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
    if kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if kind in _UNSUPPORTED:
        tag = value.get("type") if isinstance(value, dict) else None
        if tag is None:
            where = f"{param}.type" if isinstance(value, dict) else param
            return InvalidRequest(f"Missing or invalid '{where}'.", where, "invalid_type")
        message = _UNSUPPORTED[kind].format(kind=tag)
        return InvalidRequest(f"Invalid '{param}.type': {message}.", f"{param}.type", "unsupported_value")
    if kind == "list_type" and loc and loc[-1] == "~list":
        return InvalidRequest(f"Invalid type for '{param}': expected a string or an array.", param, "invalid_type")
    if kind in _TYPE_NAMES and _TYPE_NAMES[kind]:
        return InvalidRequest(f"Invalid type for '{param}': expected {_TYPE_NAMES[kind]}.", param, "invalid_type")
    return InvalidRequest(f"Invalid '{param}': {err['msg']}.", param, "invalid_value")
