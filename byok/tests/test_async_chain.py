"""The chat path stays on the event loop: no middleware makes Django hop threads per request."""

from __future__ import annotations

import asyncio
from unittest import mock

import httpx
import pytest
from asgiref import sync as asgiref_sync
from asgiref.sync import iscoroutinefunction
from django.core.handlers.base import BaseHandler
from django.test import override_settings
from rest_framework.authtoken.models import Token

# Django's base handler logs a 4xx/5xx response in a thread; that is the only hop left (byok's
# ASGI handler runs request_started and response.close() on the loop: byok_project/asgi_handler.py).
DJANGO_HANDLER_HOPS = {"log_response"}


class RecordingHandler(BaseHandler):
    """Django's handler, noting every method it adapts between sync and async."""

    def __init__(self) -> None:
        super().__init__()
        self.adapted: list[str] = []

    def adapt_method_mode(self, is_async, method, method_is_async=None, debug=False, name=None):
        if method_is_async is None:
            method_is_async = iscoroutinefunction(method)
        if is_async != method_is_async:
            self.adapted.append(name or getattr(method, "__qualname__", repr(method)))
        return super().adapt_method_mode(is_async, method, method_is_async, debug, name)


def test_django_loads_every_middleware_as_async_without_adapting_one():
    handler = RecordingHandler()
    handler.load_middleware(is_async=True)
    assert handler.adapted == []
    assert all(iscoroutinefunction(m) for m in handler._view_middleware)


def _hops_during(app, requests: list[tuple[str, str, dict]]) -> list[tuple[int, list[str]]]:
    """Run requests through the ASGI app; for each, its status and the functions sent to a thread."""
    original = asgiref_sync.SyncToAsync.__call__
    hops: list[str] = []

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original(self, *args, **kwargs)

    async def run():
        results = []
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            for method, url, kwargs in requests:
                await client.request(method, url, **kwargs)  # warm: the token lands in its cache
                hops.clear()
                with mock.patch.object(asgiref_sync.SyncToAsync, "__call__", counting):
                    response = await client.request(method, url, **kwargs)
                results.append((response.status_code, list(hops)))
        return results

    return asyncio.run(run())


@pytest.mark.django_db(transaction=True)
@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_a_chat_request_through_the_asgi_app_runs_no_middleware_hook_in_a_thread(alice):
    from byok_project.asgi import application

    auth = {"Authorization": f"Bearer {Token.objects.create(user=alice).plaintext}"}
    results = _hops_during(
        application,
        [
            ("GET", "/v1/models", {"headers": auth}),
            ("POST", "/v1/chat/completions", {"headers": auth, "json": {"model": "x", "messages": "not a list"}}),
            ("POST", "/api/chat", {"headers": auth, "json": {"messages": 3}}),
        ],
    )
    assert [status for status, _ in results] == [200, 400, 422]
    assert results[0][1] == []  # the 200: not one thread hop
    for _, hops in results:
        assert set(hops) <= DJANGO_HANDLER_HOPS, hops
