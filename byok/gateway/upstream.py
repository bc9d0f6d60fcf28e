"""The one place byok talks HTTP to providers: `Upstream.send()` and `Upstream.open_stream()`.

    upstream = Upstream(ClientRegistry(), pool, state=handler_state, clock=time.monotonic, wall=time.time)
    answer = await upstream.send(provider, key, secret, req)              # a whole ChatResponse
    stream = await upstream.open_stream(provider, key, secret, req)       # read up to its first token
    async for event in stream.events(): ...
    await stream.aclose()

`Upstream` owns the pooled clients, the clock and the key pool's header
feedback (remaining-requests/tokens headers go to the shared state on every
answer). A stream is read until its first token (or its end) before
`open_stream()` returns, so any failure until then raises and the caller can
try another key or provider as if nothing had been sent. httpx's errors
become byok's here (`map_transport_errors`), with the provider named and no
URL or key.

One `httpx.AsyncClient` per event loop (connection pooling, keep-alive). The
transport is chosen by `BYOK_HTTP_TRANSPORT`: `default` (httpx's own) or
`aiohttp` (httpx-aiohttp), which holds up better under many concurrent
streams; `make bench` measures both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

import httpx

from byok.exceptions import (
    KeyEncodingError,
    MalformedResponseError,
    ProviderError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from byok.gateway.config_cache import KeyConfig, ProviderConfig
from byok.gateway.images import inline_image_urls
from byok.gateway.keypool import KeyPool
from byok.netguard import ConnectGuard, guard_aiohttp_transport, guard_httpcore_transport
from byok.providers.base import StreamParser
from byok.providers.embeddings import (
    EmbeddingRequest,
    EmbeddingResponse,
    build_embeddings_request,
    parse_embeddings_response,
)
from byok.providers.types import TOKEN_KINDS, ChatRequest, ChatResponse, StreamEvent, UpstreamRequest
from byok.state import StateBackend
from byok.tokens import count_text_tokens

__all__ = ["ClientRegistry", "Upstream", "UpstreamStream", "map_transport_errors"]

LIMITS = httpx.Limits(max_connections=2000, max_keepalive_connections=500, keepalive_expiry=30)


def _make_client(transport_name: str) -> httpx.AsyncClient:
    guard = ConnectGuard()  # the SSRF rule again at every connect (byok.netguard)
    if transport_name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        # The transport keeps its own pool: without these limits it caps at 100 connections
        # (found by `make bench`: 1,000 websocket streams queued behind 100 upstream connections).
        transport = guard_aiohttp_transport(AiohttpTransport(limits=LIMITS, trust_env=False), guard)
    else:
        transport = guard_httpcore_transport(httpx.AsyncHTTPTransport(limits=LIMITS, trust_env=False), guard)
    # No environment proxies or netrc: byok only ever talks to the configured base URLs.
    return httpx.AsyncClient(limits=LIMITS, transport=transport, trust_env=False, follow_redirects=False)


class ClientRegistry:
    """Shared clients, one per running event loop (Django's sync-to-async may run several)."""

    def __init__(self, transport: str = "default", factory: Callable[[], httpx.AsyncClient] | None = None) -> None:
        self.transport = transport
        self._factory = factory or (lambda: _make_client(self.transport))
        self._clients: dict[int, tuple[asyncio.AbstractEventLoop, httpx.AsyncClient]] = {}

    def get(self) -> httpx.AsyncClient:
        loop = asyncio.get_running_loop()
        entry = self._clients.get(id(loop))
        if entry is None or entry[0] is not loop or entry[1].is_closed:
            self._drop_closed_loops()
            entry = (loop, self._factory())
            self._clients[id(loop)] = entry
        return entry[1]

    def _drop_closed_loops(self) -> None:
        for key, (loop, _client) in list(self._clients.items()):
            if loop.is_closed():
                del self._clients[key]

    async def aclose(self) -> None:
        """Close the client of the running loop (call on shutdown)."""
        loop = asyncio.get_running_loop()
        entry = self._clients.pop(id(loop), None)
        if entry is not None:
            await entry[1].aclose()


@contextlib.contextmanager
def map_transport_errors(provider: str):
    """Re-raise httpx's transport errors as byok's, with the provider named and no URL or key."""
    try:
        yield
    except httpx.TimeoutException:
        raise UpstreamTimeout(f"{provider} did not answer in time.", provider=provider) from None
    except httpx.DecodingError:
        raise MalformedResponseError(f"{provider} sent a body that could not be decoded.", provider=provider) from None
    except (httpx.TransportError, OSError) as exc:
        raise UpstreamConnectionError(
            f"The connection to {provider} failed ({type(exc).__name__}).", provider=provider
        ) from None
    except UnicodeEncodeError:
        # httpx encodes header values as ASCII; the only header value byok does not write itself is the key.
        raise KeyEncodingError(provider=provider) from None
    except ProviderError:
        raise


async def aiter_body(response: httpx.Response, provider: str) -> AsyncIterator[bytes]:
    """The response body as it arrives, with transport errors mapped."""
    iterator = response.aiter_raw().__aiter__()
    while True:
        with map_transport_errors(provider):
            try:
                chunk = await iterator.__anext__()
            except StopAsyncIteration:
                return
        yield chunk


class UpstreamStream:
    """A provider stream that has produced its first token (or ended); `events()` replays what was held."""

    def __init__(
        self, exits: contextlib.AsyncExitStack, parser: StreamParser, body: AsyncIterator[bytes], provider: str
    ) -> None:
        self._exits = exits
        self._parser = parser
        self._body = body
        self.provider = provider
        self.held: list[StreamEvent] = []
        self.ended = False
        self.saw_finish = False
        self.first_token_at: float | None = None
        self.model: str | None = None

    def _take(self, events: list[StreamEvent]) -> bool:
        """Hold events; true once a token arrived."""
        token = False
        for event in events:
            if event.kind == "finish":
                self.saw_finish = True
            elif event.kind == "meta" and event.model:
                self.model = event.model
            elif event.kind in TOKEN_KINDS:
                token = True
        self.held.extend(events)
        return token

    async def prime(self, clock: Callable[[], float]) -> None:
        """Read until the first token or the end; raise on any failure before it."""
        async for chunk in self._body:
            if self._take(self._parser.feed(chunk)):
                self.first_token_at = clock()
                return
        self._end()

    def _end(self) -> None:
        self.ended = True
        with map_transport_errors(self.provider):
            self._take(self._parser.close())
        if not self.saw_finish and not self._parser.finished:
            raise StreamInterruptedError(f"{self.provider}'s stream ended before it finished.")

    async def events(self) -> AsyncIterator[StreamEvent]:
        held, self.held = self.held, []
        for event in held:
            yield event
        if self.ended:
            return
        async for chunk in self._body:
            events = self._parser.feed(chunk)
            for event in events:
                if event.kind == "finish":
                    self.saw_finish = True
                yield event
        self.ended = True
        self.held = []
        self._take(self._parser.close())
        for event in self.held:
            yield event
        if not self.saw_finish and not self._parser.finished:
            raise StreamInterruptedError(f"{self.provider}'s stream ended before it finished.")

    async def aclose(self) -> None:
        """Close the response: its connection goes back to the pool or is dropped. Idempotent."""
        await self._exits.aclose()


def estimate_texts(texts: tuple[str, ...]) -> int:
    """byok's token estimate for inputs whose provider does not count them (Gemini embeddings)."""
    return round(sum(count_text_tokens(t) for t in texts))


class Upstream:
    """Sends requests to providers and feeds what their headers say back to the key pool."""

    def __init__(
        self,
        clients: ClientRegistry,
        pool: KeyPool,
        *,
        state: Callable[[], StateBackend],
        clock: Callable[[], float],
        wall: Callable[[], float],
    ) -> None:
        self.clients = clients
        self.pool = pool
        self._state = state
        self.clock = clock
        self.wall = wall

    async def send(self, provider: ProviderConfig, key: KeyConfig, secret: str, req: ChatRequest) -> ChatResponse:
        """A complete answer; raises the adapter's classified error on an HTTP error status."""
        adapter = provider.adapter
        req = await inline_image_urls(req, adapter)
        up = adapter.build_request(req, api_key=secret, base_url=provider.base_url or None)
        status, body = await self._post(provider, key, up)
        return adapter.parse_response(body, status=status)

    async def _post(self, provider: ProviderConfig, key: KeyConfig, up: UpstreamRequest) -> tuple[int, bytes]:
        """Send a whole-answer request: (status, body) on success, the adapter's classified error otherwise; the
        provider's rate-limit headers go to the key pool."""
        adapter = provider.adapter
        with map_transport_errors(provider.name):
            response = await self.clients.get().request(
                up.method, up.url, headers=up.headers, json=up.json, timeout=provider.timeout
            )
            body = await response.aread()
        if response.status_code >= 400:
            raise adapter.classify_error(response.status_code, response.headers, body)
        await self.pool.note_headers(self._state(), key, adapter.parse_rate_limits(response.headers), self.wall())
        return response.status_code, body

    async def send_embeddings(
        self, provider: ProviderConfig, key: KeyConfig, secret: str, req: EmbeddingRequest
    ) -> EmbeddingResponse:
        """Embeddings (`byok.providers.embeddings`), sent, classified and noted like `send`."""
        adapter = provider.adapter
        up = build_embeddings_request(adapter, req, api_key=secret, base_url=provider.base_url or None)
        _, body = await self._post(provider, key, up)
        return parse_embeddings_response(adapter.kind, body, req, provider=provider.name, estimate=estimate_texts)

    async def open_stream(
        self, provider: ProviderConfig, key: KeyConfig, secret: str, req: ChatRequest
    ) -> UpstreamStream:
        """A stream read up to its first token; on any failure it is closed (no pooled connection leaks) and raises."""
        adapter = provider.adapter
        req = await inline_image_urls(req, adapter)
        up = adapter.build_request(req, api_key=secret, base_url=provider.base_url or None)
        context = self.clients.get().stream(
            up.method, up.url, headers=up.headers, json=up.json, timeout=provider.timeout
        )
        async with contextlib.AsyncExitStack() as exits:
            with map_transport_errors(provider.name):
                response = await exits.enter_async_context(context)
            if response.status_code >= 400:
                with map_transport_errors(provider.name):
                    body = await response.aread()
                raise adapter.classify_error(response.status_code, response.headers, body)
            await self.pool.note_headers(self._state(), key, adapter.parse_rate_limits(response.headers), self.wall())
            stream = UpstreamStream(
                exits.pop_all(), adapter.stream_parser(), aiter_body(response, provider.name), provider.name
            )
        try:
            await stream.prime(self.clock)
        except BaseException:
            await stream.aclose()
            raise
        return stream

    async def aclose(self) -> None:
        await self.clients.aclose()
