"""The SSRF guard for provider base URLs: at registration, and again at every connect.

A base URL must be http(s) and, unless `BYOK_ALLOW_PRIVATE_BASE_URLS` is true,
every address its host resolves to must be public: not loopback, private,
link-local (cloud metadata lives there), multicast, reserved, unspecified or
IPv6 site-local, and no IPv6 address that embeds an IPv4 one (IPv4-mapped and
-compatible, NAT64 `64:ff9b::/96`, 6to4 `2002::/16`, Teredo) may embed a
non-public IPv4 address.

`check_base_url()` runs when a provider is registered or changed.
`ConnectGuard` runs when byok opens a connection to a provider: it resolves
the host itself (cached per host for `ttl` seconds), refuses with
`BlockedAddressError` when an address is not allowed under the setting *as it
is now*, and hands the transport the checked addresses to connect to, so a DNS
answer that changes after the check (rebinding) is never used.
`guard_httpcore_transport()` and `GuardedAiohttpConnector` put it into the two
upstream transports (httpx's own and httpx-aiohttp).
"""

from __future__ import annotations

import asyncio
import ipaddress
import logging
import socket
import time
from collections.abc import Awaitable, Callable
from urllib.parse import urlsplit

from byok.exceptions import ProviderError

__all__ = [
    "BlockedAddressError",
    "ConnectGuard",
    "check_base_url",
    "guard_aiohttp_transport",
    "guard_httpcore_transport",
    "is_public_address",
]

log = logging.getLogger("byok.netguard")

Resolver = Callable[[str], list[str]]


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({str(info[4][0]) for info in infos})


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries (and a network may route to)."""
    embedded = []
    if ip.ipv4_mapped:
        embedded.append(ip.ipv4_mapped)
    if ip.sixtofour:
        embedded.append(ip.sixtofour)
    if ip.teredo:
        embedded.extend(ip.teredo)
    if any(ip in net for net in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        embedded.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return embedded


def is_public_address(address: str) -> bool:
    """True for an address byok may connect to when private addresses are not allowed."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.is_site_local:
            return False
        embedded = _embedded_ipv4(ip)
        if embedded:
            return all(v4.is_global and not v4.is_multicast for v4 in embedded)
    return ip.is_global and not ip.is_multicast


_is_public = is_public_address


def check_base_url(url: str, *, allow_private: bool, resolve: Resolver = _resolve) -> str | None:
    """The reason `url` is refused, or None when it is acceptable."""
    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError:
        return "Enter a valid URL."
    if parts.scheme not in ("http", "https") or not host:
        return "The base URL must be an http(s) URL with a host."
    if parts.username or parts.password:
        return "The base URL must not carry credentials."
    if allow_private:
        return None
    try:
        addresses = [str(ipaddress.ip_address(host))]
    except ValueError:
        try:
            addresses = resolve(host)
        except (OSError, UnicodeError):
            return f"The host {host!r} cannot be resolved."
    if not addresses or not all(_is_public(a) for a in addresses):
        return (
            "The base URL points at a loopback, private or link-local address; "
            "set BYOK_ALLOW_PRIVATE_BASE_URLS=true to allow it."
        )
    return None


# -- at connect time -------------------------------------------------------------------------------

BLOCKED_MESSAGE = (
    "The provider's address is not allowed: its host resolves to a loopback, private or link-local "
    "address (set BYOK_ALLOW_PRIVATE_BASE_URLS=true to allow it)."
)


class BlockedAddressError(ProviderError):
    """The provider's host resolved to an address byok must not connect to; nothing was sent."""

    code = "upstream_address_blocked"
    status_code = 502
    retryable = False
    error_class = "blocked"
    default_message = BLOCKED_MESSAGE


def _allow_private_now() -> bool:
    from django.conf import settings

    return bool(settings.BYOK.get("ALLOW_PRIVATE_BASE_URLS", False))


async def _resolve_async(host: str, port: int) -> list[str]:
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(str(info[4][0]) for info in infos))  # unique, in the resolver's order


