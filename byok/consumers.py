"""The chat websocket at `/ws/chat/`: `BYOKHandler.stream()` over JSON frames.

A thin layer: it authenticates the socket, turns `chat.request` frames into
`ChatRequest`s, runs each as its own task over the handler's stream, and
turns the stream's events into frames. Every frame is a JSON object with a
`type`; every frame about a request carries that request's client-chosen `id`.

Client -> server
    {"type": "auth", "token": "<DRF token>"}                  only without a session cookie / Authorization header
    {"type": "chat.request", "id": "r1", "messages": [{"role": "user", "content": "Hi"}],
     "provider": "openai", "model": "gpt-4o", "temperature": 0.2, "top_p": 1, "max_tokens": 200,
     "stop": ["\\n\\n"], "tools": [...], "tool_choice": "auto"}    (all but id and messages optional)
    {"type": "chat.cancel", "id": "r1"}

Server -> client
    chat.ready      {"user", "limits": {...}}                  once authenticated
    chat.delta      {"id", "text"} and/or "reasoning" / "refusal" (several deltas may arrive merged)
    chat.tool_call  {"id", "index", "tool_call_id", "name", "arguments"}  first fragment names the call;
                    later ones carry only `index` and more `arguments` text
    chat.done       {"id", "finish_reason", "usage", "provider", "model", "latency_ms", "ttft_ms",
                     "attempts", "failover_ms", "request_id"}                              terminal
    chat.error      {"id", "code", "message", "retryable", "partial"}                    terminal
    chat.notice     {"event", "message", ...}                  not about one request: a stop, a revoked key,
                                                               a cancel for an id that is not running

Every accepted request ends with exactly one terminal frame, `chat.done` or
`chat.error`. A cancelled request ends with `chat.error` code `cancelled`
(`partial` says whether tokens had been sent); one stopped by an admin with
`stopped`; one whose provider had a key revoked with `key_revoked`. A frame
the server rejects gets a `chat.error` with the id it carried (null when it
had none) and the socket stays open: `bad_frame` (not a JSON object, binary),
`frame_too_large` (over `MAX_FRAME_BYTES`), `unknown_type`, `bad_request`
(missing or invalid fields; a request refused so never started), `duplicate_id`
(an id still running: that earlier request goes on), `too_many_requests` (over
`MAX_IN_FLIGHT` running on this socket), `unauthenticated`. Frames above
daphne's own limit (1 MiB) are cut off by daphne, which closes the socket.

Authentication: a session cookie or an `Authorization: Token|Bearer` header
at the handshake (see `byok.ws_auth`), or an `auth` frame within
`AUTH_TIMEOUT_S`. Close code 4401 ends a socket whose credentials were wrong
or that did not authenticate in time, after a `chat.error` saying which.

Across processes: each authenticated socket joins the channel-layer groups
`byok.user.<id>` and `byok.all` (Redis with `REDIS_URL`, so every server
process is reached). `broadcast_stop()` (the `ws_stop` management command)
stops running requests; revoking a key (any path that records a `key.revoke`
audit event) stops running requests routed to that key's provider. Both send
a `chat.notice` first.
"""

from __future__ import annotations

import asyncio
import logging
import math
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from asgiref.sync import async_to_sync
from channels.generic.websocket import AsyncWebsocketConsumer
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import transaction
from django.db.models.signals import post_save
from django.dispatch import receiver

from byok.gateway.handler import get_handler
from byok.models import ApiKey, AuditEvent
from byok.providers.types import ChatRequest, Message, StreamDone, StreamEvent, StreamFailed, StreamStarted, Tool, ToolCall
from byok.ws_auth import user_for_token

__all__ = [
    "ALL_GROUP",
    "CLOSE_UNAUTHENTICATED",
    "ChatConsumer",
    "FrameError",
    "Outbox",
    "abroadcast_stop",
    "broadcast_key_revoked",
    "broadcast_stop",
    "parse_chat_request",
    "user_group",
]

log = logging.getLogger("byok.ws")

