"""Stream events -> byok's own SSE events for `POST /api/chat` (`delta`, `tool_call`, `done`, `error`). Pure.

    renderer = ByokStreamRenderer()
    for ev in events: out += renderer.event(ev)   # b"" for events this stream does not show
    out += renderer.done(done)  or  renderer.failed(failed) / renderer.error(exc, request_id=...)

Deltas go out as they come; a tool call is sent whole (name and all its arguments) just before
`done`, so a client never has to stitch argument fragments. `finish_reason` is `tool_calls`
whenever the model called a tool, whatever the provider called it. A tool call carries Gemini's
`thought_signature` and `done` the signed `thinking` blocks (Anthropic) when the provider gave
them, to be sent back on the next turn.
"""

from __future__ import annotations

from byok.api.sse import sse_event
from byok.exceptions import ByokError
from byok.providers.collect import ResponseBuilder
from byok.providers.types import StreamDone, StreamEvent, StreamFailed, StreamStarted
from byok.schemas.carry import thinking_blocks, tool_call_dict

__all__ = ["ByokStreamRenderer"]

_DELTA_FIELD = {"text_delta": "text", "reasoning_delta": "reasoning", "refusal_delta": "refusal"}


class ByokStreamRenderer:
    """One stream's SSE bytes; remembers tool calls (sent whole at the end) and whether tokens went out."""

    def __init__(self) -> None:
        self.answer = ResponseBuilder()
        self.sent = False

    def event(self, ev: StreamStarted | StreamEvent) -> bytes:
        """A delta's bytes; b"" for what this dialect does not show (StreamStarted: headers carry it)."""
        if isinstance(ev, StreamStarted):
            return b""
        self.answer.add(ev)
        field = _DELTA_FIELD.get(ev.kind)
        if field is not None:
            self.sent = True
            return sse_event("delta", {field: ev.text})
        return b""  # tool calls (sent whole), usage, finish, meta, signatures: told by done()

    def done(self, done: StreamDone) -> bytes:
        answer = self.answer.response()
        out = b"".join(
            sse_event("tool_call", {"index": i, **tool_call_dict(c)}) for i, c in enumerate(answer.tool_calls)
        )
        blocks = thinking_blocks(answer.thinking)
        finish = done.finish_reason
        return out + sse_event(
            "done",
            {
                "id": done.request_id,
                "finish_reason": "tool_calls" if answer.tool_calls and finish == "stop" else finish,
                **({"thinking": blocks} if blocks else {}),
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