class ConnectGuard:
    """Resolve a provider host at connect time, check every address, cache the answer for `ttl` seconds."""

    def __init__(
        self,
        *,
        ttl: float = 10.0,
        resolve: Callable[[str, int], Awaitable[list[str]]] = _resolve_async,
        allow_private: Callable[[], bool] = _allow_private_now,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.ttl, self._resolve, self._allow_private, self._clock = ttl, resolve, allow_private, clock
        self._cache: dict[str, tuple[float, list[str]]] = {}

    async def addresses(self, host: str, port: int) -> list[str]:
        """The addresses to connect to for `host`; `BlockedAddressError` when any is not allowed."""
        host = host.strip("[]")
        try:
            addresses = [str(ipaddress.ip_address(host.split("%", 1)[0]))]
        except ValueError:
            addresses = await self._resolved(host, port)
        if not self._allow_private() and not all(is_public_address(a) for a in addresses):
            log.warning(
                "refused to connect to %s: it resolves to %s, and private addresses are not allowed "
                "(BYOK_ALLOW_PRIVATE_BASE_URLS)",
                host,
                ", ".join(addresses),
            )
            raise BlockedAddressError()
        return addresses

    async def _resolved(self, host: str, port: int) -> list[str]:
        now = self._clock()
        cached = self._cache.get(host)
        if cached is not None and cached[0] > now:
            return cached[1]
        addresses = await self._resolve(host, port)  # OSError (no such host) goes to the transport's mapping
        if not addresses:
            raise OSError(f"no address for {host}")
        if len(self._cache) > 1024:
            self._cache.clear()
        self._cache[host] = (now + self.ttl, addresses)
        return addresses


def guard_httpcore_transport(transport, guard: ConnectGuard):
    """Make httpx's own transport connect only to addresses `guard` allows (returns the transport)."""
    import httpcore

    class GuardedBackend(httpcore.AsyncNetworkBackend):
        def __init__(self, inner: httpcore.AsyncNetworkBackend) -> None:
            self.inner = inner

        async def connect_tcp(self, host, port, timeout=None, local_address=None, socket_options=None):
            last: Exception | None = None
            for address in await guard.addresses(host, port):
                try:
                    return await self.inner.connect_tcp(address, port, timeout, local_address, socket_options)
                except (httpcore.ConnectError, httpcore.ConnectTimeout) as exc:
                    last = exc
            raise last

        async def connect_unix_socket(self, path, timeout=None, socket_options=None):
            return await self.inner.connect_unix_socket(path, timeout, socket_options)

        async def sleep(self, seconds: float) -> None:
            await self.inner.sleep(seconds)

    pool = transport._pool  # httpx builds its httpcore pool without a way to pass a network backend
    pool._network_backend = GuardedBackend(pool._network_backend)
    return transport


def guarded_aiohttp_connector(guard: ConnectGuard, **options):
    """An aiohttp connector that resolves (names and literal addresses alike) through `guard`."""
    import aiohttp

    class GuardedConnector(aiohttp.TCPConnector):
        async def _resolve_host(self, host, port, traces=None):
            return [
                {
                    "hostname": host,
                    "host": address,
                    "port": port,
                    "family": socket.AF_INET6 if ":" in address else socket.AF_INET,
                    "proto": 0,
                    "flags": socket.AI_NUMERICHOST,
                }
                for address in await guard.addresses(host, port)
            ]

    return GuardedConnector(**options)


def guard_aiohttp_transport(transport, guard: ConnectGuard):
    """Make httpx-aiohttp's transport connect only to addresses `guard` allows (returns the transport)."""
    from aiohttp import ClientSession

    limits = transport.limits
    transport.client = lambda: ClientSession(
        connector=guarded_aiohttp_connector(
            guard,
            limit=limits.max_connections or 0,
            keepalive_timeout=limits.keepalive_expiry,
            ssl=transport.ssl_context,
        )
    )
    return transport
