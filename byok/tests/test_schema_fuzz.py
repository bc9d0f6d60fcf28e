"""Schema fuzzing: every management operation of `/api/schema`, driven by schemathesis in process.

Each operation gets a bounded number of generated requests (valid and
invalid, per the schema) through the WSGI app with a staff token. No answer
may be a 5xx, and every answer must match the schema: a documented status,
the documented content type, a body of the documented shape. Half the
generated ids are swapped for a provider and key that exist, so the
success paths are fuzzed too, not only the 404s. Upstream calls (the
provider test) are answered by respx, never sent.
"""

from __future__ import annotations

import httpx
import pytest
import respx
import schemathesis
from django.core.signals import request_finished, request_started
from django.core.wsgi import get_wsgi_application
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from rest_framework.authtoken.models import Token
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    negative_data_rejection,
    response_schema_conformance,
    status_code_conformance,
)

from byok import registry
from byok.models import ApiKey, Provider
from byok.state import MemoryStateBackend, MemoryStore
from byok.tests.usage_fakes import KeptUsage

MANAGEMENT = r"^/api/(providers|audit-events|usage|catalog|budgets)"
MAX_EXAMPLES = 25

schema = schemathesis.openapi.from_wsgi("/api/schema", get_wsgi_application()).include(path_regex=MANAGEMENT)
# The staff token is sent by the test itself: no generated Authorization header.
schema.config.generation.update(max_examples=MAX_EXAMPLES, allow_x00=True, with_security_parameters=False)

CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_schema_conformance,
    negative_data_rejection,
]


@pytest.fixture
def staff_token(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}  # no DNS look-ups for generated hosts
    user = django_user_model.objects.create_user("fuzz-admin", password="fuzz-admin-pass", is_staff=True)
    return Token.objects.create(user=user).plaintext


@pytest.fixture
def keep_connection():
    """As Django's test client does: a request must not close the test's database connection (and transaction)."""
    request_started.disconnect(close_old_connections)
    request_finished.disconnect(close_old_connections)
    yield
    request_started.connect(close_old_connections)
    request_finished.connect(close_old_connections)


@pytest.fixture
def upstream(monkeypatch):
    """A handler with in-memory state whose upstream is respx: every provider answers 503."""
    from byok.gateway import handler as handler_module

    store = MemoryStore()
    monkeypatch.setattr(
        handler_module,
        "_handler",
        handler_module.BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), usage=KeptUsage()),
    )
    with respx.mock(assert_all_called=False) as mock:
        mock.route().mock(
            return_value=httpx.Response(503, json={"error": {"message": "fuzzing", "type": "server_error"}})
        )
        yield mock


def _existing() -> tuple[int, int]:
    """A provider with an active key, created again whenever a fuzzed DELETE removed it."""
    provider = Provider.objects.filter(name="fuzz-target").first()
    if provider is None:
        provider = registry.register_provider(
            kind="openai", name="fuzz-target", api_key="sk-fuzz-0000000000000000", max_retries=0
        )
    key = ApiKey.objects.filter(provider=provider, status=ApiKey.Status.ACTIVE).order_by("id").first()
    if key is None:
        key = registry.add_key(provider.pk, "sk-fuzz-1111111111111111")
    return provider.pk, key.pk


def _valid_id(value) -> bool:
    """A generated id the schema allows (only those are swapped: an invalid one must stay invalid)."""
    return isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 2**63 - 1


