"""The SSRF guard at connect time: every upstream connection, through both transports, is checked
against BYOK_ALLOW_PRIVATE_BASE_URLS as it is now, on the addresses actually connected to."""

from __future__ import annotations

import asyncio

import httpx
import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry
from byok.gateway.handler import BYOKHandler
from byok.gateway.upstream import ClientRegistry, _make_client
from byok.models import ApiKey
from byok.netguard import BlockedAddressError, ConnectGuard, guard_aiohttp_transport, guard_httpcore_transport
from byok.state import MemoryStateBackend, MemoryStore

TRANSPORTS = ["default", "aiohttp"]
OPENAI_ANSWER = (
    b'{"id":"c1","object":"chat.completion","created":1,"model":"m","choices":[{"index":0,'
    b'"message":{"role":"assistant","content":"hi"},"finish_reason":"stop"}],'
    b'"usage":{"prompt_tokens":1,"completion_tokens":1,"total_tokens":2}}'
)


class TinyServer:
    """A loopback HTTP server that counts the connections it accepts and answers every request 200."""

    def __init__(self, answer: bytes | None = None) -> None:
        self.answer = answer or (
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: %d\r\n\r\n" % len(OPENAI_ANSWER)
            + OPENAI_ANSWER
        )
        self.connections = 0
        self.port = 0
        self._server: asyncio.Server | None = None

    async def __aenter__(self) -> TinyServer:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def __aexit__(self, *exc) -> None:
        assert self._server is not None
        self._server.close()
        await self._server.wait_closed()

    async def _serve(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        try:
            while True:
                head = await reader.readuntil(b"\r\n\r\n")
                length = next(
                    (
                        int(line.split(b":")[1])
                        for line in head.split(b"\r\n")
                        if line.lower().startswith(b"content-length:")
                    ),
                    0,
                )
                await reader.readexactly(length)
                writer.write(self.answer)
                await writer.drain()
        except (asyncio.IncompleteReadError, ConnectionError):
            writer.close()


def _guarded_client(transport_name: str, guard: ConnectGuard) -> httpx.AsyncClient:
    if transport_name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport = guard_aiohttp_transport(AiohttpTransport(trust_env=False), guard)
    else:
        transport = guard_httpcore_transport(httpx.AsyncHTTPTransport(trust_env=False), guard)
    return httpx.AsyncClient(transport=transport, trust_env=False)


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_byok_upstream_clients_refuse_a_loopback_connect_when_private_addresses_are_not_allowed(
    transport, settings
):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": False}
    async with TinyServer() as server:
        async with _make_client(transport) as client:
            for url in (
                f"http://127.0.0.1:{server.port}/v1",
                f"http://localhost:{server.port}/v1",
                f"http://127.1:{server.port}/v1",
            ):
                with pytest.raises(BlockedAddressError):
                    await client.post(url, content=b"{}")
            settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}  # read at request time
            assert (await client.post(f"http://127.0.0.1:{server.port}/v1", content=b"{}")).status_code == 200
        assert server.connections == 1


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_redirects_are_never_followed(transport, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    async with TinyServer() as target:
        location = f"http://127.0.0.1:{target.port}/v1".encode()
        redirect = b"HTTP/1.1 307 Temporary Redirect\r\nlocation: " + location + b"\r\ncontent-length: 0\r\n\r\n"
        async with TinyServer(redirect) as server, _make_client(transport) as client:
            response = await client.post(f"http://127.0.0.1:{server.port}/v1", content=b"{}")
        assert response.status_code == 307
        assert target.connections == 0


@pytest.mark.asyncio
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_the_connection_goes_to_the_checked_address_and_dns_is_asked_again_after_the_ttl(transport):
    answers = {"provider.example": ["127.0.0.1"]}
    asked: list[str] = []
    now = [0.0]
    allow = [True]

    async def resolve(host, port):
        asked.append(host)
        return answers[host]

    guard = ConnectGuard(ttl=10, resolve=resolve, allow_private=lambda: allow[0], clock=lambda: now[0])
    async with TinyServer() as server:
        url = f"http://provider.example:{server.port}/v1"  # the system resolver does not know this name
        async with _guarded_client(transport, guard) as client:
            assert (await client.post(url, content=b"{}")).status_code == 200
            allow[0] = False  # the setting turned off: the next new connection is refused
        async with _guarded_client(transport, guard) as client:
            with pytest.raises(BlockedAddressError):
                await client.post(url, content=b"{}")
        assert asked == ["provider.example"]  # the second lookup came from the cache
        now[0] = 11.0
        answers["provider.example"] = ["10.0.0.7"]  # a rebinding after the ttl: asked again, and refused
        allow[0] = False
        async with _guarded_client(transport, guard) as client:
            with pytest.raises(BlockedAddressError):
                await client.post(url, content=b"{}")
        assert asked == ["provider.example", "provider.example"]
        assert server.connections == 1


@pytest.mark.asyncio
@pytest.mark.parametrize(
    "host", ["::7f00:1", "64:ff9b::7f00:1", "64:ff9b::a9fe:a9fe", "2002:7f00:1::1", "2002:a9fe:a9fe::1", "fec0::1"]
)
async def test_ipv6_forms_embedding_private_ipv4_are_refused_at_connect(host):
    guard = ConnectGuard(allow_private=lambda: False)
    with pytest.raises(BlockedAddressError):
        await guard.addresses(f"[{host}]", 443)

    async def resolve(name, port):
        return [host]

    with pytest.raises(BlockedAddressError):
        await ConnectGuard(resolve=resolve, allow_private=lambda: False).addresses("api.example.com", 443)


@pytest.mark.asyncio
@pytest.mark.django_db(transaction=True)
@pytest.mark.parametrize("transport", TRANSPORTS)
async def test_a_provider_registered_while_private_was_allowed_is_refused_after_the_flag_is_turned_off(
    transport,
    settings,
    monkeypatch,
    django_user_model,
):
    async with TinyServer() as server:
        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
        await sync_to_async(registry.register_provider)(
            kind="openai",
            name="local",
            base_url=f"http://127.0.0.1:{server.port}/v1",
            default_model="m",
            api_key="sk-test-0123456789abcdef",
        )
        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": False}
        clients = ClientRegistry(transport)
        handler = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=MemoryStore()), clients=clients)
        monkeypatch.setattr(chat_entry, "get_handler", lambda: handler)
        user = await sync_to_async(django_user_model.objects.create_user)("carol")
        token = (await sync_to_async(Token.objects.create)(user=user)).plaintext
        api = AsyncClient(AUTHORIZATION=f"Bearer {token}")
        try:
            response = await api.post(
                "/api/chat",
                {"messages": [{"role": "user", "content": "hi"}], "provider": "local"},
                content_type="application/json",
            )
        finally:
            await clients.aclose()
        assert response.status_code == 502, response.content
        body = response.json()
        assert [a["error_class"] for a in body["attempts"]] == ["blocked"], body
        assert "BYOK_ALLOW_PRIVATE_BASE_URLS" in body["message"] and body["retryable"] is False, body
        assert server.connections == 0
        assert await sync_to_async(ApiKey.objects.filter(status=ApiKey.Status.ACTIVE).count)() == 1  # not a key fault
