"""The websocket when something under it fails: the socket survives Redis outages, and never closes silently.

- `ResilientRedisChannelLayer`: channels_redis' layer, except that a failed
  `receive()` (Redis unreachable) is retried with backoff instead of raising.
  Channels runs every consumer's channel receive beside its socket; one
  failure there used to kill every open socket with close code 1011. Now the
  socket stays up (its chats fail clearly on their own, with `chat.error`
  `state_unavailable`) and cross-process notices resume when Redis is back.
- `ErrorFrameOnCrash`: ASGI middleware around the websocket application. If
  the application fails anyway, the client gets a `chat.error` frame before
  the close (4500, byok's code for an internal error: daphne only sends 1000
  or 3000-4999), never a bare 1011; the detail (which may name hosts) goes to
  the log only.
"""

from __future__ import annotations

import asyncio
import json
import logging

from channels_redis.core import RedisChannelLayer
from redis.exceptions import RedisError

from byok.exceptions import ByokError

__all__ = ["ErrorFrameOnCrash", "ResilientRedisChannelLayer"]

log = logging.getLogger("byok.ws")

RECEIVE_RETRY_MAX_S = 10.0
CLOSE_INTERNAL_ERROR = 4500


class ResilientRedisChannelLayer(RedisChannelLayer):
    """`receive()` waits out a Redis outage (backoff up to 10 s) instead of failing the consumer."""

    async def receive(self, channel):
        delay = 0.5
        while True:
            try:
                return await super().receive(channel)
            except (RedisError, OSError) as exc:
                log.warning("channel layer receive failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECEIVE_RETRY_MAX_S)


def _client_error(exc: BaseException) -> tuple[str, str, bool]:
    """(code, message, retryable) safe to show a client: a byok error's own, else a generic one."""
    if isinstance(exc, ByokError):
        return exc.code, exc.message, exc.retryable
    if isinstance(exc, (RedisError, OSError)):
        return "state_unavailable", "The shared state store (Redis) is unreachable; try again shortly.", True
    return "internal_error", "byok failed on this connection; it is closing.", True


class ErrorFrameOnCrash:
    """ASGI middleware: a websocket application that raises sends `chat.error`, then closes (4500)."""

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] != "websocket":
            return await self.app(scope, receive, send)
        state = {"accepted": False, "closed": False}

        async def watching_send(message):
            kind = message["type"]
            if kind == "websocket.accept":
                state["accepted"] = True
            elif kind == "websocket.close":
                state["closed"] = True
            await send(message)

        try:
            return await self.app(scope, receive, watching_send)
        except Exception as exc:
            log.exception("websocket application failed")
            if state["closed"]:
                return None
            code, message, retryable = _client_error(exc)
            frame = {
                "type": "chat.error",
                "id": None,
                "code": code,
                "message": message,
                "retryable": retryable,
                "partial": False,
            }
            try:
                if not state["accepted"]:
                    await send({"type": "websocket.accept"})
                await send({"type": "websocket.send", "text": json.dumps(frame)})
                await send({"type": "websocket.close", "code": CLOSE_INTERNAL_ERROR})
            except Exception:  # the client is already gone
                log.debug("could not send the closing error frame", exc_info=True)
            return None
