"""The SSRF guard for provider base URLs.

A base URL must be http(s) and, unless `BYOK_ALLOW_PRIVATE_BASE_URLS` is true,
every address its host resolves to must be public: not loopback, private,
link-local (cloud metadata lives there), multicast, reserved or unspecified.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Callable
from urllib.parse import urlsplit

__all__ = ["check_base_url"]

Resolver = Callable[[str], list[str]]


def _resolve(host: str) -> list[str]:
    infos = socket.getaddrinfo(host, None, proto=socket.IPPROTO_TCP)
    return sorted({info[4][0] for info in infos})


def _is_public(address: str) -> bool:
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return ip.is_global and not ip.is_multicast


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
