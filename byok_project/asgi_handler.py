"""Django's ASGI handler without its two thread hops per request when the request needs no thread.

Django's `ASGIHandler` sends `request_started` through `Signal.asend`, which
runs the sync receivers (`reset_queries`, `close_old_connections`) in a
worker thread, and calls `response.close()` (which sends `request_finished`:
`close_old_connections`, `close_caches`, `reset_urlconf`) in a worker thread
too. Under its per-request `ThreadSensitiveContext` that is a new thread for
every request, started and joined: most of the CPU a chat request cost the
server once the middleware ran on the event loop.

Both hops exist so that the receivers run in the thread that holds the
request's database connection. A request whose view never left the event
loop (the chat endpoints: token from the cache, configuration from the
snapshot, usage queued to the writer) has no such thread: the receivers then
run inline, on the loop, with the same effect (they act on the calling
thread's connections, and a fresh worker thread has none either). As soon as
a request ran anything thread-sensitive in a worker thread (an ORM call, a
sync view, a sync middleware hook), its `response.close()` goes to that
thread exactly as Django does it. `request_started` receivers that are async
are awaited as Django does.
"""

from __future__ import annotations

import asyncio
import time

import django
from asgiref.sync import SyncToAsync, sync_to_async
from django.core import signals
from django.core.exceptions import RequestAborted
from django.core.handlers.asgi import ASGIHandler, get_script_prefix
from django.urls import set_script_prefix

from byok.overhead import HEADER, RECEIVED_AT, overhead_header

__all__ = ["ByokASGIHandler", "get_asgi_application"]


def _request_used_a_thread() -> bool:
    """True when this request's ThreadSensitiveContext has a worker thread (something ran there)."""
    try:
        context = SyncToAsync.thread_sensitive_context.get(None)
        return context is None or context in SyncToAsync.context_to_thread_executor
    except (AttributeError, TypeError):  # another asgiref: do as Django does
        return True


async def _send_request_started(sender, scope) -> None:
    sync_receivers, async_receivers = signals.request_started._live_receivers(sender)
    if async_receivers:
        await signals.request_started.asend(sender=sender, scope=scope)
        return
    for receiver in sync_receivers:
        receiver(signal=signals.request_started, sender=sender, scope=scope)


_HEADER = HEADER.encode()


def _with_overhead(send, received: float):
    """`send`, adding `x-byok-overhead-ms` (the time since arrival) to a response that does not carry it yet."""

    async def sending(message):
        if message["type"] == "http.response.start":
            headers = message.get("headers") or []
            if not any(name.lower() == _HEADER for name, _ in headers):
                spent = overhead_header((time.monotonic() - received) * 1000)
                message = {**message, "headers": [*headers, (_HEADER, spent.encode())]}
        await send(message)

    return sending


class ByokASGIHandler(ASGIHandler):
    """`ASGIHandler.handle` of Django 5.2 with the two hops above made conditional and the arrival time noted
    (`x-byok-overhead-ms`, see `byok.overhead`); the rest unchanged."""

    async def handle(self, scope, receive, send):
        received = scope[RECEIVED_AT] = time.monotonic()
        send = _with_overhead(send, received)
        try:
            body_file = await self.read_body(receive)
        except RequestAborted:
            return
        set_script_prefix(get_script_prefix(scope))
        await _send_request_started(self.__class__, scope)
        request, error_response = self.create_request(scope, body_file)
        if request is None:
            body_file.close()
            await self.send_response(error_response, send)
            await sync_to_async(error_response.close)()
            return

        async def process_request(request, send):
            response = await self.run_get_response(request)
            try:
                await self.send_response(response, send)
            except asyncio.CancelledError:
                pass  # the client disconnected during send_response
            return response

        tasks = [
            asyncio.create_task(self.listen_for_disconnect(receive)),
            asyncio.create_task(process_request(request, send)),
        ]
        await asyncio.wait(tasks, return_when=asyncio.FIRST_COMPLETED)
        for task in tasks:
            if task.done():
                try:
                    task.result()
                except RequestAborted:
                    pass
                except AssertionError:
                    body_file.close()
                    raise
            else:
                task.cancel()
                try:
                    await task
                except asyncio.CancelledError:
                    pass
        try:
            response = tasks[1].result()
        except asyncio.CancelledError:
            await signals.request_finished.asend(sender=self.__class__)
        else:
            if _request_used_a_thread():
                await sync_to_async(response.close)()
            else:
                response.close()
        body_file.close()


def get_asgi_application() -> ByokASGIHandler:
    """`django.core.asgi.get_asgi_application`, with byok's handler."""
    django.setup(set_prefix=False)
    return ByokASGIHandler()
