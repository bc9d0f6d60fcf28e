"""The websocket when something under it fails: the socket survives Redis outages, and never closes silently.

- `ResilientRedisChannelLayer`: channels_redis' layer, except that a failed
  `receive()` (Redis unreachable) is retried with backoff instead of raising.
  Channels runs every consumer's channel receive beside its socket; one
  failure there used to kill every open socket with close code 1011. Now the
  socket stays up (its chats fail clearly on their own, with `chat.error`
  `state_unavailable`) and cross-process notices resume when Redis is back.
  Its `receive()` also always ends when cancelled (see `_until_cancelled`).
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
RECANCEL_EVERY_S = 0.05
RECANCEL_TRIES = 200


class ResilientRedisChannelLayer(RedisChannelLayer):
    """`receive()` waits out a Redis outage (backoff up to 10 s) instead of failing the consumer."""

    async def receive(self, channel):
        delay = 0.5
        while True:
            try:
                return await _until_cancelled(super().receive(channel))
            except (RedisError, OSError) as exc:
                log.warning("channel layer receive failed (%s: %s); retrying in %.1f s", type(exc).__name__, exc, delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, RECEIVE_RETRY_MAX_S)


async def _until_cancelled(coro):
    """Await `coro` in a task of its own, so that cancelling the caller always ends the caller's wait.

    On Python 3.11 `asyncio.wait_for` loses a cancel that lands as the awaited operation completes, and
    redis-py sends every command through it when a socket timeout is set. A consumer cancelled as its
    channel receive writes a command then stayed in channels_redis' BZPOPMIN loop for ever: the socket's
    application never ended (CI hung in a test's teardown). The inner task is cancelled again until it
    ends; whatever it would have received is dropped, as for any cancelled receive.
    """
    task = asyncio.ensure_future(coro)
    try:
        return await asyncio.shield(task)
    except asyncio.CancelledError:
        task.add_done_callback(_forget)
        _cancel_until_done(task, RECANCEL_TRIES)
        raise


def _cancel_until_done(task: asyncio.Future, tries: int) -> None:
    if task.done():
        return
    task.cancel()
    if tries > 1:
        task.get_loop().call_later(RECANCEL_EVERY_S, _cancel_until_done, task, tries - 1)


def _forget(task: asyncio.Future) -> None:
    """Retrieve the outcome of a receive nobody waits for any more (no 'exception never retrieved')."""
    if not task.cancelled():
        task.exception()


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
