"""Writing server-sent events: one `event:`/`data:` block per call, JSON by orjson.

    sse_event("delta", {"text": "Hi"})  # b'event: delta\\ndata: {"text":"Hi"}\\n\\n'

`SSE_HEADERS` are what every byok event stream answers with: no caching and
no buffering by a proxy (nginx honours X-Accel-Buffering), so each event
leaves as soon as it is written. `keep_alive()` sends something while the
provider is silent, so proxies do not cut a stream that is only thinking.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson

__all__ = ["KEEPALIVE_COMMENT", "SSE_CONTENT_TYPE", "SSE_HEADERS", "keep_alive", "sse_event"]

SSE_CONTENT_TYPE = "text/event-stream; charset=utf-8"
SSE_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
# An SSE comment: every SSE client skips it (the openai SDK's decoder drops lines starting with ":").
KEEPALIVE_COMMENT = b": keep-alive\n\n"


def sse_event(event: str | None, data: Any) -> bytes:
    """One event. `data` is JSON-encoded (orjson emits no newlines, so it is always one `data:` line)."""
    payload = data if isinstance(data, bytes) else orjson.dumps(data)
    if b"\n" in payload or b"\r" in payload:
        payload = b"\ndata: ".join(payload.splitlines())
    head = b"event: " + event.encode() + b"\n" if event else b""
    return head + b"data: " + payload + b"\n\n"


async def keep_alive(body: AsyncIterator[bytes], ping: Callable[[], bytes], *, every: float) -> AsyncIterator[bytes]:
    """`body`'s chunks, and `ping()` whenever none came for `every` seconds.

    The next chunk is awaited in a task of its own, so a ping never cancels it; closing this
    generator (the client left) cancels that task and closes `body`, which closes the upstream.
    """
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(body))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield ping()
                continue
            task, pending = pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await body.aclose()  # type: ignore[attr-defined]  # an async generator