@pytest.mark.django_db
@schema.parametrize()
@settings(max_examples=MAX_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_management_api_conforms_to_its_schema(case, staff_token, upstream, keep_connection):
    params = case.path_parameters or {}
    if _valid_id(params.get("id")) and params["id"] % 2 == 0:
        provider_id, key_id = _existing()
        params["id"] = provider_id
        if _valid_id(params.get("key_id")):
            params["key_id"] = key_id
    case.call_and_validate(headers={"Authorization": f"Bearer {staff_token}"}, checks=CHECKS)


# -- the chat endpoints (described by byok.api.openapi_chat) ------------------------------------------

CHAT = r"^/(v1/|api/chat$)"
CHAT_EXAMPLES = 20

chat_schema = schemathesis.openapi.from_wsgi("/api/schema", get_wsgi_application()).include(path_regex=CHAT)
chat_schema.config.generation.update(max_examples=CHAT_EXAMPLES, allow_x00=True, with_security_parameters=False)

COMPLETION = {
    "id": "chatcmpl-fuzz",
    "object": "chat.completion",
    "created": 0,
    "model": "gpt-fuzz",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hello."}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5},
}
CHUNKS = (
    b"data: "
    b'{"id":"c","object":"chat.completion.chunk","created":0,"model":"gpt-fuzz","choices":[{"index":0,"delta":{"role":"assistant","content":"Hel"},"finish_reason":null}]}\n\n'
    b"data: "
    b'{"id":"c","object":"chat.completion.chunk","created":0,"model":"gpt-fuzz","choices":[{"index":0,"delta":{"content":"lo."},"finish_reason":"stop"}]}\n\n'
    b"data: "
    b'{"id":"c","object":"chat.completion.chunk","created":0,"model":"gpt-fuzz","choices":[],"usage":{"prompt_tokens":3,"completion_tokens":2,"total_tokens":5}}\n\n'
    b"data: [DONE]\n\n"
)


def _upstream_answer(request: httpx.Request) -> httpx.Response:
    """A healthy OpenAI: a completion, or its SSE stream when asked to stream; embeddings, one per input."""
    import orjson

    if request.url.path.endswith("/embeddings"):
        inputs = orjson.loads(request.content)["input"]
        data = [{"object": "embedding", "index": i, "embedding": [0.5, -0.25]} for i in range(len(inputs))]
        return httpx.Response(200, json={"object": "list", "data": data, "usage": {"prompt_tokens": len(inputs)}})
    if orjson.loads(request.content).get("stream"):
        return httpx.Response(200, content=CHUNKS, headers={"content-type": "text/event-stream"})
    return httpx.Response(200, json=COMPLETION)


@pytest.fixture
def chat_upstream(monkeypatch, settings):
    """One OpenAI provider whose upstream (respx) always answers 200, and a handler with in-memory state."""
    from byok.gateway import handler as handler_module

    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    store = MemoryStore()
    monkeypatch.setattr(
        handler_module,
        "_handler",
        handler_module.BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), usage=KeptUsage()),
    )
    provider = registry.register_provider(
        kind="openai", name="fuzz-chat", api_key="sk-fuzz-2222222222222222", max_retries=0
    )
    with respx.mock(assert_all_called=False) as mock:
        mock.post(url__startswith=provider.base_url.rstrip("/")).mock(side_effect=_upstream_answer)
        yield provider


@pytest.fixture
def user_token(django_user_model, settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    user = django_user_model.objects.create_user("fuzz-user", password="fuzz-user-pass")
    return Token.objects.create(user=user).plaintext


@pytest.mark.django_db
@chat_schema.parametrize()
@settings(max_examples=CHAT_EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True)
def test_chat_api_conforms_to_its_schema(case, user_token, chat_upstream, keep_connection):
    """The chat operations, fuzzed as a normal user against a provider that always answers 200.

    So no answer may be a 5xx at all (the documented 502/503/504 need a failing upstream).
    `text/event-stream` answers (`stream: true`) are checked for status and content type
    only: schemathesis has no deserializer for them, so their body is not validated
    against the JSON schemas (it is a string in the schema).
    """
    params = case.path_parameters or {}
    if isinstance(params.get("model"), str) and len(params["model"]) % 2 == 0:
        params["model"] = f"fuzz-chat/{chat_upstream.default_model}"  # the success path too
    if isinstance(case.body, dict) and "stream" not in case.body and len(case.body) % 2 == 1:
        case.body["stream"] = True  # and streams: a valid field added, so an invalid body stays invalid
    case.call_and_validate(headers={"Authorization": f"Bearer {user_token}"}, checks=CHECKS)
