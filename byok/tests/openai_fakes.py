"""What the Responses tests send and what a faked OpenAI upstream answers (plain helpers, no fixtures).

completion("Hi")                          # a chat.completion body
sse(chunk({"content": "Hi"}), chunk({}, "stop"))   # a chat.completion.chunk stream, [DONE] last
WEATHER                                   # a Responses function tool, as the SDK's users write it
"""

from __future__ import annotations

import json
from typing import Any

import httpx

WEATHER: dict[str, Any] = {
    "type": "function",
    "name": "get_weather",
    "description": "The weather in a city.",
    "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    "strict": True,
}


def completion(text: str | None = "Hello!", *, tool_calls: list | None = None, finish: str = "stop") -> dict:
    message = {"role": "assistant", "content": text, **({"tool_calls": tool_calls} if tool_calls else {})}
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


def chunk(delta: dict, finish: str | None = None) -> dict:
    return {"id": "c", "model": "gpt-4o", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


def sse(*payloads: dict, done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


class Pieces(httpx.AsyncByteStream):
    """A response body in separate reads."""

    def __init__(self, *pieces: bytes) -> None:
        self.pieces = pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece
