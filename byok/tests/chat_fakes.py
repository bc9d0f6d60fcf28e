"""Fake upstream answers and readers for the chat endpoints' tests (`/v1/chat/completions`, `/api/chat`
and the dialects built on the same entry): shared by their test modules, which never import each other.
The `chat_handler`, `token` and `api` fixtures are in conftest.
"""

from __future__ import annotations

import asyncio
import json

import httpx
from asgiref.sync import sync_to_async

from byok import registry

__all__ = [
    "OPENAI",
    "DEEPSEEK",
    "ANTHROPIC",
    "USER",
    "SSE",
    "register",
    "openai_json",
    "sse",
    "chunk",
    "USAGE_CHUNK",
    "Pieces",
    "events_of",
]

OPENAI = "https://api.openai.com/v1/chat/completions"
DEEPSEEK = "https://api.deepseek.com/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
USER = {"role": "user", "content": "Hi"}
SSE = {"content-type": "text/event-stream"}


async def register(**kw):
    kw.setdefault("api_key", "sk-test-0123456789abcdef")
    return await sync_to_async(registry.register_provider)(**kw)


def openai_json(text="Hello!", *, tool_calls=None, finish="stop"):
    message = {"role": "assistant", "content": text}
    if tool_calls:
        message["tool_calls"] = tool_calls
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


def sse(*payloads, done=True) -> bytes:
    body = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta, finish=None):
    return {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


USAGE_CHUNK = {
    "id": "c",
    "model": "gpt-4o",
    "choices": [],
    "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7},
}


class Pieces(httpx.AsyncByteStream):
    """A response body in separate reads, optionally waiting forever after some of them."""

    def __init__(self, *pieces: bytes, hang_after: int | None = None) -> None:
        self.pieces, self.hang_after = pieces, hang_after
        self.closed, self.hanging = asyncio.Event(), asyncio.Event()

    async def __aiter__(self):
        for i, piece in enumerate(self.pieces):
            if i == self.hang_after:
                self.hanging.set()
                await asyncio.sleep(3600)
            yield piece

    async def aclose(self):
        self.closed.set()


def events_of(raw: bytes) -> list[tuple[str, dict]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            lines = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((lines["event"], json.loads(lines["data"])))
    return out