CLOSE_UNAUTHENTICATED = 4401
ALL_GROUP = "byok.all"

DEFAULTS = {
    "AUTH_TIMEOUT_S": 5.0,  # an unauthenticated socket is closed after this
    "MAX_FRAME_BYTES": 256 * 1024,  # a bigger client frame is refused (the socket stays open)
    "MAX_IN_FLIGHT": 8,  # running requests per socket
    "OUTBOX_HIGH_WATER": 512 * 1024,  # characters waiting for a slow socket before streams pause
}
MAX_MESSAGES = 1000
MAX_ID_CHARS = 128
ROLES = ("system", "user", "assistant", "tool")


def ws_setting(name: str) -> Any:
    """`settings.BYOK_WS[name]`, else the default (read at connect time, so tests can override it)."""
    return {**DEFAULTS, **getattr(settings, "BYOK_WS", {})}[name]


def user_group(user_id: int) -> str:
    return f"byok.user.{user_id}"


# -- frames ----------------------------------------------------------------------------------


class FrameError(Exception):
    """A client frame the server refuses; becomes a `chat.error` and the socket stays open."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code, self.message = code, message


def error_frame(rid: Any, code: str, message: str, *, retryable: bool = False, partial: bool = False, **extra: Any) -> dict:
    return {"type": "chat.error", "id": rid, "code": code, "message": message, "retryable": retryable, "partial": partial, **extra}


def notice_frame(event: str, message: str, **extra: Any) -> dict:
    return {"type": "chat.notice", "event": event, "message": message, **extra}


def _event_frame(rid: str, event: StreamEvent) -> dict | None:
    kind = event.kind
    if kind == "text_delta":
        return {"type": "chat.delta", "id": rid, "text": event.text or ""}
    if kind == "reasoning_delta":
        return {"type": "chat.delta", "id": rid, "reasoning": event.text or ""}
    if kind == "refusal_delta":
        return {"type": "chat.delta", "id": rid, "refusal": event.text or ""}
    if kind == "tool_call_start":
        return {"type": "chat.tool_call", "id": rid, "index": event.index, "tool_call_id": event.tool_call_id,
                "name": event.name, "arguments": event.arguments or ""}
    if kind == "tool_call_delta":
        return {"type": "chat.tool_call", "id": rid, "index": event.index, "arguments": event.arguments or ""}
    return None  # usage, finish and meta are summed up in chat.done


def _done_frame(rid: str, done: StreamDone) -> dict:
    return {
        "type": "chat.done", "id": rid, "finish_reason": done.finish_reason, "usage": done.usage.to_dict(),
        "provider": done.provider, "model": done.model, "latency_ms": round(done.latency_ms, 1),
        "ttft_ms": round(done.ttft_ms, 1) if done.ttft_ms is not None else None,
        "attempts": len(done.attempts), "failover_ms": round(done.failover_ms, 1), "request_id": done.request_id,
    }


def _failed_frame(rid: str, failed: StreamFailed) -> dict:
    error = failed.error.to_dict()
    extra = {k: error[k] for k in ("retry_after", "provider") if error.get(k) is not None}
    return error_frame(rid, error["code"], error["message"], retryable=bool(error.get("retryable")),
                       partial=failed.partial, request_id=failed.request_id, **extra)


# -- parsing chat.request --------------------------------------------------------------------------


def _bad(message: str) -> FrameError:
    return FrameError("bad_request", message)


def _text(value: Any, where: str) -> str | None:
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, list):  # OpenAI content parts: keep the text ones
        parts = []
        for part in value:
            if not isinstance(part, dict) or part.get("type") != "text" or not isinstance(part.get("text"), str):
                raise _bad(f"{where}: content parts must be {{\"type\": \"text\", \"text\": ...}}.")
            parts.append(part["text"])
        return "".join(parts)
    raise _bad(f"{where}: content must be a string.")


def _tool_calls(value: Any, where: str) -> tuple[ToolCall, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise _bad(f"{where}: tool_calls must be a list.")
    calls = []
    for call in value:
        fn = call.get("function", call) if isinstance(call, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str):
            raise _bad(f"{where}: each tool call needs a function name.")
        arguments = fn.get("arguments", "{}")
        if not isinstance(arguments, str):
            arguments = orjson.dumps(arguments).decode()
        calls.append(ToolCall(id=call.get("id"), name=fn["name"], arguments=arguments))
    return tuple(calls)


def _messages(value: Any) -> tuple[Message, ...]:
    if not isinstance(value, list) or not value:
        raise _bad("messages must be a non-empty list.")
    if len(value) > MAX_MESSAGES:
        raise _bad(f"At most {MAX_MESSAGES} messages.")
    out = []
    for i, m in enumerate(value):
        where = f"messages[{i}]"
        if not isinstance(m, dict) or m.get("role") not in ROLES:
            raise _bad(f"{where}: role must be one of {', '.join(ROLES)}.")
        for field in ("tool_call_id", "name"):
            if m.get(field) is not None and not isinstance(m[field], str):
                raise _bad(f"{where}: {field} must be a string.")
        out.append(Message(role=m["role"], content=_text(m.get("content"), where),
                           tool_calls=_tool_calls(m.get("tool_calls"), where),
                           tool_call_id=m.get("tool_call_id"), name=m.get("name")))
    return tuple(out)


def _tools(value: Any) -> tuple[Tool, ...]:
    if value in (None, []):
        return ()
    if not isinstance(value, list):
        raise _bad("tools must be a list.")
    tools = []
    for tool in value:
        fn = tool.get("function", tool) if isinstance(tool, dict) else None
        if not isinstance(fn, dict) or not isinstance(fn.get("name"), str) or not fn["name"]:
            raise _bad("Each tool needs a function name.")
        params = fn.get("parameters") or {"type": "object", "properties": {}}
        if not isinstance(params, dict):
            raise _bad(f"Tool {fn['name']}: parameters must be a JSON schema object.")
        tools.append(Tool(name=fn["name"], description=str(fn.get("description") or ""), parameters=params))
    return tuple(tools)


def _number(frame: dict, field: str, low: float, high: float) -> float | None:
    value = frame.get(field)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or not low <= value <= high:
        raise _bad(f"{field} must be a number from {low} to {high}.")
    return float(value)


def _string(frame: dict, field: str, limit: int) -> str | None:
    value = frame.get(field)
    if value is None or value == "":
        return None
    if not isinstance(value, str) or len(value) > limit:
        raise _bad(f"{field} must be a string of at most {limit} characters.")
    return value


def parse_chat_request(frame: dict) -> tuple[ChatRequest, str | None]:
    """A `chat.request` frame -> (ChatRequest, provider name or None); raises FrameError."""
    max_tokens = frame.get("max_tokens")
    if max_tokens is not None and (isinstance(max_tokens, bool) or not isinstance(max_tokens, int) or not 1 <= max_tokens <= 10_000_000):
        raise _bad("max_tokens must be a positive integer.")
    stop = frame.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (not isinstance(stop, list) or len(stop) > 16 or not all(isinstance(s, str) and s for s in stop)):
        raise _bad("stop must be a string or a list of strings.")
    choice = frame.get("tool_choice")
    if isinstance(choice, dict):
        choice = (choice.get("function") or {}).get("name") if isinstance(choice.get("function"), dict) else None
        if not choice:
            raise _bad("tool_choice must be auto, none, required or a function name.")
    elif choice is not None and not isinstance(choice, str):
        raise _bad("tool_choice must be auto, none, required or a function name.")
    req = ChatRequest(
        model=_string(frame, "model", 200) or "", messages=_messages(frame.get("messages")), tools=_tools(frame.get("tools")),
        tool_choice=choice, temperature=_number(frame, "temperature", 0, 2), top_p=_number(frame, "top_p", 0, 1),
        max_tokens=max_tokens, stop=tuple(stop or ()), stream=True,
    )
    return req, _string(frame, "provider", 64)


# -- the outbox: bounded, coalescing send queue ---------------------------------------------------

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


# -- the consumer ------------------------------------------------------------------------------


class ChatConsumer(AsyncWebsocketConsumer):
    """One chat socket: authenticate, then run each `chat.request` as its own task."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user = None
        self.tasks: dict[str, asyncio.Task] = {}  # running requests by client id
        self.providers: dict[str, str | None] = {}  # request id -> the provider it was routed to
        self._stops: dict[str, dict] = {}  # request id -> why it is being stopped (its terminal chat.error)
        self.partial: set[str] = set()  # request ids that have sent tokens
        self._all_tasks: set[asyncio.Task] = set()
        self._deadline: asyncio.Task | None = None
        self.outbox: Outbox | None = None
        self.max_frame = self.max_in_flight = 0

    # -- connection ----------------------------------------------------------------------------

    async def connect(self) -> None:
        self.max_frame = int(ws_setting("MAX_FRAME_BYTES"))
        self.max_in_flight = int(ws_setting("MAX_IN_FLIGHT"))
        await self.accept()
        self.outbox = Outbox(self._write, high_water=int(ws_setting("OUTBOX_HIGH_WATER")))
        self.outbox.start()
        error = self.scope.get("byok_auth_error")
        if error:
            self._reject("auth_failed", error)
            return
        user = self.scope.get("user")
        if user is not None and user.is_authenticated and user.is_active:
            await self._authenticated(user)
        else:
            self._deadline = asyncio.get_running_loop().create_task(self._auth_deadline(float(ws_setting("AUTH_TIMEOUT_S"))))

    async def _write(self, frame: dict) -> None:
        code = frame.get("__close__")
        if code is not None:
            await self.close(code)
        else:
            await self.send(text_data=orjson.dumps(frame).decode())

    async def _authenticated(self, user) -> None:
        self.user = user
        if self._deadline is not None:
            self._deadline.cancel()
        layer = self.channel_layer
        if layer is not None:
            for group in (user_group(user.pk), ALL_GROUP):
                try:
                    await layer.group_add(group, self.channel_name)
                    self.groups.append(group)
                except Exception:  # the chat works without the cross-process notices
                    log.warning("could not join channel-layer group %s", group, exc_info=True)
        self.outbox.put_nowait({
            "type": "chat.ready", "user": user.get_username(),
            "limits": {"max_in_flight": self.max_in_flight, "max_frame_bytes": self.max_frame},
        })

    async def _auth_deadline(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.user is None:
            self._reject("unauthenticated", f"Not authenticated within {seconds:g} s: connect with a session cookie or an "
                         "Authorization header, or send {\"type\": \"auth\", \"token\": ...} first.")

    def _reject(self, code: str, message: str) -> None:
        self.outbox.put_nowait(error_frame(None, code, message))
        self.outbox.close_after(CLOSE_UNAUTHENTICATED)

    async def websocket_disconnect(self, message: dict) -> None:
        """The client left: cancel every request of this socket (closing their upstream calls), leave the groups."""
        if self._deadline is not None:
            self._deadline.cancel()
        if self.outbox is not None:
            self.outbox.close()
        tasks = list(self._all_tasks)
        for task in tasks:
            task.cancel()
        if tasks:
            await asyncio.wait(tasks, timeout=10)
        for group in self.groups:
            try:
                await self.channel_layer.group_discard(group, self.channel_name)
            except Exception:
                log.warning("could not leave channel-layer group %s", group, exc_info=True)
        self.groups = []
        await super().websocket_disconnect(message)

    # -- client frames ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        frame = None
        try:
            frame = self._decode(text_data, bytes_data)
            kind = frame.get("type")
            if kind == "auth":
                await self._on_auth(frame)
            elif self.user is None:
                raise FrameError("unauthenticated", "Authenticate first: send {\"type\": \"auth\", \"token\": ...}.")
            elif kind == "chat.request":
                self._on_request(frame)
            elif kind == "chat.cancel":
                self._on_cancel(frame)
            else:
                raise FrameError("unknown_type", f"Unknown frame type {kind!r}: use chat.request or chat.cancel.")
        except FrameError as exc:
            rid = frame.get("id") if isinstance(frame, dict) and isinstance(frame.get("id"), str) else None
            self.outbox.put_nowait(error_frame(rid, exc.code, exc.message))

    def _decode(self, text_data: str | None, bytes_data: bytes | None) -> dict:
        if text_data is None:
            raise FrameError("bad_frame", "Binary frames are not supported: send JSON text.")
        if len(text_data) > self.max_frame or (len(text_data) * 4 > self.max_frame and len(text_data.encode()) > self.max_frame):
            raise FrameError("frame_too_large", f"Frames are limited to {self.max_frame} bytes.")
        try:
            frame = orjson.loads(text_data)
        except orjson.JSONDecodeError as exc:
            raise FrameError("bad_frame", f"Not valid JSON: {exc}.") from None
        if not isinstance(frame, dict):
            raise FrameError("bad_frame", "A frame must be a JSON object with a type.")
        return frame

    async def _on_auth(self, frame: dict) -> None:
        if self.user is not None:
            raise FrameError("already_authenticated", "This socket is already authenticated.")
        user = await user_for_token(frame.get("token"))
        if user is None:
            self._reject("auth_failed", "That token is not valid.")
            return
        await self._authenticated(user)

    def _on_request(self, frame: dict) -> None:
        rid = frame.get("id")
        if not isinstance(rid, str) or not rid or len(rid) > MAX_ID_CHARS:
            raise FrameError("bad_request", f"chat.request needs an id: a string of 1-{MAX_ID_CHARS} characters.")
        if rid in self.tasks:
            raise FrameError("duplicate_id", f"A request with id {rid!r} is still running on this socket.")
        if len(self.tasks) >= self.max_in_flight:
            self.outbox.put_nowait(error_frame(rid, "too_many_requests",
                                               f"At most {self.max_in_flight} requests may run at once on one socket.", retryable=True))
            return
        req, provider = parse_chat_request(frame)
        task = asyncio.get_running_loop().create_task(self._run(rid, req, provider))
        self.tasks[rid] = task
        self._all_tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(rid, t))

    def _on_cancel(self, frame: dict) -> None:
        rid = frame.get("id")
        if not isinstance(rid, str):
            raise FrameError("bad_request", "chat.cancel needs the id of a running request.")
        if not self._stop(rid, "cancelled", "Cancelled by the client.", retryable=False):
            self.outbox.put_nowait(notice_frame("cancel_ignored", f"No request with id {rid!r} is running.", id=rid))

    def _stop(self, rid: str, code: str, message: str, *, retryable: bool) -> bool:
        task = self.tasks.get(rid)
        if task is None or rid in self._stops:
            return False
        self._stops[rid] = {"code": code, "message": message, "retryable": retryable}
        task.cancel()
        return True

    # -- one request --------------------------------------------------------------------------------

    async def _run(self, rid: str, req: ChatRequest, provider: str | None) -> None:
        """Stream one request into frames; its terminal frame is queued as soon as the handler gives it.

        The handler's stream is read to its end (not closed at the terminal
        event), so it records usage as finished, not cancelled. A cancel or a
        disconnect throws CancelledError into the stream, which closes its
        upstream response at once.
        """
        partial = False
        stream = get_handler().stream(req, provider=provider, user_id=self.user.pk, interface="websocket")
        try:
            async for event in stream:
                if isinstance(event, StreamStarted):
                    self.providers[rid] = event.provider  # who serves it, for a key-revoke notice
                elif isinstance(event, StreamDone):
                    self._end(rid, _done_frame(rid, event))
                elif isinstance(event, StreamFailed):
                    self._end(rid, _failed_frame(rid, event))
                else:
                    frame = _event_frame(rid, event)
                    if frame is not None:
                        partial = True
                        self.partial.add(rid)
                        await self.outbox.put(frame)
        except asyncio.CancelledError:
            pass  # the done callback sends the terminal frame
        except Exception:
            log.exception("websocket request %s failed", rid)
            if self.tasks.get(rid) is asyncio.current_task():  # not after its terminal frame
                self._end(rid, error_frame(rid, "internal_error", "byok failed to handle this request.", partial=partial))
        finally:
            await stream.aclose()

    def _task_done(self, rid: str, task: asyncio.Task) -> None:
        """A request task ended: if it sent no terminal frame (cancelled, stopped), send that one now."""
        self._all_tasks.discard(task)
        if self.tasks.get(rid) is task:
            stop = self._stops.get(rid) or {"code": "cancelled", "message": "Cancelled.", "retryable": False}
            self._end(rid, error_frame(rid, stop["code"], stop["message"], retryable=stop["retryable"], partial=rid in self.partial))

    def _end(self, rid: str, terminal: dict) -> None:
        """Send the request's one terminal frame and free its id (before the upstream is closed)."""
        self.tasks.pop(rid, None)
        self.providers.pop(rid, None)
        self._stops.pop(rid, None)
        self.partial.discard(rid)
        self.outbox.put_nowait(terminal)

    # -- channel-layer events (from any process) ---------------------------------------------------

    async def byok_stop(self, event: dict) -> None:
        reason = event.get("reason") or "Stopped by an administrator."
        running = list(self.tasks)
        self.outbox.put_nowait(notice_frame("stopped", reason, stopped=running))
        for rid in running:
            self._stop(rid, "stopped", reason, retryable=False)

    async def byok_key_revoked(self, event: dict) -> None:
        provider = event.get("provider") or ""
        hit = [rid for rid in self.tasks if self.providers.get(rid) == provider]
        message = f"A key of provider {provider!r} was revoked" + ("; its running requests were stopped." if hit else ".")
        self.outbox.put_nowait(notice_frame("key_revoked", message, provider=provider, key_hint=event.get("key_hint"), stopped=hit))
        for rid in hit:
            self._stop(rid, "key_revoked", f"A key of provider {provider!r} was revoked; send the request again.", retryable=True)


