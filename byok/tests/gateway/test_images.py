"""Image URLs a provider cannot fetch (Gemini): refused with a 400 unless BYOK_FETCH_IMAGE_URLS lets byok fetch
them, and then only from public addresses, images only, within the size cap, no redirects."""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import respx
from asgiref.sync import sync_to_async

from byok import registry
from byok.exceptions import BadRequestError
from byok.gateway import images
from byok.gateway.images import fetch_image, inline_image_urls
from byok.providers import get_adapter
from byok.providers.types import ChatRequest, ImagePart, Message, TextPart

PNG = base64.b64decode(
    "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="
)
CAT = "https://example.com/cat.png"


def ask(*parts, model="gemini-2.5-flash") -> ChatRequest:
    return ChatRequest(model=model, messages=(Message(role="user", parts=(TextPart(text="What is it?"), *parts)),))


async def fake_fetch(url: str) -> ImagePart:
    return ImagePart(data=base64.b64encode(PNG).decode(), media_type="image/png")


async def test_without_the_setting_the_request_is_unchanged_and_gemini_refuses_it(settings):
    settings.BYOK = {**settings.BYOK, "FETCH_IMAGE_URLS": False}
    req = ask(ImagePart(url=CAT))
    assert await inline_image_urls(req, get_adapter("gemini"), fetch=fake_fetch) is req
    with pytest.raises(BadRequestError, match="BYOK_FETCH_IMAGE_URLS"):
        get_adapter("gemini").build_request(req, api_key="k")


async def test_with_the_setting_gemini_gets_the_image_inline_once_per_url(settings):
    settings.BYOK = {**settings.BYOK, "FETCH_IMAGE_URLS": True}
    fetched: list[str] = []

    async def counting(url: str) -> ImagePart:
        fetched.append(url)
        return await fake_fetch(url)

    files_uri = ImagePart(url="https://generativelanguage.googleapis.com/v1beta/files/f1", media_type="image/png")
    req = ask(ImagePart(url=CAT, detail="low"), ImagePart(url=CAT), files_uri)
    out = await inline_image_urls(req, get_adapter("gemini"), fetch=counting)
    assert fetched == [CAT]
    parts = get_adapter("gemini").build_request(out, api_key="k").json["contents"][0]["parts"]
    inline = {"inlineData": {"mimeType": "image/png", "data": base64.b64encode(PNG).decode()}}
    assert parts[1:] == [inline, inline, {"fileData": {"mimeType": "image/png", "fileUri": files_uri.url}}]
    # Providers that fetch URLs themselves are left alone.
    assert await inline_image_urls(req, get_adapter("anthropic"), fetch=counting) is req


class _Images(BaseHTTPRequestHandler):
    def do_GET(self):
        routes = {
            "/cat.png": (200, "image/png", PNG),
            "/page.html": (200, "text/html", b"<html></html>"),
            "/big.png": (200, "image/png", PNG * 50),
            "/gone.png": (404, "text/plain", b"no"),
            "/moved.png": (302, "text/plain", b""),
        }
        status, media_type, body = routes.get(self.path, (404, "text/plain", b""))
        self.send_response(status)
        self.send_header("content-type", media_type)
        self.send_header("content-length", str(len(body)))
        if status == 302:
            self.send_header("location", "/cat.png")
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def image_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Images)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


async def test_the_fetcher_reads_an_image(image_server):
    part = await fetch_image(f"{image_server}/cat.png", max_bytes=10_000, allow_private=True)
    assert (part.media_type, base64.b64decode(part.data or "")) == ("image/png", PNG)


@pytest.mark.parametrize(
    ("path", "needle"),
    [
        ("/page.html", "not an image"),
        ("/big.png", "larger than"),
        ("/gone.png", "HTTP 404"),
        ("/moved.png", "HTTP 302"),  # redirects are not followed
    ],
)
async def test_the_fetcher_refuses_what_is_not_a_small_image(image_server, path, needle):
    with pytest.raises(BadRequestError, match=needle) as info:
        await fetch_image(f"{image_server}{path}", max_bytes=1000, allow_private=True)
    assert info.value.status_code == 400


@pytest.mark.parametrize(
    ("url", "needle"),
    [
        ("http://127.0.0.1:9/cat.png", "private"),
        ("http://169.254.169.254/latest/meta-data", "private"),
        ("http://[::1]:9/cat.png", "private"),
        ("ftp://example.com/cat.png", "http"),
        ("https://user:pw@example.com/cat.png", "credentials"),
    ],
)
async def test_the_fetcher_never_reaches_private_addresses(url, needle):
    with pytest.raises(BadRequestError, match=needle):
        await fetch_image(url, max_bytes=1000)


@pytest.mark.django_db(transaction=True)
async def test_the_gateway_inlines_before_sending_to_gemini(handler, settings, monkeypatch):
    settings.BYOK = {**settings.BYOK, "FETCH_IMAGE_URLS": True}

    async def fetched(url: str, *, max_bytes: int, allow_private: bool = False) -> ImagePart:
        assert (url, max_bytes) == (CAT, settings.BYOK["FETCH_IMAGE_MAX_BYTES"])
        return await fake_fetch(url)

    monkeypatch.setattr(images, "fetch_image", fetched)
    await sync_to_async(registry.register_provider)(
        kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.5-flash"
    )
    answer = {"candidates": [{"content": {"parts": [{"text": "A cat."}]}, "finishReason": "STOP"}]}
    url = "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"
    with respx.mock:
        route = respx.post(url).respond(200, json=answer)
        result = await handler.chat(ask(ImagePart(url=CAT)))
    assert result.response.text == "A cat."
    sent = json.loads(route.calls.last.request.content)
    assert sent["contents"][0]["parts"][1]["inlineData"]["mimeType"] == "image/png"
