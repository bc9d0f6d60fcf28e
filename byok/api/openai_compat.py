"""OpenAI's chat-completions dialect in one name: the request schema in, the renderers out.

    parsed = parse_chat_completion(body)   # bytes -> ParsedChat, or InvalidRequest (a 400 naming `param`)
    body = render_completion(...); ChunkWriter(...); error_response(exc)

The request side is the pydantic schema `byok.schemas.openai_chat`; the answer side (completion
objects, stream chunks, errors) is `byok.api.render_openai`. Both are re-exported here for the
view (`byok.api.views_openai`) and the tests, which use both through one name.
"""

from __future__ import annotations

from byok.api.render_openai import (
    DONE,
    SDK_MAX_RETRY_AFTER_S,
    ChunkWriter,
    error_body,
    error_response,
    finish_reason,
    model_list,
    render_completion,
    retry_after_headers,
    usage_dict,
)
from byok.schemas.openai_chat import IGNORED, InvalidRequest, ParsedChat, parse_chat_completion

__all__ = [
    "DONE",
    "IGNORED",
    "ChunkWriter",
    "InvalidRequest",
    "ParsedChat",
    "error_body",
    "error_response",
    "finish_reason",
    "model_list",
    "parse_chat_completion",
    "render_completion",
    "retry_after_headers",
    "usage_dict",
    "SDK_MAX_RETRY_AFTER_S",
]
