"""Sending a pre-rendered stream with delays and mid-stream faults.

A wire format renders its answer into a `StreamPlan` of ready bytes; this
module only paces and breaks it. With no delays the whole stream goes out in
one write (the benchmark fast path); with delays, chunk by chunk.
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from devtools.fakeprovider.faults import drop_connection, wait_until_gone
from devtools.fakeprovider.recorder import Recorder
from devtools.fakeprovider.settings import Settings

__all__ = ["MID_STREAM_FAULTS", "StreamPlan", "send_stream"]

MID_STREAM_FAULTS = frozenset({"stream_error", "drop", "stall", "malformed"})


@dataclass(slots=True)
class StreamPlan:
    head: bytes  # sent with the headers (role chunk, message_start, ...)
    chunks: list[bytes]  # one per content chunk: paced by delay_ms, counted for fault_after
    tail: bytes  # finish reason, usage, end marker
    error_frame: bytes  # fault=stream_error: the provider's in-stream error
    malformed_frame: bytes  # fault=malformed: a frame whose JSON does not parse
    content_type: str = "text/event-stream"
    keepalive: bytes = b""  # DeepSeek-style comment frame
    keepalive_every: int = 0
    headers: dict[str, str] = field(default_factory=dict)


async def send_stream(
    request: web.Request, plan: StreamPlan, s: Settings, fault: str, rec: dict[str, Any], recorder: Recorder
) -> web.StreamResponse:
    resp = web.StreamResponse(
        status=200, headers={"Content-Type": plan.content_type, "Cache-Control": "no-cache", **plan.headers}
    )
    recorder.open_streams += 1
    buf: list[bytes] = [plan.head]
    pending = 0  # chunks in buf not yet written

    async def flush() -> None:
        nonlocal pending
        if buf:
            data = b"".join(buf)
            buf.clear()
            await resp.write(data)
            rec["chunks_sent"] += pending
            pending = 0

    try:
        await resp.prepare(request)
        if s.first_delay_ms > 0:
            if plan.keepalive:  # DeepSeek keeps the connection warm while it "thinks"
                buf.append(plan.keepalive)
            await flush()
            await asyncio.sleep(s.first_delay_ms / 1000)
        k = s.mid_stream_k() if fault in MID_STREAM_FAULTS else -1
        delay = s.delay_ms / 1000
        every = plan.keepalive_every if plan.keepalive else 0
        n = len(plan.chunks)
        for i in range(n + 1):  # i == n is the point just before the tail
            if i == k or (i == n and k > n):
                if fault == "malformed":
                    buf.append(plan.malformed_frame)
                elif await _break_stream(request, resp, fault, flush, buf, plan, s, rec, recorder):
                    return resp
            if i == n:
                break
            if delay and i:
                await flush()
                await asyncio.sleep(delay)
            buf.append(plan.chunks[i])
            pending += 1
            if every and (i + 1) % every == 0 and i + 1 < n:
                buf.append(plan.keepalive)
        buf.append(plan.tail)
        await flush()
        await resp.write_eof()
        recorder.finish(rec, "fault" if fault else "completed", 200)
        return resp
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        recorder.finish(rec, "cancelled", 200)
        if isinstance(exc, asyncio.CancelledError):
            raise
        return resp
    finally:
        recorder.open_streams -= 1


async def _break_stream(
    request: web.Request,
    resp: web.StreamResponse,
    fault: str,
    flush: Any,
    buf: list[bytes],
    plan: StreamPlan,
    s: Settings,
    rec: dict[str, Any],
    recorder: Recorder,
) -> bool:
    """Apply stream_error / drop / stall at the fault point; True when the stream is over."""
    if fault == "stream_error":
        buf.append(plan.error_frame)
        await flush()
        await resp.write_eof()
        recorder.finish(rec, "fault", 200)
        return True
    await flush()
    if fault == "stall":
        if await wait_until_gone(request, s.stall_max_s):
            recorder.finish(rec, "cancelled", 200)
            return True
    recorder.finish(rec, "fault", 200)  # drop, or a stall that outlived stall_max_s
    drop_connection(request)
    return True
