"""Writing server-sent events: one `event:`/`data:` block per call, JSON by orjson.

    sse_event("delta", {"text": "Hi"})  # b'event: delta\\ndata: {"text":"Hi"}\\n\\n'

`SSE_HEADERS` are what every byok event stream answers with: no caching and
no buffering by a proxy (nginx honours X-Accel-Buffering), so each event
leaves as soon as it is written.
"""

from __future__ import annotations

from typing import Any

import orjson

__all__ = ["SSE_CONTENT_TYPE", "SSE_HEADERS", "sse_event"]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def sse_event(event: str | None, data: Any) -> bytes:
    """One event. `data` is JSON-encoded (orjson emits no newlines, so it is always one `data:` line)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if b"\n" in payload or b"\r" in payload:
        payload = b"\ndata: ".join(payload.splitlines())
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"
