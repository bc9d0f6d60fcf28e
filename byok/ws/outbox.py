"""The outbox: a bounded, coalescing send queue in front of one websocket (see `Outbox`)."""

from __future__ import annotations

import asyncio
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

__all__ = ["Outbox"]

log = logging.getLogger("byok.ws")


_DELTA_RANK = {"reasoning": 0, "text": 1, "refusal": 2}
_FRAME_OVERHEAD = 64  # counted per queued frame on top of its text


def _delta_size(frame: dict) -> int:
    return sum(len(frame.get(f) or "") for f in ("text", "reasoning", "refusal", "arguments")) + _FRAME_OVERHEAD


class Outbox:
    """Frames on their way to one socket: one sender task, deltas merged while the socket is behind.

    Back-pressure, end to end: request tasks never write to the socket
    themselves; they queue frames here and one sender task writes them in
    order. While the sender is waiting on a slow socket (ASGI servers whose
    `send` waits for the transport to drain make it wait), new `chat.delta`
    text for a request is appended to that request's delta still in the
    queue instead of becoming a new frame, and tool-call argument fragments
    likewise; so a slow client gets fewer, bigger frames, never a backlog of
    small ones. What is queued is also bounded: once `high_water` characters
    are waiting, `put()` blocks the request task, which stops reading its
    upstream response; TCP flow control then slows the provider. Terminal
    frames and notices are never blocked or dropped (`put_nowait`). With
    `MAX_IN_FLIGHT` requests per socket, a socket holds at most about
    `high_water` plus one frame per request. (Daphne's `send` returns at once and
    buffers in Twisted; there the bound is the in-flight cap times the
    answers' length, which `max_tokens` limits.)
    """

    def __init__(self, send: Callable[[dict], Awaitable[None]], *, high_water: int) -> None:
        self._send = send
        self.high_water = high_water
        self._queue: deque[dict] = deque()
        self._tail: dict[Any, dict] = {}  # request id -> its last frame still queued (the one to merge into)
        self._size: dict[int, int] = {}
        self.queued_chars = 0
        self._ready = asyncio.Event()
        self._room = asyncio.Event()
        self._room.set()
        self._closed = False
        self._close_code: int | None = None
        self._task: asyncio.Task | None = None

    def start(self) -> None:
        self._task = asyncio.get_running_loop().create_task(self._run())

    def __len__(self) -> int:
        return len(self._queue)

    async def put(self, frame: dict) -> None:
        """Queue a delta, waiting while too much is queued already."""
        while self.queued_chars >= self.high_water and not self._closed:
            self._room.clear()
            await self._room.wait()
        self.put_nowait(frame)

    def put_nowait(self, frame: dict) -> None:
        if self._closed or self._close_code is not None:
            return
        size = _delta_size(frame)
        tail = self._tail.get(frame.get("id")) if frame.get("id") is not None else None
        if tail is not None and self._merge(tail, frame):
            self._size[id(tail)] += size - _FRAME_OVERHEAD
            self.queued_chars += size - _FRAME_OVERHEAD
            return
        self._queue.append(frame)
        self._size[id(frame)] = size
        self.queued_chars += size
        if frame.get("id") is not None:
            self._tail[frame["id"]] = frame
        self._ready.set()

    @staticmethod
    def _merge(tail: dict, frame: dict) -> bool:
        kind = frame["type"]
        if kind != tail["type"]:
            return False
        if kind == "chat.delta":
            have = [f for f in _DELTA_RANK if f in tail]
            new = [f for f in _DELTA_RANK if f in frame]
            if min(_DELTA_RANK[f] for f in new) < max(_DELTA_RANK[f] for f in have):
                return False  # would put this text before text already queued
            for f in new:
                tail[f] = tail.get(f, "") + frame[f]
            return True
        if kind == "chat.tool_call" and "name" not in frame and frame.get("index") == tail.get("index"):
            tail["arguments"] = (tail.get("arguments") or "") + frame["arguments"]
            return True
        return False

    def close_after(self, code: int) -> None:
        """Close the socket with `code` once what is queued has been sent; nothing more is queued."""
        if self._close_code is None:
            self._close_code = code
            self._ready.set()

    async def _run(self) -> None:
        try:
            while True:
                await self._ready.wait()
                while self._queue:
                    frame = self._queue.popleft()
                    if self._tail.get(frame.get("id")) is frame:
                        del self._tail[frame["id"]]
                    self.queued_chars -= self._size.pop(id(frame))
                    if self.queued_chars < self.high_water:
                        self._room.set()
                    await self._send(frame)
                self._ready.clear()
                if self._close_code is not None:
                    await self._send({"__close__": self._close_code})
                    return
        except Exception:  # the socket went away under us: nothing more can be sent
            log.debug("websocket send failed", exc_info=True)
        finally:
            self._shut()

    def _shut(self) -> None:
        self._closed = True
        self._queue.clear()
        self._tail.clear()
        self._size.clear()
        self.queued_chars = 0
        self._room.set()

    def close(self) -> None:
        """Stop sending at once: waiters in `put()` return, nothing more is queued or sent."""
        self._shut()
        if self._task is not None:
            self._task.cancel()
