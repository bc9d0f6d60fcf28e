"""Fake upstream answers and small helpers for tests that drive `BYOKHandler` (shared by the handler,
budget, catalog and shared-state tests; a test module never imports another test module).

The URLs are the providers' real endpoints, answered by respx in the tests; the bodies are the
providers' documented shapes.
"""

from __future__ import annotations

import json
from typing import Any

from asgiref.sync import sync_to_async

from byok import registry
from byok.models import UsageRecord
from byok.providers.types import ChatRequest, Message

__all__ = [
    "ANSWER",
    "STREAM",
    "UPSTREAM",
    "OPENAI",
    "ANTHROPIC",
    "DEEPSEEK",
    "GEMINI",
    "GEMINI_STREAM",
    "openai_json",
    "anthropic_json",
    "gemini_json",
    "sse",
    "openai_chunks",
    "ask",
    "register",
    "collect",
    "text_of",
    "usage_rows",
]

OPENAI = "https://api.openai.com/v1/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
DEEPSEEK = "https://api.deepseek.com/chat/completions"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:generateContent"
GEMINI_STREAM = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.0-flash:streamGenerateContent"


def openai_json(text="Hello!", *, model="gpt-4o", finish="stop", usage=(9, 3)):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": finish}],
        "usage": {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)},
    }


def anthropic_json(text="Bonjour"):
    return {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4",
        "content": [{"type": "text", "text": text}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 12, "output_tokens": 4},
    }


def gemini_json(text="Hallo"):
    return {
        "candidates": [{"content": {"role": "model", "parts": [{"text": text}]}, "finishReason": "STOP"}],
        "usageMetadata": {"promptTokenCount": 5, "candidatesTokenCount": 2, "totalTokenCount": 7},
        "modelVersion": "gemini-2.0-flash",
    }


def sse(*payloads: dict, done=True) -> bytes:
    body = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def openai_chunks(*texts: str, finish="stop") -> bytes:
    chunks: list[dict[str, Any]] = [
        {"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"role": "assistant", "content": ""}}]}
    ]
    chunks += [{"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {"content": t}}]} for t in texts]
    chunks.append({"id": "c1", "model": "gpt-4o", "choices": [{"index": 0, "delta": {}, "finish_reason": finish}]})
    chunks.append(
        {
            "id": "c1",
            "model": "gpt-4o",
            "choices": [],
            "usage": {"prompt_tokens": 5, "completion_tokens": len(texts), "total_tokens": 5 + len(texts)},
        }
    )
    return sse(*chunks)


def ask(text="Hi", **kw) -> ChatRequest:
    return ChatRequest(model=kw.pop("model", ""), messages=(Message(role="user", content=text),), **kw)


async def register(**kw):
    return await sync_to_async(registry.register_provider)(**kw)


async def collect(agen):
    return [event async for event in agen]


def text_of(events) -> str:
    return "".join(e.text for e in events if getattr(e, "kind", "") == "text_delta")


async def usage_rows(handler):
    await handler.flush_usage()
    return await sync_to_async(lambda: list(UsageRecord.objects.order_by("created_at", "id")))()


# A gpt-4o-mini answer, whole and streamed, as the ASGI-level tests (overhead, metrics, hops) serve it.
UPSTREAM = "https://api.openai.com/v1/chat/completions"
ANSWER = {
    "id": "chatcmpl-1",
    "object": "chat.completion",
    "created": 1,
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
STREAM = (
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,'
    b'"delta":{"content":"Hel"},"finish_reason":null}]}\n\n'
    b'data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"gpt-4o-mini","choices":[{"index":0,'
    b'"delta":{"content":"lo!"},"finish_reason":"stop"}]}\n\ndata: [DONE]\n\n'
)
