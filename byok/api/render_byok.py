"""Stream events -> byok's own SSE events for `POST /api/chat` (`delta`, `tool_call`, `done`, `error`). Pure.

    renderer = ByokStreamRenderer()
    for ev in events: out += renderer.event(ev)   # b"" for events this stream does not show
    out += renderer.done(done)  or  renderer.failed(failed) / renderer.error(exc, request_id=...)

Deltas go out as they come; a tool call is sent whole (name and all its arguments) just before
`done`, so a client never has to stitch argument fragments. `finish_reason` is `tool_calls`
whenever the model called a tool, whatever the provider called it.
"""

from __future__ import annotations

from typing import Any

from byok.api.sse import sse_event
from byok.exceptions import ByokError
from byok.providers.types import StreamDone, StreamEvent, StreamFailed, StreamStarted

__all__ = ["ByokStreamRenderer"]

_DELTA_FIELD = {"text_delta": "text", "reasoning_delta": "reasoning", "refusal_delta": "refusal"}


class ByokStreamRenderer:
    """One stream's SSE bytes; remembers tool calls (sent whole at the end) and whether tokens went out."""

    def __init__(self) -> None:
        self.calls: dict[int, dict[str, Any]] = {}
        self.sent = False

    def event(self, ev: StreamStarted | StreamEvent) -> bytes:
        """A delta's bytes; b"" for what this dialect does not show (StreamStarted: headers carry it)."""
        if isinstance(ev, StreamStarted):
            return b""
        field = _DELTA_FIELD.get(ev.kind)
        if field is not None:
            self.sent = True
            return sse_event("delta", {field: ev.text})
        if ev.kind == "tool_call_start":
            self.calls[ev.index or 0] = {"id": ev.tool_call_id, "name": ev.name, "arguments": []}
        elif ev.kind == "tool_call_delta" and (ev.index or 0) in self.calls:
            self.calls[ev.index or 0]["arguments"].append(ev.arguments or "")
        return b""  # usage, finish, meta: told by done()

    def done(self, done: StreamDone) -> bytes:
        out = b"".join(
            sse_event("tool_call", {"index": i, "id": c["id"], "name": c["name"], "arguments": "".join(c["arguments"])})
            for i, c in sorted(self.calls.items())
        )
        return out + sse_event(
            "done",
            {
                "id": done.request_id,
                "finish_reason": "tool_calls" if self.calls and done.finish_reason == "stop" else done.finish_reason,
                "usage": done.usage.to_dict(),
                "provider": done.provider,
                "model": done.model,
                "key_hint": done.key_hint,
                "attempts": done.attempts,
                "latency_ms": round(done.latency_ms, 2),
                "failover_ms": round(done.failover_ms, 2),
                "ttft_ms": None if done.ttft_ms is None else round(done.ttft_ms, 2),
            },
        )

    def failed(self, failed: StreamFailed) -> bytes:
        return self.error(failed.error, request_id=failed.request_id, partial=failed.partial)

    def error(self, exc: ByokError, *, request_id: str | None = None, partial: bool = True) -> bytes:
        return sse_event(
            "error", {**exc.to_dict(), "status": exc.status_code, "partial": partial or self.sent, "id": request_id}
        )
