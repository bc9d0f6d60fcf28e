"""Stream events -> websocket frames (`chat.delta`, `chat.tool_call`, `chat.done`, `chat.error`). Pure.

What goes back on the next turn rides on frames that already exist, as added fields: a tool
call's first frame carries Gemini's `thought_signature`, `chat.done` the answer's signed
`thinking` blocks (Anthropic) and its whole `tool_calls` (with their signatures), when present.
"""

from __future__ import annotations

from byok.providers.types import ChatResponse, StreamDone, StreamEvent, StreamFailed
from byok.schemas.carry import thinking_blocks, tool_call_dict
from byok.ws.frames import error_frame

__all__ = ["done_frame", "event_frame", "failed_frame"]


def event_frame(rid: str, event: StreamEvent) -> dict | None:
    kind = event.kind
    if kind == "text_delta":
        return {"type": "chat.delta", "id": rid, "text": event.text or ""}
    if kind == "reasoning_delta":
        return {"type": "chat.delta", "id": rid, "reasoning": event.text or ""}
    if kind == "refusal_delta":
        return {"type": "chat.delta", "id": rid, "refusal": event.text or ""}
    if kind == "tool_call_start":
        return {
            "type": "chat.tool_call",
            "id": rid,
            "index": event.index,
            "tool_call_id": event.tool_call_id,
            "name": event.name,
            "arguments": event.arguments or "",
            **({"thought_signature": event.signature} if event.signature else {}),
        }
    if kind == "tool_call_delta":
        return {"type": "chat.tool_call", "id": rid, "index": event.index, "arguments": event.arguments or ""}
    return None  # usage, finish and meta are summed up in chat.done


def done_frame(rid: str, done: StreamDone, answer: ChatResponse | None = None) -> dict:
    """The terminal frame; `answer` (the stream summed up) adds what the client sends back next turn."""
    carry: dict = {}
    blocks = thinking_blocks(answer.thinking) if answer is not None else []
    if blocks:
        carry["thinking"] = blocks
    if answer is not None and answer.tool_calls:
        carry["tool_calls"] = [tool_call_dict(c) for c in answer.tool_calls]
    return {
        "type": "chat.done",
        "id": rid,
        "finish_reason": done.finish_reason,
        "usage": done.usage.to_dict(),
        "provider": done.provider,
        "model": done.model,
        "latency_ms": round(done.latency_ms, 1),
        "ttft_ms": round(done.ttft_ms, 1) if done.ttft_ms is not None else None,
        "attempts": len(done.attempts),
        "failover_ms": round(done.failover_ms, 1),
        "request_id": done.request_id,
        **carry,
    }


def failed_frame(rid: str, failed: StreamFailed) -> dict:
    error = failed.error.to_dict()
    extra = {k: error[k] for k in ("retry_after", "provider") if error.get(k) is not None}
    return error_frame(
        rid,
        error["code"],
        error["message"],
        retryable=bool(error.get("retryable")),
        partial=failed.partial,
        request_id=failed.request_id,
        **extra,
    )
