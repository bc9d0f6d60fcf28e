"""byok's ASGI handler: a chat request that never leaves the event loop costs no thread at all.

Counted through the real ASGI application (every middleware, the real
handler, the upstream faked by respx): every `SyncToAsync` call and every
thread started while one warmed-up request runs.
"""

from __future__ import annotations

import asyncio
import threading
from unittest import mock

import httpx
import pytest
import respx
from asgiref import sync as asgiref_sync
from asgiref.sync import sync_to_async
from django.core import signals
from django.test import override_settings
from rest_framework.authtoken.models import Token

from byok import registry
from byok.tests.upstream_fakes import ANSWER, STREAM, UPSTREAM

pytestmark = [pytest.mark.django_db(transaction=True)]


def _measure(app, send):
    """Run `send(client)` twice through the ASGI app; for the second: its result, the sync calls, threads started."""
    original_call, original_start = asgiref_sync.SyncToAsync.__call__, threading.Thread.start
    hops: list[str] = []
    started: list[str] = []

    async def counting(self, *args, **kwargs):
        hops.append(getattr(self.func, "__qualname__", repr(self.func)))
        return await original_call(self, *args, **kwargs)

    def starting(self):
        started.append(self.name)
        return original_start(self)

    async def run():
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
            await send(client)  # warm: token cached, configuration loaded
            await asyncio.sleep(0.5)  # the warm request's usage is written
            with (
                mock.patch.object(asgiref_sync.SyncToAsync, "__call__", counting),
                mock.patch.object(threading.Thread, "start", starting),
            ):
                result = await send(client)
            return result, hops, started

    return asyncio.run(run())


@pytest.fixture
def chat(alice):
    registry.register_provider(
        kind="openai", name="up", api_key="sk-test-0123456789abcdef", default_model="gpt-4o-mini"
    )
    return {"Authorization": f"Bearer {Token.objects.create(user=alice).plaintext}"}


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_a_chat_answer_through_the_asgi_app_starts_no_thread_and_makes_no_sync_call(chat):
    from byok_project.asgi import application

    respx.post(UPSTREAM).mock(return_value=httpx.Response(200, json=ANSWER))
    body = {"model": "up/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}

    async def send(client):
        response = await client.post("/v1/chat/completions", json=body, headers=chat)
        return response.status_code, response.json()["choices"][0]["message"]["content"]

    result, hops, started = _measure(application, send)
    assert result == (200, "Hello!")
    assert (hops, started) == ([], [])


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_a_streamed_chat_answer_through_the_asgi_app_starts_no_thread_and_makes_no_sync_call(chat):
    from byok_project.asgi import application

    respx.post(UPSTREAM).mock(
        return_value=httpx.Response(200, content=STREAM, headers={"content-type": "text/event-stream"})
    )
    body = {"model": "up/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "stream": True}

    async def send(client):
        response = await client.post("/api/chat", json=body, headers=chat)
        return response.status_code, response.text.count("event: ") or response.text.count("data: ")

    (status, events), hops, started = _measure(application, send)
    assert status == 200 and events >= 2
    assert (hops, started) == ([], [])


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_a_request_that_used_a_worker_thread_closes_its_response_there(alice):
    """A view touching the ORM (here the management API) keeps Django's behaviour: request_finished runs in
    the thread that holds the request's database connection, which it closes."""
    from byok_project.asgi import application

    threads: dict[str, int] = {}

    def finished(**kwargs):
        threads["finished"] = threading.get_ident()

    signals.request_finished.connect(finished, dispatch_uid="test-asgi-handler")
    try:
        alice.is_staff = True
        alice.save()
        auth = {"Authorization": f"Bearer {Token.objects.create(user=alice).plaintext}"}

        async def run():
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                response = await client.get("/api/providers", headers=auth)
            return response.status_code, threading.get_ident()

        status, loop_thread = asyncio.run(run())
    finally:
        signals.request_finished.disconnect(dispatch_uid="test-asgi-handler")
    assert status == 200
    assert threads["finished"] != loop_thread


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_async_request_started_receivers_are_still_awaited(alice):
    from byok_project.asgi import application

    seen: list[str] = []

    async def started(scope, **kwargs):
        seen.append(scope["path"])

    signals.request_started.connect(started, dispatch_uid="test-asgi-handler-started")
    try:

        async def run():
            transport = httpx.ASGITransport(app=application)
            async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1") as client:
                return (await client.get("/healthz")).status_code

        asyncio.run(run())
    finally:
        signals.request_started.disconnect(dispatch_uid="test-asgi-handler-started")
    assert seen == ["/healthz"]


@pytest.mark.parametrize("state", ["no context", "broken asgiref"])
def test_when_the_request_context_cannot_be_read_the_response_closes_in_a_thread_as_django_does(state, monkeypatch):
    from byok_project import asgi_handler

    if state == "broken asgiref":
        monkeypatch.setattr(asgi_handler.SyncToAsync, "context_to_thread_executor", None)
        token = asgi_handler.SyncToAsync.thread_sensitive_context.set(object())
        try:
            assert asgi_handler._request_used_a_thread()
        finally:
            asgi_handler.SyncToAsync.thread_sensitive_context.reset(token)
    else:
        assert asgi_handler._request_used_a_thread()


async def test_inside_a_request_context_a_thread_counts_once_something_ran_there():
    from asgiref.sync import ThreadSensitiveContext

    from byok_project.asgi_handler import _request_used_a_thread

    async with ThreadSensitiveContext():
        assert not _request_used_a_thread()
        await sync_to_async(lambda: None)()
        assert _request_used_a_thread()
