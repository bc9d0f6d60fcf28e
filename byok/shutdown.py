"""Graceful, bounded shutdown: stop accepting, let requests finish, end the rest with an error, flush usage.

On SIGTERM (or SIGINT) the server stops listening, and `GracefulApp` (ASGI
middleware around everything) drains:

1. new requests on connections still open get a JSON 503 `shutting_down`;
2. requests in flight have `BYOK_SHUTDOWN_GRACE_S` seconds (default 10) to
   finish normally: an HTTP request until its response ends, a websocket until
   every chat it started has its `chat.done` / `chat.error`;
3. what is still running is stopped the way a client disconnect stops it
   (the upstream request is closed and the usage so far recorded), and its
   client gets a terminal error: a JSON 503 if nothing was answered yet, an
   error event on an SSE stream (OpenAI's shape under `/v1/`, byok's `error`
   event elsewhere), a `chat.error` for each open chat on a websocket, which
   is then closed with 4503 (byok's code for "service unavailable": daphne
   only sends 1000 or 3000-4999);
4. queued usage records are written; then the server exits.

`install_daphne_graceful_shutdown()` runs this from daphne's shutdown hook,
which otherwise cancels every application at once, with no grace;
`install_uvicorn_graceful_shutdown()` from uvicorn's, which otherwise waits
for long streams without a bound and closes websockets at once. (granian
manages its workers from Rust: not covered.)
"""

from __future__ import annotations

import asyncio
import json
import logging
import re

import orjson
from django.conf import settings

__all__ = ["GracefulApp", "install_daphne_graceful_shutdown", "install_uvicorn_graceful_shutdown"]

log = logging.getLogger("byok.shutdown")

CODE = "shutting_down"
MESSAGE = "The server is shutting down; retry the request."
CLOSE_SHUTTING_DOWN = 4503
STOP_WAIT_S = 5.0  # after the grace period, how long stopped requests get to write their terminal error
_TERMINAL = re.compile(r'"type":\s*"chat\.(?:done|error)"')
_OUTPUT = re.compile(r'^\{"type":"chat\.(?:delta|tool_call|reasoning)[a-z_]*","id":"((?:[^"\\]|\\.)*)"')


def grace_seconds() -> float:
    return float(getattr(settings, "BYOK_SHUTDOWN_GRACE_S", 10.0))


class InFlight:
    """One HTTP request or websocket being served."""

    __slots__ = ("body_read", "done", "kind", "open_chats", "output", "path", "sse", "started", "stop")

    def __init__(self, kind: str, path: str) -> None:
        self.kind, self.path = kind, path
        self.started = self.done = self.sse = self.body_read = False
        self.stop: asyncio.Future | None = None
        self.open_chats: set[str] = set()  # websocket: chats without a terminal frame yet
        self.output: set[str] = set()  # websocket: chats that have sent output (their error is partial)

    @property
    def busy(self) -> bool:
        if self.kind == "http":
            return not self.done
        return bool(self.open_chats) and not self.done


