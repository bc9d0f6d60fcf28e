"""Websocket frames: the client's `chat.request` parsed into a `ChatRequest`, and the error/notice frames.

Pure: no I/O, no ORM. The consumer (`byok.ws.consumer`) refuses a frame by
raising `FrameError`, which becomes a `chat.error` (the socket stays open).
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from byok.providers.types import ChatRequest
from byok.schemas import rules
from byok.schemas.base import problems
from byok.schemas.ws_chat import ROLES, ChatRequestFrame

__all__ = [
    "MAX_ID_CHARS",
    "MAX_MESSAGES",
    "ROLES",
    "FrameError",
    "error_frame",
    "notice_frame",
    "parse_chat_request",
]

MAX_MESSAGES = rules.MAX_MESSAGES
MAX_ID_CHARS = 128


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


def parse_chat_request(frame: dict) -> tuple[ChatRequest, str | None]:
    """A `chat.request` frame -> (ChatRequest, provider name or None); FrameError (`bad_request`) naming the
    first bad field (the schema: `byok.schemas.ws_chat`)."""
    try:
        return ChatRequestFrame.model_validate(frame).to_request()
    except ValidationError as exc:
        p = problems(exc)[0]
        raise FrameError("bad_request", f"{p.param or 'The frame'} {p.phrase}.") from None
