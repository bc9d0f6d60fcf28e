"""`POST /v1/embeddings` in process: the official openai SDK through an in-memory ASGI transport, over the real
handler with upstreams faked by respx (fixtures from the providers' docs: byok/tests/fixtures/embeddings)."""

from __future__ import annotations

import base64
import json
import struct
from decimal import Decimal
from pathlib import Path

import httpx
import httpx2
import openai
import pytest
import respx
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient

from byok import registry
from byok.api.views_embeddings import encode_base64
from byok.models import UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "embeddings"
OPENAI_DOC = json.loads((FIXTURES / "openai_embeddings.json").read_text())
GEMINI_DOC = json.loads((FIXTURES / "gemini_batch_embed.json").read_text())
OPENAI = "https://api.openai.com/v1/embeddings"
GEMINI = "https://generativelanguage.googleapis.com/v1beta/models/gemini-embedding-001:batchEmbedContents"


@pytest.fixture
def handler(chat_handler):
    return chat_handler


@pytest.fixture
def sdk(token):
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1",
        api_key=token,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=ASGIHandler())),
    )


async def register(**kw):
    kw.setdefault("api_key", "sk-test-0123456789abcdef")
    return await sync_to_async(registry.register_provider)(**kw)


async def usage_rows(handler):
    await handler.flush_usage()
    return await sync_to_async(lambda: list(UsageRecord.objects.order_by("id")))()


def openai_answer(n: int, dims: int = 3, tokens: int = 8) -> dict:
    data = [{"object": "embedding", "index": i, "embedding": [0.5 + i, -0.25, 0.125][:dims]} for i in range(n)]
    return {"object": "list", "data": data[::-1], "model": "text-embedding-3-small", "usage": {"prompt_tokens": tokens}}


async def test_openai_string_input_from_the_docs_example(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=OPENAI_DOC)
        got = await sdk.embeddings.create(model="oai/text-embedding-ada-002", input="The food was delicious")
    sent = json.loads(route.calls.last.request.content)
    assert sent == {"model": "text-embedding-ada-002", "input": ["The food was delicious"], "encoding_format": "float"}
    assert route.calls.last.request.headers["authorization"] == "Bearer sk-test-0123456789abcdef"
    assert got.data[0].embedding == pytest.approx([0.0023064255, -0.009327292, -0.0028842222])
    assert got.data[0].index == 0 and got.object == "list"
    assert got.model == "oai/text-embedding-ada-002" and got.usage.prompt_tokens == got.usage.total_tokens == 8
    rows = await usage_rows(handler)
    assert [(r.interface, r.provider_name, r.model, r.tokens_in, r.tokens_out) for r in rows] == [
        ("embeddings", "oai", "text-embedding-ada-002", 8, 0)
    ]
    assert rows[0].cost == Decimal("0.00000080")  # 8 input tokens at the catalog's $0.10 per million


async def test_list_input_dimensions_user_and_order_by_index(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_answer(2, dims=2))
        got = await sdk.embeddings.create(
            model="oai/text-embedding-3-small", input=["a", "b"], dimensions=2, user="u-1", encoding_format="float"
        )
    sent = json.loads(route.calls.last.request.content)
    assert sent["input"] == ["a", "b"] and sent["dimensions"] == 2 and sent["user"] == "u-1"
    assert [d.embedding for d in got.data] == [[0.5, -0.25], [1.5, -0.25]]  # upstream answered in reverse order
    assert [d.index for d in got.data] == [0, 1]


async def test_base64_is_little_endian_float32_and_the_sdk_decodes_it(handler, sdk, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_answer(1))
        raw = await api.post(
            "/v1/embeddings",
            {"model": "oai/text-embedding-3-small", "input": "x", "encoding_format": "base64"},
            "application/json",
        )
        decoded = await sdk.embeddings.create(model="oai/text-embedding-3-small", input="x")  # SDK asks base64
    text = raw.json()["data"][0]["embedding"]
    assert struct.unpack("<3f", base64.b64decode(text)) == (0.5, -0.25, 0.125)
    assert decoded.data[0].embedding == [0.5, -0.25, 0.125]
    assert encode_base64((1.0,)) == base64.b64encode(b"\x00\x00\x80\x3f").decode()


async def test_gemini_batch_embed_contents(handler, sdk):
    await register(kind="gemini", name="gem", default_model="gemini-2.5-flash")
    with respx.mock:
        route = respx.post(GEMINI).respond(200, json=GEMINI_DOC)
        got = await sdk.embeddings.create(
            model="gem/gemini-embedding-001", input=["What is the meaning of life?", "x"], dimensions=3
        )
    request = route.calls.last.request
    assert request.headers["x-goog-api-key"] == "sk-test-0123456789abcdef" and "key=" not in str(request.url)
    assert json.loads(request.content) == {
        "requests": [
            {
                "model": "models/gemini-embedding-001",
                "outputDimensionality": 3,
                "content": {"parts": [{"text": "What is the meaning of life?"}]},
            },
            {"model": "models/gemini-embedding-001", "outputDimensionality": 3, "content": {"parts": [{"text": "x"}]}},
        ]
    }
    assert got.data[1].embedding == pytest.approx([-0.025, 0.5, 0.125])
    assert got.usage.prompt_tokens > 0  # Gemini does not count: byok's estimate
    rows = await usage_rows(handler)
    assert rows[0].interface == "embeddings" and rows[0].tokens_in == got.usage.prompt_tokens


