"""Problems of the Responses schema -> OpenAI's 400: a message, the `param` it names, a code.

    raise invalid_request(problems(exc)[0])          # byok.schemas.base.Problem -> InvalidRequest

Codes are OpenAI's: `missing_required_parameter`, `invalid_type`, `invalid_value`,
`unsupported_value`, `unknown_parameter`, `invalid_json`. `InvalidRequest` is the OpenAI dialects'
one error (`byok.schemas.openai_chat`).
"""

from __future__ import annotations

from byok.schemas.base import Problem
from byok.schemas.openai_chat import InvalidRequest

__all__ = ["InvalidRequest", "invalid_request"]

# The kinds of the body's tagged unions -> what byok takes instead.
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


def invalid_request(p: Problem) -> InvalidRequest:
    """A schema problem -> OpenAI's 400 naming the parameter."""
    if p.type in ("json_invalid", "json_type"):
        return InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object.", None, "invalid_json"
        )
    param = p.param
    if param is None:
        return InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
    if p.kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param, "missing_required_parameter")
    if p.kind == "unknown":
        return InvalidRequest(f"Unknown parameter: '{param}'.", param, "unknown_parameter")
    if p.kind in _UNSUPPORTED:
        kind = p.input.get("type") if isinstance(p.input, dict) else None
        if not isinstance(kind, str):
            where = f"{param}.type" if isinstance(p.input, dict) else param
            return InvalidRequest(f"Missing or invalid '{where}'.", where, "invalid_type")
        message = _UNSUPPORTED[p.kind].format(kind=kind)
        return InvalidRequest(f"Invalid '{param}.type': {message}.", f"{param}.type", "unsupported_value")
    if p.kind == "type":
        return InvalidRequest(
            f"Invalid type for '{param}': expected {p.phrase.removeprefix('must be ')}.", param, "invalid_type"
        )
    return InvalidRequest(f"Invalid '{param}': it {p.phrase}.", param, "invalid_value")