class GracefulApp:
    """ASGI middleware that tracks what is in flight and drains it on `shutdown()`."""

    def __init__(self, app) -> None:
        self.app = app
        self.inflight: set[InFlight] = set()
        self.draining = False

    async def __call__(self, scope, receive, send):
        kind = scope["type"]
        if kind not in ("http", "websocket"):
            return await self.app(scope, receive, send)
        if self.draining:
            return await self._refuse(kind, send)
        entry = InFlight(kind, scope.get("path", ""))
        self.inflight.add(entry)
        try:
            await self.app(scope, self._receive(entry, receive), self._send(entry, send))
        finally:
            self.inflight.discard(entry)
        if entry.stop is not None and entry.stop.done() and not entry.done:
            await self._terminal(entry, send)

    # -- the wrapped channels ------------------------------------------------------------------

    def _receive(self, entry: InFlight, receive):
        async def wrapped():
            if entry.stop is None:
                entry.stop = asyncio.get_running_loop().create_future()
            if entry.stop.done():
                return self._disconnect(entry)
            if entry.kind == "http" and not entry.body_read:
                # The request body arrives at once: only the long wait after it (Django listening
                # for a disconnect) needs to race the shutdown. One task less per request.
                message = await receive()
                entry.body_read = message["type"] != "http.request" or not message.get("more_body", False)
                return message
            getter = asyncio.ensure_future(receive())
            await asyncio.wait((getter, entry.stop), return_when=asyncio.FIRST_COMPLETED)
            if getter.done():
                message = getter.result()
                if entry.kind == "websocket" and message["type"] == "websocket.receive":
                    self._note_request(entry, message.get("text"))
                return message
            getter.cancel()
            return self._disconnect(entry)

        return wrapped

    @staticmethod
    def _disconnect(entry: InFlight) -> dict:
        if entry.kind == "http":
            return {"type": "http.disconnect"}
        return {"type": "websocket.disconnect", "code": CLOSE_SHUTTING_DOWN}

    @staticmethod
    def _note_request(entry: InFlight, text: str | None) -> None:
        if not text or "chat.request" not in text:
            return
        try:
            frame = json.loads(text)
        except ValueError:
            return
        if isinstance(frame, dict) and frame.get("type") == "chat.request" and isinstance(frame.get("id"), str):
            entry.open_chats.add(frame["id"])

    def _send(self, entry: InFlight, send):
        async def wrapped(message):
            kind = message["type"]
            if entry.done:
                return None  # already ended by the shutdown
            if kind == "http.response.start":
                entry.started = True
                entry.sse = any(
                    k.lower() == b"content-type" and v.startswith(b"text/event-stream")
                    for k, v in message.get("headers", ())
                )
            elif kind == "http.response.body":
                if not message.get("more_body", False):
                    entry.done = True
            elif kind == "websocket.send" and entry.open_chats:
                self._note_frame(entry, message.get("text") or "")
            elif kind == "websocket.accept":
                entry.started = True
            elif kind == "websocket.close":
                entry.done = True
            return await send(message)

        return wrapped

    @staticmethod
    def _note_frame(entry: InFlight, text: str) -> None:
        match = _OUTPUT.match(text)
        if match:
            entry.output.add(match.group(1))
            return
        if _TERMINAL.search(text):
            try:
                rid = json.loads(text).get("id")
            except ValueError:
                return
            entry.open_chats.discard(rid)
            entry.output.discard(rid)

    # -- answers of a server that is stopping -------------------------------------------------------

    async def _refuse(self, kind: str, send) -> None:
        if kind == "websocket":
            await send({"type": "websocket.close", "code": CLOSE_SHUTTING_DOWN})
            return
        await self._json_503(send)

    @staticmethod
    async def _json_503(send) -> None:
        body = orjson.dumps({"code": CODE, "message": MESSAGE, "retryable": True})
        await send(
            {
                "type": "http.response.start",
                "status": 503,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(body)).encode()),
                    (b"connection", b"close"),
                    (b"retry-after", b"1"),
                ],
            }
        )
        await send({"type": "http.response.body", "body": body})

    async def _terminal(self, entry: InFlight, send) -> None:
        """The last word to a client whose request the shutdown stopped."""
        entry.done = True
        try:
            if entry.kind == "websocket":
                if entry.started:
                    for rid in sorted(entry.open_chats):
                        frame = {
                            "type": "chat.error",
                            "id": rid,
                            "code": CODE,
                            "message": MESSAGE,
                            "retryable": True,
                            "partial": rid in entry.output,
                        }
                        await send({"type": "websocket.send", "text": orjson.dumps(frame).decode()})
                await send({"type": "websocket.close", "code": CLOSE_SHUTTING_DOWN})
            elif not entry.started:
                await self._json_503(send)
            elif entry.sse:
                await send({"type": "http.response.body", "body": self._sse_error(entry.path), "more_body": False})
            else:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
        except Exception:  # the client left meanwhile
            log.debug("could not send the shutdown error", exc_info=True)

    @staticmethod
    def _sse_error(path: str) -> bytes:
        if path.startswith("/v1/"):
            error = {"error": {"message": MESSAGE, "type": "server_error", "param": None, "code": CODE}}
            return b"data: " + orjson.dumps(error) + b"\n\ndata: [DONE]\n\n"
        event = {"code": CODE, "message": MESSAGE, "retryable": True, "status": 503, "partial": True}
        return b"event: error\ndata: " + orjson.dumps(event) + b"\n\n"

    # -- the drain ----------------------------------------------------------------------------

    async def shutdown(self, grace: float | None = None) -> None:
        """Drain: refuse new requests, wait up to `grace` for those in flight, stop the rest, flush usage."""
        grace = grace_seconds() if grace is None else grace
        self.draining = True
        loop = asyncio.get_running_loop()
        deadline = loop.time() + grace
        busy = [e for e in self.inflight if e.busy]
        log.info("shutting down: %d request(s) in flight, up to %.0f s to finish", len(busy), grace)
        while busy and loop.time() < deadline:
            await asyncio.sleep(0.05)
            busy = [e for e in self.inflight if e.busy]
        everyone = list(self.inflight)
        if busy:
            log.warning("shutting down: stopping %d request(s) still running after %.0f s", len(busy), grace)
        for entry in everyone:  # idle websockets close too
            if entry.stop is None:
                entry.stop = loop.create_future()
            if not entry.stop.done():
                entry.stop.set_result(None)
        stop_deadline = loop.time() + STOP_WAIT_S
        while self.inflight and loop.time() < stop_deadline:
            await asyncio.sleep(0.05)
        await _flush_usage()
        log.info("shutdown drained (%d connection(s) left to the server to cancel)", len(self.inflight))


