"""A stored key that an HTTP header cannot carry (stored before keys were checked) is a key fault, not a 500.

httpx encodes header values as ASCII and raises `UnicodeEncodeError` while it builds the request; byok
classifies that where the request is sent: the key is marked invalid (audited), the next key or provider
is tried, and a caller with no other key gets a JSON error.
"""

from __future__ import annotations

import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from django.urls import reverse
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry
from byok.models import ApiKey, AuditEvent
from byok.providers.types import ChatRequest, Message, StreamDone
from byok.secrets import fingerprint, hint

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
GOOD = "sk-good-0123456789abcdef"
BAD = "sk-caf\u00e9-0123456789abcdef"
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _store_unchecked(provider, secret: str) -> ApiKey:
    """A key as an older byok stored it: no validation."""
    return ApiKey.objects.create(provider=provider, secret=secret, hint=hint(secret), fingerprint=fingerprint(secret))


@pytest.fixture
def handler(memory_handler, monkeypatch):
    monkeypatch.setattr(chat_entry, "get_handler", lambda: memory_handler)
    return memory_handler


def _ask(stream: bool = False) -> ChatRequest:
    return ChatRequest(model="openai/gpt-4o", messages=(Message(role="user", content="hi"),), stream=stream)


async def test_the_bad_key_is_marked_invalid_audited_and_the_next_key_answers(handler):
    provider = await sync_to_async(registry.register_provider)(kind="openai", name="openai", api_key=GOOD)
    bad = await sync_to_async(_store_unchecked)(provider, BAD)
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=ANSWER)
        answers = [await handler.chat(_ask()) for _ in range(2)]  # round robin: the bad key comes up once
    assert [a.key_hint for a in answers] == [hint(GOOD)] * 2
    assert {c.request.headers["authorization"] for c in route.calls} == {f"Bearer {GOOD}"}
    await sync_to_async(bad.refresh_from_db)()
    assert bad.status == "invalid" and "HTTP header" in bad.last_error
    events = await sync_to_async(list)(
        AuditEvent.objects.filter(action="key.invalid").values_list("key_fingerprint", flat=True)
    )
    assert events == [bad.fingerprint]


async def test_streaming_skips_the_bad_key_too(handler):
    provider = await sync_to_async(registry.register_provider)(kind="openai", name="openai")
    await sync_to_async(_store_unchecked)(provider, BAD)
    await sync_to_async(registry.add_key)(provider.pk, GOOD)
    body = (
        b'data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"Hi"},"finish_reason":"stop"}]}\n\n'
        b"data: [DONE]\n\n"
    )
    with respx.mock:
        respx.post(OPENAI).respond(200, content=body, headers={"content-type": "text/event-stream"})
        events = [e async for e in handler.stream(_ask(stream=True))]
    assert isinstance(events[-1], StreamDone)
    assert await sync_to_async(ApiKey.objects.filter(status="invalid").count)() == 1


async def test_a_provider_with_only_the_bad_key_answers_a_json_error(handler, django_user_model):
    def setup():
        provider = registry.register_provider(kind="openai", name="openai")
        _store_unchecked(provider, BAD)
        return Token.objects.create(user=django_user_model.objects.create_user("carol")).plaintext

    token = await sync_to_async(setup)()
    client = AsyncClient(AUTHORIZATION=f"Bearer {token}")
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=ANSWER)
        response = await client.post(
            "/v1/chat/completions",
            {"model": "openai/gpt-4o", "messages": [{"role": "user", "content": "hi"}]},
            content_type="application/json",
        )
    assert route.call_count == 0
    assert response.status_code == 502 and response["content-type"].startswith("application/json")
    assert BAD not in response.content.decode()


def test_the_admin_test_action_reports_the_fault_instead_of_crashing(admin_browser):
    from byok.gateway.handler import get_handler

    provider = registry.register_provider(kind="openai", name="oa")
    _store_unchecked(provider, BAD)
    get_handler().invalidate()
    with respx.mock:
        respx.post(OPENAI).respond(200, json=ANSWER)
        response = admin_browser.post(
            reverse("admin:byok_provider_changelist"),
            {"action": "test_providers", "_selected_action": [provider.pk]},
            follow=True,
        )
    assert response.status_code == 200 and b"Oa: failed" in response.content
    assert BAD not in response.content.decode()
