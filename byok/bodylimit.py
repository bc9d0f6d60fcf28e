"""Refuse oversized request bodies before they are read, before authentication.

A body larger than `DATA_UPLOAD_MAX_MEMORY_SIZE` (`BYOK_MAX_BODY_BYTES`) is
refused with a JSON 413 at two depths:

- `BodyLimitApp`, ASGI middleware around Django: a declared `Content-Length`
  over the limit is answered at once, without reading the body; a chunked body
  is counted as the server hands it over, and at the limit Django is told the
  client went away (it stops reading) and the client gets the 413. Under a
  server that streams bodies on demand (uvicorn, granian) nothing past the
  limit is ever read.
- `install_daphne_body_limit()`: daphne (Twisted) buffers a whole body before
  the application sees the request, and then queues all of it in memory. The
  same limit is applied inside daphne's request object, as the bytes arrive:
  past it the rest is discarded unstored, the 413 is written, and the
  connection is closed.

Errors under `/v1/` are in OpenAI's error format (what the openai SDK reads);
elsewhere in byok's error shape `{"code", "message"}`.
"""

from __future__ import annotations

import json
import logging

from django.conf import settings

__all__ = ["BodyLimitApp", "error_body", "install_daphne_body_limit", "refusal"]

log = logging.getLogger("byok.bodylimit")


def error_body(path: str, code: str, message: str) -> dict:
    if path.startswith("/v1/"):
        return {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": code}}
    return {"code": code, "message": message, "retryable": False}


def limit() -> int | None:
    return settings.DATA_UPLOAD_MAX_MEMORY_SIZE


def too_large(path: str) -> tuple[int, dict]:
    return 413, error_body(path, "payload_too_large", f"The request body is too large (at most {limit()} bytes).")


def refusal(path: str, declared: str | None) -> tuple[int, dict] | None:
    """(status, body) for a request whose declared Content-Length is unreadable or too large, else None."""
    if not declared:
        return None
    try:
        length = int(declared)
    except ValueError:
        length = -1
    if length < 0:
        return 400, error_body(path, "bad_request", "The Content-Length header is not a valid length.")
    cap = limit()
    if cap is not None and length > cap:
        return too_large(path)
    return None


def _encoded(status: int, body: dict) -> tuple[list[tuple[bytes, bytes]], bytes]:
    payload = json.dumps(body).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    return headers, payload


class BodyLimitApp:
    """ASGI middleware: a JSON 413 for bodies over the limit, declared or streamed, before the app reads them."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        path = scope.get("path", "")
        declared = next((v.decode("latin-1") for k, v in scope.get("headers", ()) if k == b"content-length"), None)
        refused = refusal(path, declared)
        if refused is not None:
            return await self._answer(send, *refused, close=True)
        cap = limit()
        if cap is None:
            return await self.app(scope, receive, send)

        received = 0
        over = False
        started = False

        async def counting_receive():
            nonlocal received, over
            if over:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > cap:
                    over = True
                    return {"type": "http.disconnect"}  # Django stops reading (RequestAborted) and answers nothing
            return message

        async def watching_send(message):
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        await self.app(scope, counting_receive, watching_send)
        if over and not started:
            log.info("refused a request body over %d bytes on %s", cap, path)
            await self._answer(send, *too_large(path), close=True)

    @staticmethod
    async def _answer(send, status: int, body: dict, *, close: bool) -> None:
        headers, payload = _encoded(status, body)
        if close:
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": payload})


# -- daphne -----------------------------------------------------------------------------------------

DISCARD_GRACE_S = 5.0  # after a refusal, how long the rest of an upload is read and dropped before closing


def install_daphne_body_limit() -> None:
    """Apply the limit inside daphne's request object as bytes arrive (idempotent)."""
    from daphne.http_protocol import WebRequest
    from twisted.internet import reactor

    if getattr(WebRequest, "_byok_body_limit", False):
        return
    original_got_length = WebRequest.gotLength
    original_chunk = WebRequest.handleContentChunk
    original_process = WebRequest.process

    def path_of(self) -> str:
        # Twisted sets `request.path` only once the whole body is in; the channel has it from line one.
        raw = getattr(self, "path", None) or getattr(self.channel, "_path", b"") or b""
        return raw.split(b"?", 1)[0].decode("latin-1", "replace")

    def refuse(self, status: int, body: dict) -> None:
        """Write the error, drop the rest of the upload, close once it is sent (or after a grace period)."""
        self._byok_refused = True
        headers, payload = _encoded(status, body)
        reason = b"Payload Too Large" if status == 413 else b"Bad Request"
        head = b"HTTP/1.1 %d %s\r\n" % (status, reason) + b"".join(k + b": " + v + b"\r\n" for k, v in headers)
        transport = self.channel.transport
        transport.write(head + b"connection: close\r\n\r\n" + payload)
        # Closing at once would make the kernel reset the connection while the client is still
        # sending, and the client might never read the 413: read and drop a little longer.
        reactor.callLater(DISCARD_GRACE_S, transport.loseConnection)  # type: ignore[arg-type]  # zope interface stub
        log.info("refused a request body over %s bytes on %s", limit(), path_of(self))

    def gotLength(self, length):
        refused = refusal(path_of(self), str(length)) if length is not None else None
        self._byok_received = 0
        if refused is not None:
            original_got_length(self, 0)  # no spool file for a body that will not be kept
            refuse(self, *refused)
            return
        original_got_length(self, length)

    def handleContentChunk(self, data):
        if getattr(self, "_byok_refused", False):
            return
        self._byok_received = getattr(self, "_byok_received", 0) + len(data)
        cap = limit()
        if cap is not None and self._byok_received > cap:
            self.content.close()
            refuse(self, *too_large(path_of(self)))
            return
        original_chunk(self, data)

    def process(self):
        if getattr(self, "_byok_refused", False):
            self.channel.transport.loseConnection()  # the whole upload arrived: the 413 is already sent
            return None
        return original_process(self)

    WebRequest.gotLength = gotLength
    WebRequest.handleContentChunk = handleContentChunk
    WebRequest.process = process
    WebRequest._byok_body_limit = True
