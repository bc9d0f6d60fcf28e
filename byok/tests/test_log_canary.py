"""No secret in any log line, at DEBUG for every logger, text and JSON.

Every logger (root, byok.*, django.*, daphne, httpx, httpcore, asyncio, …) is
set to DEBUG; the real request path runs — byok's ASGI app, its middleware,
the handler, httpx/httpcore over real TCP to the fake provider (in this
process) — with a known provider key and a known byok token: complete
answers, a stream, a websocket-less error path where the provider echoes the
key back (Gemini's API_KEY_INVALID), a 401 from the provider and a wrong
token. Then every line the configured handler wrote (and the same records
through the JSON formatter) is searched for the key, the token, and every
8-character slice of either.
"""

from __future__ import annotations

import io
import logging

import httpx
import orjson
import pytest
from rest_framework.authtoken.models import Token

from byok import registry
from byok.gateway import handler as handler_module
from byok.gateway.handler import get_handler
from byok.logfmt import JsonFormatter
from byok.secrets import RedactingFilter
from devtools.fakeprovider.server import start_server

pytestmark = [pytest.mark.django_db(transaction=True)]

PROVIDER_KEY = "sk-canarylog-4b8e1f6a9d2c7e3b5a0f"
GEMINI_KEY = "AIzaCanaryLog7Q2w9E4r1T6y3U8i5O0p"
TOKEN = "c4n4ry70k3n0f7h3u53r5f0rl0g5abcdef012345"  # a DRF token is 40 characters
NAMED = ("", "byok", "byok.request", "django", "django.request", "django.server", "daphne", "httpx", "httpcore")


def _slices(secret: str) -> set[str]:
    return {secret[i : i + 8] for i in range(len(secret) - 7)}


@pytest.fixture
def every_logger_at_debug():
    """Every logger at DEBUG; the configured console handler writes into a buffer; a JSON twin beside it."""
    import byok_project.asgi  # noqa: F401 - sets Django up (and its logging) before the handlers are swapped

    names = set(NAMED) | set(logging.root.manager.loggerDict)
    loggers = [logging.getLogger(n) if n else logging.getLogger() for n in names]
    saved_levels = [(lg, lg.level) for lg in loggers]
    for lg in loggers:
        lg.setLevel(logging.DEBUG)
    console = next(h for h in logging.getLogger().handlers if h.get_name() == "console")
    text = io.StringIO()
    saved_stream = console.setStream(text)
    saved_level = console.level
    console.setLevel(logging.DEBUG)
    as_json = io.StringIO()
    twin = logging.StreamHandler(as_json)
    twin.addFilter(RedactingFilter())
    twin.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(twin)
    try:
        yield text, as_json
    finally:
        logging.getLogger().removeHandler(twin)
        console.setStream(saved_stream)
        console.setLevel(saved_level)
        for lg, level in saved_levels:
            lg.setLevel(level)


async def test_no_secret_in_any_log_line_at_debug(every_logger_at_debug, alice, monkeypatch, settings):
    # At test time, not import time: a copy of BYOK taken at import would miss this run's own Redis prefix
    # (conftest) and share key cooldowns with every other process on the default prefix.
    settings.ALLOWED_HOSTS = ["127.0.0.1"]
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    from asgiref.sync import sync_to_async

    from byok_project.asgi import application

    monkeypatch.setattr(handler_module, "_handler", None)
    runner, fake = await start_server("127.0.0.1", 0, {"chunks": 4})
    try:

        def setup() -> None:
            registry.register_provider(
                kind="openai", name="canary", api_key=PROVIDER_KEY, base_url=f"{fake}/v1", default_model="gpt-4o-mini"
            )
            registry.register_provider(
                kind="gemini",
                name="gcanary",
                api_key=GEMINI_KEY,
                base_url=f"{fake}/cfg/fault=gemini_key_invalid/v1beta",
                default_model="gemini-2.0-flash",
                max_retries=0,
            )
            registry.register_provider(
                kind="openai",
                name="refused",
                api_key=PROVIDER_KEY + "-invalid",  # the fake provider answers 401 to a key containing "invalid"
                base_url=f"{fake}/v1",
                default_model="gpt-4o-mini",
                max_retries=0,
            )
            Token.objects.create(user=alice, key=TOKEN)

        await sync_to_async(setup)()
        good = {"Authorization": f"Bearer {TOKEN}"}
        ask = {"messages": [{"role": "user", "content": "Hi"}]}
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30) as http:
            answers = [
                await http.post("/v1/chat/completions", json={"model": "canary/gpt-4o-mini", **ask}, headers=good),
                await http.post(
                    "/v1/chat/completions", json={"model": "canary/gpt-4o-mini", "stream": True, **ask}, headers=good
                ),
                await http.post("/api/chat", json={"provider": "canary", **ask}, headers=good),
                await http.post(
                    "/v1/chat/completions", json={"model": "gcanary/gemini-2.0-flash", **ask}, headers=good
                ),
                await http.post("/v1/chat/completions", json={"model": "refused/gpt-4o-mini", **ask}, headers=good),
                await http.post(
                    "/v1/chat/completions",
                    json={"model": "canary/gpt-4o-mini", **ask},
                    headers={"Authorization": f"Bearer {TOKEN[:-4]}wxyz"},
                ),
            ]
        await get_handler().flush_usage()
        await get_handler().aclose()
    finally:
        await runner.cleanup()
    assert [a.status_code for a in answers] == [200, 200, 200, 502, 502, 401]
    text, as_json = (buffer.getvalue() for buffer in every_logger_at_debug)
    lines = text.splitlines() + as_json.splitlines()
    # The path ran and was logged at DEBUG: the per-request lines and httpcore's own.
    assert sum("byok.request chat request_id=" in line for line in lines) == 5
    assert any("httpcore" in line for line in lines) and any("HTTP Request: POST" in line for line in lines)
    for line in as_json.splitlines():
        orjson.loads(line)  # every JSON line parses
    for secret in (PROVIDER_KEY, GEMINI_KEY, TOKEN):
        for piece in _slices(secret):
            found = [line for line in lines if piece in line]
            assert not found, f"{piece!r} of a secret in: {found[:2]}"
