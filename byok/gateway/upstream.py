"""The one place byok talks HTTP to providers, and where httpx errors become byok errors.

One `httpx.AsyncClient` per event loop (connection pooling, keep-alive). The
transport is chosen by `BYOK_HTTP_TRANSPORT`: `default` (httpx's own) or
`aiohttp` (httpx-aiohttp), which holds up better under many concurrent
streams; `make bench` measures both.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

import httpx

from byok.exceptions import MalformedResponseError, ProviderError, UpstreamConnectionError, UpstreamTimeout

__all__ = ["ClientRegistry", "map_transport_errors"]

LIMITS = httpx.Limits(max_connections=2000, max_keepalive_connections=500, keepalive_expiry=30)


def _make_client(transport_name: str) -> httpx.AsyncClient:
    transport: httpx.AsyncBaseTransport | None = None
    if transport_name == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        # The transport keeps its own pool: without these limits it caps at 100 connections
        # (found by `make bench`: 1,000 websocket streams queued behind 100 upstream connections).
        transport = AiohttpTransport(limits=LIMITS, trust_env=False)
    # No environment proxies or netrc: byok only ever talks to the configured base URLs.
    return httpx.AsyncClient(limits=LIMITS, transport=transport, trust_env=False, follow_redirects=False)


class ClientRegistry:
    """Shared clients, one per running event loop (Django's sync-to-async may run several)."""

    def __init__(self, transport: str = "default", factory=None) -> None:
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
