"""Stream events -> websocket frames (`chat.delta`, `chat.tool_call`, `chat.done`, `chat.error`). Pure."""

from __future__ import annotations

from byok.providers.types import StreamDone, StreamEvent, StreamFailed
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
        }
    if kind == "tool_call_delta":
        return {"type": "chat.tool_call", "id": rid, "index": event.index, "arguments": event.arguments or ""}
    return None  # usage, finish and meta are summed up in chat.done


def done_frame(rid: str, done: StreamDone) -> dict:
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
