"""OpenAI's 400 for the chat-completions schema: a problem -> `InvalidRequest(message, param, code)`.

    raise invalid_request(problems(exc)[0])          # byok.schemas.base.Problem -> InvalidRequest

Codes and messages are OpenAI's (`missing_required_parameter`, `invalid_type`, `invalid_value`,
`unknown_parameter`, `unsupported_value`, `empty_array`, `invalid_json` ...), so the official SDK
raises its `BadRequestError` naming the parameter. `InvalidRequest` is the error of every OpenAI-shaped
dialect (chat completions here, Responses in `byok.schemas.responses_errors`).
"""

from __future__ import annotations

from byok.schemas import rules
from byok.schemas.base import Problem

__all__ = ["InvalidRequest", "invalid_request"]


class InvalidRequest(Exception):
    """The request body is not a valid chat completion request: a 400 naming `param`."""

    def __init__(self, message: str, param: str | None = None, code: str = "invalid_value") -> None:
        super().__init__(message)
        self.message, self.param, self.code = message, param, code


_CODES = {
    "missing": "missing_required_parameter",
    "type": "invalid_type",
    "value": "invalid_value",
    "unknown": "unknown_parameter",
}
# Parameters whose every problem is reported at the parameter itself, with its own code and message.
_WHOLE: dict[str, tuple[str | None, str | None]] = {
    "stop": (None, None),
    "n": ("unsupported_value", "Invalid 'n': byok returns one choice; n must be 1."),
}
_RANGES = {"temperature": rules.TEMPERATURE, "top_p": rules.TOP_P}


def invalid_request(p: Problem) -> InvalidRequest:
    """A schema problem -> OpenAI's 400: the parameter, its code, a message naming both."""
    if p.type == "json_invalid":
        return InvalidRequest(
            "We could not parse the JSON body of your request. Send a JSON object.", None, "invalid_json"
        )
    if p.param is None:
        return InvalidRequest("The request body must be a JSON object.", None, "invalid_json")
    param, code, root = p.param, _CODES.get(p.kind, p.kind), p.loc[0]
    if root in _WHOLE:
        own_code, message = _WHOLE[str(root)]
        param, code = str(root), own_code or code
        if message:
            return InvalidRequest(message, param, code)
    if p.kind == "missing":
        return InvalidRequest(f"Missing required parameter: '{param}'.", param, code)
    if p.kind == "unknown":
        if len(p.loc) > 1:  # an unknown field inside an object: name the object
            param = param.rsplit(".", 1)[0]
            return InvalidRequest(f"Unrecognized field in '{param}': {p.loc[-1]}", param, code)
        return InvalidRequest(f"Unrecognized request argument supplied: {param}", param, code)
    if root == "model":
        code = "invalid_value"
    if p.kind == "type":
        return InvalidRequest(f"Invalid type for '{param}': expected {p.phrase.removeprefix('must be ')}.", param, code)
    if param in _RANGES and p.type in ("greater_than_equal", "less_than_equal"):
        low, high = _RANGES[param]
        return InvalidRequest(f"Invalid '{param}': {p.input} is not between {low:g} and {high:g}.", param, code)
    if param == "messages" and p.type in ("too_short", "too_long"):
        if p.type == "too_short":
            return InvalidRequest(
                "Invalid 'messages': empty array. Expected an array with minimum length 1.", param, "empty_array"
            )
        return InvalidRequest(
            f"Invalid 'messages': at most {rules.MAX_MESSAGES} messages.", param, "array_above_max_length"
        )
    if p.type == "too_long":
        return InvalidRequest(f"Invalid '{param}': at most {rules.MAX_STOP} sequences.", param, code)
    return InvalidRequest(f"Invalid '{param}': it {p.phrase}.", param, code)
