"""Image URLs a provider cannot fetch (Gemini reads only inline data and its own file URIs), fetched by byok.

Off by default: only with `BYOK_FETCH_IMAGE_URLS=true` does byok download such an image and send
it inline; otherwise the adapter refuses the request with a 400 that says so. A fetch is guarded
as strictly as anything byok connects to, and more: the address must be public even when
`BYOK_ALLOW_PRIVATE_BASE_URLS` lets providers live on private networks (an image URL comes from
the caller, a base URL from the administrator). No redirects are followed, no credentials or
proxies used, the body is capped at `BYOK_FETCH_IMAGE_MAX_BYTES` and must say it is an image.

    req = await inline_image_urls(req, adapter)      # before adapter.build_request()
"""

from __future__ import annotations

import base64
from collections.abc import Awaitable, Callable
from dataclasses import replace

import httpx

from byok.exceptions import BadRequestError
from byok.netguard import BlockedAddressError, ConnectGuard, check_base_url, guard_httpcore_transport
from byok.providers.base import ProviderAdapter
from byok.providers.types import ChatRequest, ImagePart, Message

__all__ = ["fetch_image", "inline_image_urls"]

Fetch = Callable[[str], Awaitable[ImagePart]]
TIMEOUT = httpx.Timeout(10.0)


def _settings() -> tuple[bool, int]:
    from django.conf import settings

    return bool(settings.BYOK.get("FETCH_IMAGE_URLS", False)), int(settings.BYOK.get("FETCH_IMAGE_MAX_BYTES", 0))


def _refused(url: str, why: str) -> BadRequestError:
    return BadRequestError(f"The image at {url[:200]} cannot be used: {why}.")


async def fetch_image(url: str, *, max_bytes: int, allow_private: bool = False) -> ImagePart:
    """Download one image into an inline `ImagePart`; BadRequestError (a 400) for anything wrong."""
    problem = check_base_url(url, allow_private=True)  # shape only: addresses are checked at connect
    if problem:
        raise _refused(url, "it must be an http(s) URL without credentials")
    guard = ConnectGuard(allow_private=lambda: allow_private)
    transport = guard_httpcore_transport(httpx.AsyncHTTPTransport(trust_env=False), guard)
    async with httpx.AsyncClient(transport=transport, trust_env=False, follow_redirects=False, timeout=TIMEOUT) as c:
        try:
            async with c.stream("GET", url) as response:
                if response.status_code != 200:
                    raise _refused(url, f"fetching it answered HTTP {response.status_code}")
                media_type = response.headers.get("content-type", "").split(";")[0].strip().lower()
                if not media_type.startswith("image/"):
                    raise _refused(url, f"it is not an image (content type {media_type or 'missing'})")
                body = bytearray()
                async for chunk in response.aiter_bytes():
                    body += chunk
                    if len(body) > max_bytes:
                        raise _refused(url, f"it is larger than {max_bytes} bytes")
        except BlockedAddressError:
            raise _refused(url, "its host is a loopback, private or link-local address") from None
        except httpx.HTTPError as exc:
            raise _refused(url, f"fetching it failed ({type(exc).__name__})") from None
    return ImagePart(data=base64.b64encode(bytes(body)).decode(), media_type=media_type)


async def inline_image_urls(req: ChatRequest, adapter: ProviderAdapter, *, fetch: Fetch | None = None) -> ChatRequest:
    """`req` with the image URLs `adapter` cannot read replaced by their data, when the setting allows it."""
    wanted = [
        p.url
        for m in req.messages
        for p in m.parts
        if isinstance(p, ImagePart) and p.url and not adapter.reads_image_url(p.url)
    ]
    if not wanted:
        return req
    enabled, max_bytes = _settings()
    if not enabled:
        return req  # the adapter refuses it with a 400 naming the setting
    if fetch is None:

        async def fetch(url: str) -> ImagePart:
            return await fetch_image(url, max_bytes=max_bytes)

    fetched = {url: await fetch(url) for url in dict.fromkeys(wanted)}
    messages = tuple(_inline(m, fetched) for m in req.messages)
    return replace(req, messages=messages)


def _inline(m: Message, fetched: dict[str, ImagePart]) -> Message:
    if not any(isinstance(p, ImagePart) and p.url in fetched for p in m.parts):
        return m
    parts = tuple(
        replace(fetched[p.url or ""], detail=p.detail, cache_control=p.cache_control)
        if isinstance(p, ImagePart) and p.url in fetched
        else p
        for p in m.parts
    )
    return replace(m, parts=parts)