async def test_openai_compatible_posts_to_its_base_url(handler, sdk, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    await register(kind="openai_compatible", name="local", default_model="m", base_url="http://127.0.0.1:9/v1")
    with respx.mock:
        route = respx.post("http://127.0.0.1:9/v1/embeddings").respond(200, json=openai_answer(1))
        got = await sdk.embeddings.create(model="local/nomic-embed", input="hi")
    assert route.called and got.data[0].embedding == [0.5, -0.25, 0.125]
    rows = await usage_rows(handler)
    assert rows[0].model == "nomic-embed" and rows[0].cost is None  # a model the catalog does not price: unknown


@pytest.mark.parametrize("kind,name", [("anthropic", "claude"), ("deepseek", "ds")])
async def test_providers_without_embeddings_answer_400_without_an_upstream_call(handler, sdk, kind, name):
    await register(kind=kind, name=name, default_model="x-model")
    with respx.mock(assert_all_called=False) as mock:
        catch_all = mock.route().respond(500)
        with pytest.raises(openai.BadRequestError) as caught:
            await sdk.embeddings.create(model=f"{name}/x-model", input="hi")
    assert not catch_all.called
    error = caught.value.body
    assert error["code"] == "embeddings_not_supported" and name in error["message"]


@pytest.mark.parametrize(
    "body,param",
    [
        ({"model": "oai/e"}, "input"),
        ({"input": "x"}, "model"),
        ({"model": "oai/e", "input": [1, 2, 3]}, "input"),
        ({"model": "oai/e", "input": [[1, 2]]}, "input"),
        ({"model": "oai/e", "input": []}, "input"),
        ({"model": "oai/e", "input": ""}, "input[0]"),
        ({"model": "oai/e", "input": "x", "dimensions": 0}, "dimensions"),
        ({"model": "oai/e", "input": "x", "encoding_format": "int8"}, "encoding_format"),
        ({"model": "oai/e", "input": "x", "nope": 1}, "nope"),
    ],
)
async def test_bad_input_is_a_400_naming_the_param(handler, api, body, param):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock(assert_all_called=False) as mock:
        upstream = mock.route().respond(500)
        response = await api.post("/v1/embeddings", body, "application/json")
    assert response.status_code == 400 and response.json()["error"]["param"] == param
    assert not upstream.called
    if body.get("input") in ([1, 2, 3], [[1, 2]]):
        assert "token arrays" in response.json()["error"]["message"]


async def test_method_and_auth(handler, api):
    assert (await api.get("/v1/embeddings")).status_code == 405
    assert (await AsyncClient().post("/v1/embeddings", {}, "application/json")).status_code == 401


async def test_an_upstream_429_fails_over_to_the_next_key(handler, sdk):
    provider = await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    await sync_to_async(registry.add_key)(provider.pk, api_key="sk-second-0123456789abcdef")
    seen = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request.headers["authorization"])
        if len(seen) == 1:
            return httpx.Response(429, json={"error": {"message": "slow down", "type": "rate_limit_error"}})
        return httpx.Response(200, json=openai_answer(1))

    with respx.mock:
        respx.post(OPENAI).mock(side_effect=answer)
        raw = await sdk.embeddings.with_raw_response.create(model="oai/text-embedding-3-small", input="hi")
    assert len(seen) == 2 and seen[0] != seen[1]
    assert raw.headers["x-byok-attempts"] == "2" and raw.parse().data[0].embedding == [0.5, -0.25, 0.125]
    rows = await usage_rows(handler)
    assert rows[-1].attempts == 2 and rows[-1].interface == "embeddings"


async def test_a_gateway_keys_allow_list_and_a_users_budget_apply(handler, django_user_model):
    from byok import budget_store
    from byok.audit import Actor
    from byok.keys import store

    await register(kind="openai", name="oai", default_model="gpt-4o")
    staff = Actor("alice", "203.0.113.9")

    def make():
        user = django_user_model.objects.create_user("erin")
        return user.pk, store.create_key(actor=staff, user="erin", name="ci", models=["oai/text-embedding-3-*"])[1]

    erin, key = await sync_to_async(make)()
    gateway = AsyncClient(AUTHORIZATION=f"Bearer {key}")
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_answer(1))
        ok = await gateway.post(
            "/v1/embeddings", {"model": "oai/text-embedding-3-small", "input": "x"}, "application/json"
        )
        refused = await gateway.post(
            "/v1/embeddings", {"model": "oai/text-embedding-ada-002", "input": "x"}, "application/json"
        )
        assert ok.status_code == 200 and route.call_count == 1
        assert refused.status_code == 403 and refused.json()["error"]["code"] == "model_not_allowed"
        await sync_to_async(budget_store.create_budget)(actor=staff, user=erin, token_limit=1)
        spent = await gateway.post(
            "/v1/embeddings", {"model": "oai/text-embedding-3-small", "input": "many words here"}, "application/json"
        )
    assert spent.status_code == 429 and route.call_count == 1  # refused before any upstream call
    rows = await usage_rows(handler)
    assert rows[0].interface == "embeddings" and rows[0].gateway_key_id is not None
