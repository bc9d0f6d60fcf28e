"""Websocket frames: the client's `chat.request` parsed into a `ChatRequest`, and the error/notice frames.

Pure: no I/O, no ORM. The consumer (`byok.ws.consumer`) refuses a frame by
raising `FrameError`, which becomes a `chat.error` (the socket stays open).
"""

from __future__ import annotations

from typing import Any

import orjson

from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.schemas import rules

__all__ = ["MAX_ID_CHARS", "MAX_MESSAGES", "FrameError", "error_frame", "notice_frame", "parse_chat_request"]

MAX_MESSAGES = rules.MAX_MESSAGES
MAX_ID_CHARS = 128
ROLES = ("system", "user", "assistant", "tool")


class FrameError(Exception):
    """A client frame the server refuses; becomes a `chat.error` and the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def error_frame(
    rid: Any, code: str, message: str, *, retryable: bool = False, partial: bool = False, **extra: Any
) -> dict:
    return {
        "type": "chat.error",
        "id": rid,
        "code": code,
        "message": message,
        "retryable": retryable,
        "partial": partial,
        **extra,
    }


def notice_frame(event: str, message: str, **extra: Any) -> dict:
    return {"type": "chat.notice", "event": event, "message": message, **extra}


# -- parsing chat.request --------------------------------------------------------------------------


def _bad(message: str) -> FrameError:
    return FrameError("bad_request", message)


def _text(value: Any, where: str) -> str | None:
    if value is None:
        return None
    if isinstance(value, str):
        problem = rules.content_problem(value)
        if problem:
            raise _bad(f"{where}.content {problem}.")
        return value
    if isinstance(value, list):  # OpenAI content parts: keep the text ones
        parts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f'{where}: content parts must be {{"type": "text", "text": ...}}.')
            parts.append(part["text"])
        return _text(rules.join_parts(parts), where)
    raise _bad(f"{where}: content must be a string.")


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise _bad(f"{where}: tool_calls must be a list.")
    calls = []
    for call in value:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"{where}: each tool call needs a function name.")
        arguments = fn.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        calls.append(ToolCall(id=call.get("id"), name=fn["name"], arguments=arguments))
    return tuple(calls)


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("messages must be a non-empty list.")
    if len(value) > MAX_MESSAGES:
        raise _bad(f"At most {MAX_MESSAGES} messages.")
    out = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise _bad(f"{where}: role must be one of {', '.join(ROLES)}.")
        for field in ("tool_call_id", "name"):
            if m.get(field) is not None and not isinstance(m[field], str):
                raise _bad(f"{where}: {field} must be a string.")
        out.append(
            Message(
                role=m["role"],
                content=_text(m.get("content"), where),
                tool_calls=_tool_calls(m.get("tool_calls"), where),
                tool_call_id=m.get("tool_call_id"),
                name=m.get("name"),
            )
        )
    return tuple(out)


def _tools(value: Any) -> tuple[Tool, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise _bad("tools must be a list.")
    tools = []
    for tool in value:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad("Each tool needs a function name.")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise _bad(f"Tool {fn['name']}: parameters must be a JSON schema object.")
        tools.append(Tool(name=fn["name"], description=str(fn.get("description") or ""), parameters=params))
    return tuple(tools)


def _number(frame: dict, field: str, low: float, high: float) -> float | None:
    value = frame.get(field)
    if value is None:
        return None
    if rules.number_problem(value, low, high):
        raise _bad(f"{field} must be a number from {low:g} to {high:g}.")
    return float(value)


def _string(frame: dict, field: str, limit: int) -> str | None:
    value = frame.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(f"{field} must be a string of at most {limit} characters.")
    problem = rules.stored_text_problem(value)
    if problem:
        raise _bad(f"{field} {problem}.")
    return value


def parse_chat_request(frame: dict) -> tuple[ChatRequest, str | None]:
    """A `chat.request` frame -> (ChatRequest, provider name or None); raises FrameError."""
    max_tokens = frame.get("max_tokens")
    if max_tokens is not None and rules.int_problem(max_tokens):
        raise _bad(f"max_tokens must be an integer from 1 to {rules.MAX_TOKENS}.")
    stop = frame.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or len(stop) > rules.MAX_STOP or not all(isinstance(s, str) and s for s in stop)
    ):
        raise _bad(f"stop must be a string or a list of at most {rules.MAX_STOP} strings.")
    choice = frame.get("tool_choice")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        if not choice:
            raise _bad("tool_choice must be auto, none, required or a function name.")
    elif choice is not None and not isinstance(choice, str):
        raise _bad("tool_choice must be auto, none, required or a function name.")
    req = ChatRequest(
        model=_string(frame, "model", 200) or "",
        messages=_messages(frame.get("messages")),
        tools=_tools(frame.get("tools")),
        tool_choice=choice,
        temperature=_number(frame, "temperature", *rules.TEMPERATURE),
        top_p=_number(frame, "top_p", *rules.TOP_P),
        max_tokens=max_tokens,
        stop=tuple(stop or ()),
        stream=True,
    )
    return req, _string(frame, "provider", 64)