# -- broadcasting (any process, through the channel layer) ------------------------------------------


async def _group_send(group: str, message: dict) -> bool:
    layer = get_channel_layer()
    if layer is None:
        return False
    try:
        await layer.group_send(group, message)
    except Exception:
        log.warning("could not send %s to channel-layer group %s", message.get("type"), group, exc_info=True)
        return False
    return True


async def abroadcast_stop(user_id: int | None = None, reason: str = "") -> bool:
    """Stop the running requests of every socket (or of one user's sockets), on every server process."""
    group = user_group(user_id) if user_id is not None else ALL_GROUP
    return await _group_send(group, {"type": "byok.stop", "reason": reason or "Stopped by an administrator."})


def broadcast_stop(user_id: int | None = None, reason: str = "") -> bool:
    """`abroadcast_stop()` from synchronous code (views, admin actions, management commands)."""
    return async_to_sync(abroadcast_stop)(user_id, reason)


def broadcast_key_revoked(provider: str, key_hint: str | None) -> bool:
    """Tell every socket that a key of `provider` was revoked (they stop requests routed there)."""
    return async_to_sync(_group_send)(ALL_GROUP, {"type": "byok.key_revoked", "provider": provider, "key_hint": key_hint})


@receiver(post_save, sender=AuditEvent, dispatch_uid="byok.consumers.key_revoked")
def _on_audit_event(sender, instance: AuditEvent, created: bool, **kwargs: Any) -> None:
    """Every key revoke is audited exactly once: announce it to the sockets once the change is committed."""
    if not created or instance.action != "key.revoke":
        return
    hint = ApiKey.objects.filter(pk=instance.target_id).values_list("hint", flat=True).first() if instance.target_id.isdigit() else None
    provider = instance.provider_name
    transaction.on_commit(lambda: broadcast_key_revoked(provider, hint))
