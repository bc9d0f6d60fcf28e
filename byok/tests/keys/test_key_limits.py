"""A gateway key's limits through the HTTP front ends in process: rpm, and a budget lowered below what is spent.

Across processes (PostgreSQL + Redis): ``e2e/test_gateway_limits.py``; the engine: ``test_quota_state.py``.
"""

from __future__ import annotations

import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from byok import registry
from byok.api import chat_entry
from byok.audit import Actor
from byok.gateway.handler import BYOKHandler
from byok.keys import lookup, store
from byok.state import MemoryStateBackend, MemoryStore

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
STAFF = Actor("alice", "192.0.2.7")
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}
BODY = {"model": "openai/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}], "max_tokens": 4}


@pytest.fixture(autouse=True)
def handler(monkeypatch):
    lookup.clear_cache()
    store_ = MemoryStore()
    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store_), rand=lambda: 0.5)
    monkeypatch.setattr(chat_entry, "get_handler", lambda: h)
    registry.register_provider(kind="openai", name="openai", api_key="sk-test-0123456789abcdef",
                               default_model="gpt-4o-mini", max_retries=0)  # fmt: skip
    yield h
    lookup.clear_cache()


def new_key(django_user_model, **limits) -> tuple[int, AsyncClient]:
    django_user_model.objects.create_user("carol")
    row, key = store.create_key(actor=STAFF, name="ci", user="carol", **limits)
    return row.pk, AsyncClient(AUTHORIZATION=f"Bearer {key}")


@respx.mock
async def test_a_keys_rpm_answers_429_rate_limited_with_retry_after(django_user_model):
    route = respx.post(OPENAI).respond(200, json=ANSWER)
    _, api = await sync_to_async(new_key)(django_user_model, rpm=2)
    statuses = [(await api.post("/v1/chat/completions", BODY, "application/json")).status_code for _ in range(2)]
    refused = await api.post("/v1/chat/completions", BODY, "application/json")
    byok_shape = await api.post("/api/chat", {"messages": BODY["messages"], "max_tokens": 4}, "application/json")
    assert statuses == [200, 200] and route.call_count == 2
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "rate_limited")
    assert 1 <= int(refused["Retry-After"]) <= 61
    assert (byok_shape.status_code, byok_shape.json()["code"]) == (429, "rate_limited")


@respx.mock
async def test_a_keys_budget_lowered_below_spent_refuses_the_next_request_at_once(
    django_user_model, admin_client, handler
):
    route = respx.post(OPENAI).respond(200, json=ANSWER)
    key_id, api = await sync_to_async(new_key)(django_user_model, budget={"tokens": 1000, "period": "month"})
    for _ in range(3):
        assert (await api.post("/v1/chat/completions", BODY, "application/json")).status_code == 200  # 36 spent
    changed = await sync_to_async(admin_client.patch)(
        f"/api/keys/{key_id}", {"budget": {"tokens": 20, "period": "month"}}, content_type="application/json"
    )
    assert changed.status_code == 200, changed.content
    status = await handler.state().check_budget(f"gwkey:{key_id}", token_limit=20, spend_limit=None, period="month")
    assert (status.used_tokens, status.reserved_tokens, status.ok) == (36, 0, False)

    refused = await api.post("/v1/chat/completions", BODY, "application/json")
    assert (refused.status_code, refused.json()["error"]["code"]) == (429, "budget_exceeded")
    assert "This key's monthly token budget (20 tokens)" in refused.json()["error"]["message"]
    assert int(refused["Retry-After"]) > 0 and route.call_count == 3