async def _flush_usage() -> None:
    from byok.gateway.handler import get_handler  # the handler exists if anything was served

    try:
        await get_handler().flush_usage()
    except Exception:
        log.exception("could not write the queued usage records at shutdown")


def install_daphne_graceful_shutdown(app: GracefulApp) -> None:
    """Make daphne's shutdown hook stop listening and drain `app` before it cancels what is left."""
    from daphne.server import Server
    from twisted.internet import defer, reactor, tcp

    if getattr(Server, "_byok_graceful", False):
        return
    cancel_all = Server.kill_all_applications

    def kill_all_applications(self):
        for reader in list(reactor.getReaders()):
            if isinstance(reader, tcp.Port):
                reader.stopListening()  # no new connections from here on
        drained = defer.Deferred.fromFuture(asyncio.ensure_future(app.shutdown()))
        drained.addErrback(lambda failure: log.error("shutdown drain failed: %s", failure.getErrorMessage()))
        drained.addBoth(lambda _: cancel_all(self))
        return drained

    Server.kill_all_applications = kill_all_applications
    Server._byok_graceful = True


def install_uvicorn_graceful_shutdown(app: GracefulApp) -> None:
    """Drain `app` in uvicorn's shutdown, after it stops accepting and before it closes connections.

    uvicorn alone waits for open connections without a bound (a long stream holds it up) and
    closes websockets at once; this gives both the same grace and terminal errors as under daphne.
    """
    from uvicorn.server import Server

    if getattr(Server, "_byok_graceful", False):
        return
    original = Server.shutdown

    async def shutdown(self, sockets=None):
        for server in self.servers:
            server.close()  # no new connections from here on
        try:
            await app.shutdown()
        except Exception:
            log.exception("shutdown drain failed")
        await original(self, sockets)

    Server.shutdown = shutdown  # type: ignore[method-assign]
    Server._byok_graceful = True  # type: ignore[attr-defined]
