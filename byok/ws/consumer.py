"""The chat websocket's consumer at `/ws/chat/`: `BYOKHandler.stream()` over JSON frames.

A thin layer: it authenticates the socket, turns `chat.request` frames into `ChatRequest`s
(`frames`), runs each as its own task over the handler's stream, and turns the stream's events
into frames (`render`), sent through a bounded outbox (`outbox`). A dispatch table by frame type,
orjson as the JSON codec. The protocol (frames both ways, error codes, authentication, cross-process
notices) is described in the package's docstring, `byok.ws`.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings

from byok.gateway.handler import get_handler
from byok.keys.entry import check_model
from byok.keys.grant import Grant, ModelNotAllowed
from byok.keys.secret import looks_like_key
from byok.providers.collect import ResponseBuilder
from byok.providers.types import ChatRequest, StreamDone, StreamFailed, StreamStarted
from byok.ws.auth import Credential, credential_for, user_for_key, user_for_token
from byok.ws.broadcast import ALL_GROUP, user_group
from byok.ws.frames import MAX_ID_CHARS, FrameError, error_frame, notice_frame, parse_chat_request
from byok.ws.outbox import Outbox
from byok.ws.render import done_frame, event_frame, failed_frame

__all__ = ["CLOSE_UNAUTHENTICATED", "DEFAULTS", "ChatConsumer", "ws_setting"]

log = logging.getLogger("byok.ws")

CLOSE_UNAUTHENTICATED = 4401

DEFAULTS = {
    "AUTH_TIMEOUT_S": 5.0,  # an unauthenticated socket is closed after this
    "MAX_FRAME_BYTES": 256 * 1024,  # a bigger client frame is refused (the socket stays open)
    "MAX_IN_FLIGHT": 8,  # running requests per socket
    "OUTBOX_HIGH_WATER": 512 * 1024,  # characters waiting for a slow socket before streams pause
}


def ws_setting(name: str) -> Any:
    """`settings.BYOK_WS[name]`, else the default (read at connect time, so tests can override it)."""
    return {**DEFAULTS, **getattr(settings, "BYOK_WS", {})}[name]


class ChatConsumer(AsyncJsonWebsocketConsumer):
    """One chat socket: authenticate, then run each `chat.request` as its own task."""

    @classmethod
    async def decode_json(cls, text_data: str) -> Any:
        try:
            return orjson.loads(text_data)
        except orjson.JSONDecodeError as exc:
            raise FrameError("bad_frame", f"Not valid JSON: {exc}.") from None

    @classmethod
    async def encode_json(cls, content: Any) -> str:
        return orjson.dumps(content).decode()

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.user: Any = None
        self.credential: Credential | None = None  # re-checked on every chat.request
        self.tasks: dict[str, asyncio.Task] = {}  # running requests by client id
        self.providers: dict[str, str | None] = {}  # request id -> the provider it was routed to
        self._stops: dict[str, dict] = {}  # request id -> why it is being stopped (its terminal chat.error)
        self.partial: set[str] = set()  # request ids that have sent tokens
        self._all_tasks: set[asyncio.Task] = set()
        self._deadline: asyncio.Task | None = None
        self.outbox: Outbox = None  # type: ignore[assignment]  # made by connect(), before any frame
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
            await self._authenticated(user, credential_for(user, self.scope.get("byok_token")))
        else:
            self._deadline = asyncio.get_running_loop().create_task(
                self._auth_deadline(float(ws_setting("AUTH_TIMEOUT_S")))
            )

    async def _write(self, frame: dict) -> None:
        code = frame.get("__close__")
        if code is not None:
            await self.close(code)
        else:
            await self.send_json(frame)

    async def _authenticated(self, user, credential: Credential) -> None:
        self.user, self.credential = user, credential
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
        self.outbox.put_nowait(
            {
                "type": "chat.ready",
                "user": user.get_username(),
                "limits": {"max_in_flight": self.max_in_flight, "max_frame_bytes": self.max_frame},
            }
        )

    async def _auth_deadline(self, seconds: float) -> None:
        await asyncio.sleep(seconds)
        if self.user is None:
            self._reject(
                "unauthenticated",
                f"Not authenticated within {seconds:g} s: connect with a session cookie or an "
                'Authorization header, or send {"type": "auth", "token": ...} first.',
            )

    async def _credential_gone(self) -> None:
        """The token was deleted or the user deactivated: stop every request, say why, close with 4401."""
        message = "This socket's credentials were revoked (token deleted or user deactivated): authenticate again."
        running = [
            task for rid, task in self.tasks.items() if self._stop(rid, "unauthenticated", message, retryable=False)
        ]
        if running:
            await asyncio.wait(running, timeout=10)
        self.user = None
        self._reject("credentials_revoked", message)

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
        self.groups: list[str] = []
        await super().websocket_disconnect(message)

    # -- client frames ---------------------------------------------------------------------------

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None, **kwargs: Any) -> None:
        """Channels' JSON receive, with every refusal a `chat.error` instead of an exception."""
        frame = None
        try:
            if text_data is None:
                raise FrameError("bad_frame", "Binary frames are not supported: send JSON text.")
            if len(text_data) > self.max_frame or (
                len(text_data) * 4 > self.max_frame and len(text_data.encode()) > self.max_frame
            ):
                raise FrameError("frame_too_large", f"Frames are limited to {self.max_frame} bytes.")
            frame = await self.decode_json(text_data)
            await self.receive_json(frame)
        except FrameError as exc:
            rid = frame.get("id") if isinstance(frame, dict) and isinstance(frame.get("id"), str) else None
            self.outbox.put_nowait(error_frame(rid, exc.code, exc.message))

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        if not isinstance(content, dict):
            raise FrameError("bad_frame", "A frame must be a JSON object with a type.")
        kind = content.get("type")
        if kind != "auth" and self.user is None:
            raise FrameError("unauthenticated", 'Authenticate first: send {"type": "auth", "token": ...}.')
        handle = self.DISPATCH.get(kind) if isinstance(kind, str) else None
        if handle is None:
            raise FrameError("unknown_type", f"Unknown frame type {kind!r}: use chat.request or chat.cancel.")
        await handle(self, content)

    async def _on_auth(self, frame: dict) -> None:
        if self.user is not None:
            raise FrameError("already_authenticated", "This socket is already authenticated.")
        token = frame.get("token")
        user = await (
            user_for_key(token) if isinstance(token, str) and looks_like_key(token) else user_for_token(token)
        )
        if user is None:
            self._reject("auth_failed", "That token is not valid.")
            return
        await self._authenticated(user, credential_for(user, token))

    async def _on_request(self, frame: dict) -> None:
        rid = frame.get("id")
        if not isinstance(rid, str) or not rid or len(rid) > MAX_ID_CHARS:
            raise FrameError("bad_request", f"chat.request needs an id: a string of 1-{MAX_ID_CHARS} characters.")
        if rid in self.tasks:
            raise FrameError("duplicate_id", f"A request with id {rid!r} is still running on this socket.")
        try:
            assert self.credential is not None  # authenticated: a chat.request comes after auth
            holds = await self.credential.holds()
        except Exception:  # the database is away: refuse this request, keep the socket
            log.warning("websocket request %s: could not re-check the credential", rid, exc_info=True)
            self.outbox.put_nowait(
                error_frame(
                    rid,
                    "service_unavailable",
                    "byok could not check this socket's credentials just now; send the request again.",
                    retryable=True,
                )
            )
            return
        if not holds:
            await self._credential_gone()
            return
        if len(self.tasks) >= self.max_in_flight:
            self.outbox.put_nowait(
                error_frame(
                    rid,
                    "too_many_requests",
                    f"At most {self.max_in_flight} requests may run at once on one socket.",
                    retryable=True,
                )
            )
            return
        req, provider = parse_chat_request(frame)
        grant = await self.credential.grant()  # a gateway key: its allow-list, before any upstream call
        if grant is not None:
            try:
                await check_model(grant, req.model, provider, lambda: get_handler().route(req, provider))
            except ModelNotAllowed as exc:
                self.outbox.put_nowait(error_frame(rid, exc.code, exc.message))
                return
        task = asyncio.get_running_loop().create_task(self._run(rid, req, provider, grant))
        self.tasks[rid] = task
        self._all_tasks.add(task)
        task.add_done_callback(lambda t: self._task_done(rid, t))

    async def _on_cancel(self, frame: dict) -> None:
        rid = frame.get("id")
        if not isinstance(rid, str):
            raise FrameError("bad_request", "chat.cancel needs the id of a running request.")
        if not self._stop(rid, "cancelled", "Cancelled by the client.", retryable=False):
            self.outbox.put_nowait(notice_frame("cancel_ignored", f"No request with id {rid!r} is running.", id=rid))

    DISPATCH: dict[str, Callable[[ChatConsumer, dict], Awaitable[None]]] = {
        "auth": _on_auth,
        "chat.request": _on_request,
        "chat.cancel": _on_cancel,
    }

    def _stop(self, rid: str, code: str, message: str, *, retryable: bool) -> bool:
        task = self.tasks.get(rid)
        if task is None or rid in self._stops:
            return False
        self._stops[rid] = {"code": code, "message": message, "retryable": retryable}
        task.cancel()
        return True

    # -- one request --------------------------------------------------------------------------------

    async def _run(self, rid: str, req: ChatRequest, provider: str | None, grant: Grant | None = None) -> None:
        """Stream one request into frames; its terminal frame is queued as soon as the handler gives it.

        The handler's stream is read to its end (not closed at the terminal
        event), so it records usage as finished, not cancelled. A cancel or a
        disconnect throws CancelledError into the stream, which closes its
        upstream response at once.
        """
        partial = False
        answer = ResponseBuilder()  # the stream summed up: chat.done carries its signed thinking
        stream = get_handler().stream(req, provider=provider, user_id=self.user.pk, interface="websocket", grant=grant)
        try:
            async for event in stream:
                if isinstance(event, StreamStarted):
                    self.providers[rid] = event.provider  # who serves it, for a key-revoke notice
                elif isinstance(event, StreamDone):
                    self._end(rid, done_frame(rid, event, answer.response()))
                elif isinstance(event, StreamFailed):
                    self._end(rid, failed_frame(rid, event))
                else:
                    answer.add(event)
                    frame = event_frame(rid, event)
                    if frame is not None:
                        partial = True
                        self.partial.add(rid)
                        await self.outbox.put(frame)
        except asyncio.CancelledError:
            pass  # the done callback sends the terminal frame
        except Exception:
            log.exception("websocket request %s failed", rid)
            if self.tasks.get(rid) is asyncio.current_task():  # not after its terminal frame
                self._end(
                    rid, error_frame(rid, "internal_error", "byok failed to handle this request.", partial=partial)
                )
        finally:
            await stream.aclose()

    def _task_done(self, rid: str, task: asyncio.Task) -> None:
        """A request task ended: if it sent no terminal frame (cancelled, stopped), send that one now."""
        self._all_tasks.discard(task)
        if self.tasks.get(rid) is task:
            stop = self._stops.get(rid) or {"code": "cancelled", "message": "Cancelled.", "retryable": False}
            self._end(
                rid,
                error_frame(
                    rid, stop["code"], stop["message"], retryable=stop["retryable"], partial=rid in self.partial
                ),
            )

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

    async def byok_credentials_changed(self, event: dict) -> None:
        """A token of this user was deleted, or the user changed: re-check now, past the caches."""
        if self.credential is None or self.user is None:
            return
        try:
            holds = await self.credential.holds(fresh=True)
        except Exception:  # the database is away: the next chat.request checks again
            log.warning("could not re-check a websocket's credential after a change", exc_info=True)
            return
        if not holds:
            await self._credential_gone()

    async def byok_key_revoked(self, event: dict) -> None:
        provider = event.get("provider") or ""
        hit = [rid for rid in self.tasks if self.providers.get(rid) == provider]
        message = f"A key of provider {provider!r} was revoked" + (
            "; its running requests were stopped." if hit else "."
        )
        self.outbox.put_nowait(
            notice_frame("key_revoked", message, provider=provider, key_hint=event.get("key_hint"), stopped=hit)
        )
        for rid in hit:
            self._stop(
                rid,
                "key_revoked",
                f"A key of provider {provider!r} was revoked; send the request again.",
                retryable=True,
            )
