"""`/v1/messages`, `/v1/messages/count_tokens` and `/v1/models` for Anthropic clients, in process: the
official anthropic SDK through an in-memory ASGI transport, over the real handler with upstreams faked
by respx. The live counterpart (a real server, the fake provider, every kind) is test_anthropic_sdk_live.
"""

from __future__ import annotations

import asyncio
import json

import anthropic
import httpx
import httpx2
import pytest
import respx
from asgiref.sync import sync_to_async
from django.core.handlers.asgi import ASGIHandler
from django.test import AsyncClient, AsyncRequestFactory
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry, sse, views_anthropic
from byok.gateway.handler import BYOKHandler
from byok.models import UsageRecord
from byok.state import MemoryStateBackend, MemoryStore
from byok.tests.chat_fakes import Pieces
from byok.tests.providers.replay import corpus_case

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
ANTHROPIC = "https://api.anthropic.com/v1/messages"
USER = {"role": "user", "content": "Hi"}
SSE = {"content-type": "text/event-stream"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}


@pytest.fixture
def handler(monkeypatch):
    store = MemoryStore()

    async def no_sleep(seconds):
        return None

    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), sleep=no_sleep, rand=lambda: 0.5)
    monkeypatch.setattr(chat_entry, "get_handler", lambda: h)
    return h


@pytest.fixture
async def token(django_user_model):
    def make():
        user = django_user_model.objects.create_user("carol")
        return Token.objects.create(user=user).plaintext

    return await sync_to_async(make)()


def client(**kw) -> anthropic.AsyncAnthropic:
    return anthropic.AsyncAnthropic(
        base_url="http://testserver",
        max_retries=0,
        # Django's handler takes a plain dict scope where httpx2 promises a MutableMapping: the same at run time.
        http_client=httpx2.AsyncClient(transport=httpx2.ASGITransport(app=ASGIHandler())),  # type: ignore[arg-type]
        **kw,
    )


@pytest.fixture
def sdk(token):
    return client(api_key=token)


async def register(**kw):
    kw.setdefault("api_key", "sk-test-0123456789abcdef")
    return await sync_to_async(registry.register_provider)(**kw)


def openai_json(text="Hello!", *, tool_calls=None, finish="stop"):
    message = {"role": "assistant", "content": text, "tool_calls": tool_calls}
    return {
        "id": "x",
        "object": "chat.completion",
        "model": "gpt-4o",
        "choices": [{"index": 0, "message": message, "finish_reason": finish}],
        "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
    }


async def usage_rows(handler):
    await handler.flush_usage()
    return await sync_to_async(lambda: list(UsageRecord.objects.order_by("id")))()


async def test_create_in_front_of_openai_with_a_tool_round_trip(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    call = {"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json(None, tool_calls=[call], finish="tool_calls"))
        raw = await sdk.messages.with_raw_response.create(
            model="oai/gpt-4o", max_tokens=256, system="Be brief.", messages=[USER], tools=[WEATHER]
        )
        message = await raw.parse()
        assert raw.headers["x-byok-provider"] == "oai" and raw.headers["x-byok-overhead-ms"]
        assert message.stop_reason == "tool_use" and message.model == "oai/gpt-4o"
        (use,) = message.content
        assert (use.type, use.id, use.name, use.input) == ("tool_use", "call_7", "get_weather", {"city": "Paris"})
        assert message.usage.input_tokens == 9 and message.usage.output_tokens == 3
        sent = json.loads(route.calls.last.request.content)
        assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
        assert sent["tools"][0]["function"]["parameters"] == WEATHER["input_schema"]
        assert sent.get("max_completion_tokens", sent.get("max_tokens")) == 256

        route = respx.post(OPENAI).respond(200, json=openai_json("18C and sunny."))
        history = [USER, message.to_param()]
        result = {"type": "tool_result", "tool_use_id": use.id, "content": "18C, sunny"}
        answer = await sdk.messages.create(
            model="oai/gpt-4o",
            max_tokens=256,
            messages=[*history, {"role": "user", "content": [result]}],
            tools=[WEATHER],
        )
    assert answer.content[0].text == "18C and sunny." and answer.stop_reason == "end_turn"
    sent = json.loads(route.calls.last.request.content)["messages"]
    assert sent[1]["tool_calls"][0]["id"] == "call_7"
    assert sent[2] == {"role": "tool", "tool_call_id": "call_7", "content": "18C, sunny"}
    rows = await usage_rows(handler)
    assert [r.interface for r in rows] == ["anthropic", "anthropic"] and rows[0].status == "ok"


async def test_stream_in_front_of_anthropic_relays_the_recorded_tool_use(handler, sdk):
    await register(kind="anthropic", name="claude", default_model="claude-sonnet-4-20250514")
    _, body = corpus_case("anthropic_stream_sdk_tool_use")
    with respx.mock:
        route = respx.post(ANTHROPIC).respond(200, headers=SSE, content=body)
        async with sdk.messages.stream(
            model="claude/claude-sonnet-4-20250514",
            max_tokens=1024,
            messages=[{"role": "user", "content": "What's the weather in Paris?"}],
            tools=[WEATHER],
            extra_headers={"anthropic-beta": "fine-grained-tool-streaming-2025-05-14"},
        ) as stream:
            kinds = [event.type async for event in stream]
            final = await stream.get_final_message()
    assert kinds[0] == "message_start" and kinds[-1] == "message_stop"
    tool = next(b for b in final.content if b.type == "tool_use")
    assert tool.name == "get_weather" and isinstance(tool.input, dict)
    assert final.stop_reason == "tool_use" and final.usage.output_tokens > 0
    upstream = route.calls.last.request
    assert json.loads(upstream.content)["stream"] is True
    assert upstream.headers.get("anthropic-beta") == "fine-grained-tool-streaming-2025-05-14"


def anthropic_sse(*events: dict) -> bytes:
    return b"".join(f"event: {e['type']}\ndata: {json.dumps(e)}\n\n".encode() for e in events)


async def test_the_stop_sequence_an_anthropic_upstream_stopped_on_comes_back(handler, sdk, token):
    """Anthropic names the matched sequence (message `stop_sequence`, message_delta's `delta.stop_sequence`)."""
    await register(kind="anthropic", name="claude", default_model="claude-sonnet-4-20250514")
    model, ask = "claude/claude-sonnet-4-20250514", {"max_tokens": 50, "messages": [USER], "stop_sequences": ["END"]}
    whole = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-sonnet-4-20250514",
        "content": [{"type": "text", "text": "Count: 1, 2"}],
        "stop_reason": "stop_sequence",
        "stop_sequence": "END",
        "usage": {"input_tokens": 8, "output_tokens": 6},
    }
    streamed = anthropic_sse(
        {"type": "message_start", "message": {**whole, "content": [], "stop_reason": None, "stop_sequence": None}},
        {"type": "content_block_start", "index": 0, "content_block": {"type": "text", "text": ""}},
        {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "Count: 1, 2"}},
        {"type": "content_block_stop", "index": 0},
        {
            "type": "message_delta",
            "delta": {"stop_reason": "stop_sequence", "stop_sequence": "END"},
            "usage": {"output_tokens": 6},
        },
        {"type": "message_stop"},
    )
    with respx.mock:
        route = respx.post(ANTHROPIC).respond(200, json=whole)
        message = await sdk.messages.create(model=model, **ask)
        assert json.loads(route.calls.last.request.content)["stop_sequences"] == ["END"]
        respx.post(ANTHROPIC).respond(200, headers=SSE, content=streamed)
        async with sdk.messages.stream(model=model, **ask) as stream:
            deltas = [e.delta async for e in stream if e.type == "message_delta"]
            final = await stream.get_final_message()
        respx.post(ANTHROPIC).respond(200, json=whole)
        chat = await AsyncClient(AUTHORIZATION=f"Bearer {token}").post(
            "/v1/chat/completions",
            {"model": model, "messages": [USER], "stop": ["END"]},
            content_type="application/json",
        )
    assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", "END")
    assert [(d.stop_reason, d.stop_sequence) for d in deltas] == [("stop_sequence", "END")]
    assert (final.stop_reason, final.stop_sequence) == ("stop_sequence", "END")
    assert chat.json()["choices"][0]["finish_reason"] == "stop"  # OpenAI's dialect has no word for which one


async def test_an_upstream_that_does_not_name_the_stop_sequence_ends_the_turn(handler, sdk):
    """OpenAI says finish_reason "stop" for a natural end and a stop string alike: byok cannot tell which."""
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("Count: 1, 2"))
        message = await sdk.messages.create(model="oai/gpt-4o", max_tokens=50, messages=[USER], stop_sequences=["END"])
    assert (message.stop_reason, message.stop_sequence) == ("end_turn", None)


async def test_stream_text_from_openai(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    chunks = [
        {"choices": [{"index": 0, "delta": {"role": "assistant", "content": "Hel"}}]},
        {"choices": [{"index": 0, "delta": {"content": "lo"}, "finish_reason": "stop"}]},
        {"choices": [], "usage": {"prompt_tokens": 5, "completion_tokens": 2, "total_tokens": 7}},
    ]
    body = b"".join(b"data: " + json.dumps(c).encode() + b"\n\n" for c in chunks) + b"data: [DONE]\n\n"
    with respx.mock:
        respx.post(OPENAI).respond(200, headers=SSE, content=body)
        async with sdk.messages.stream(model="oai/gpt-4o", max_tokens=50, messages=[USER]) as stream:
            texts = [t async for t in stream.text_stream]
            final = await stream.get_final_message()
    assert texts == ["Hel", "lo"] and final.content[0].text == "Hello"
    assert (final.usage.input_tokens, final.usage.output_tokens) == (5, 2) and final.stop_reason == "end_turn"


async def test_count_tokens_uses_the_estimate_for_the_routed_provider(handler, sdk):
    await register(kind="anthropic", name="claude", default_model="claude-sonnet-4-20250514")
    with respx.mock:  # nothing may go upstream
        short = await sdk.messages.count_tokens(model="claude/claude-sonnet-4-20250514", messages=[USER])
        long = await sdk.messages.count_tokens(
            model="claude/claude-sonnet-4-20250514",
            system="You are a weather bot. " * 20,
            messages=[USER],
            tools=[WEATHER],
        )
    assert 0 < short.input_tokens < long.input_tokens
    with pytest.raises(anthropic.NotFoundError):
        await sdk.messages.count_tokens(model="nobody/model-x", messages=[USER])


async def test_credentials_as_x_api_key_or_bearer_and_bad_ones_refused(handler, token):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    bearer = client(auth_token=token)
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("ok"))
        assert (await bearer.messages.create(model="oai/gpt-4o", max_tokens=5, messages=[USER])).content[0].text == "ok"
    api = AsyncClient(X_API_KEY=token, ANTHROPIC_VERSION="2023-06-01")  # defaults: ASGI header names
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("ok"))
        response = await api.post(
            "/v1/messages",
            {"model": "oai/gpt-4o", "max_tokens": 5, "messages": [USER]},
            content_type="application/json",
        )
    assert response.status_code == 200 and response.json()["content"][0]["text"] == "ok", response.content
    with pytest.raises(anthropic.AuthenticationError) as caught:
        await client(api_key="not-a-token").messages.create(model="oai/gpt-4o", max_tokens=5, messages=[USER])
    assert caught.value.body["error"]["type"] == "authentication_error"
    response = await AsyncClient().post("/v1/messages", {}, content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["type"] == "authentication_error"


async def test_bad_requests_are_invalid_request_errors_naming_the_field(handler, sdk, token):
    with pytest.raises(anthropic.BadRequestError) as caught:
        await sdk.messages.create(model="oai/gpt-4o", max_tokens=0, messages=[USER])
    assert caught.value.body["error"] == {
        "type": "invalid_request_error",
        "message": "max_tokens: Input should be greater than or equal to 1",
    }
    api = AsyncClient(X_API_KEY=token)
    response = await api.post("/v1/messages", b"{not json", content_type="application/json")
    assert response.status_code == 400 and response.json()["type"] == "error"
    response = await api.get("/v1/messages")
    assert response.status_code == 405 and response.json()["error"]["type"] == "invalid_request_error"


async def test_upstream_rate_limits_are_rate_limit_errors_with_retry_after(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    with respx.mock:
        respx.post(OPENAI).respond(429, headers={"retry-after": "600"}, json={"error": {"message": "slow down"}})
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(model="oai/gpt-4o", max_tokens=5, messages=[USER])
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) >= 590
    assert caught.value.response.headers["x-should-retry"] == "false"


async def test_a_failure_mid_stream_is_an_error_event_the_sdk_raises(handler, sdk):
    await register(kind="anthropic", name="claude", default_model="claude-x", max_retries=0)
    body = (corpus_case("anthropic_stream_sdk_basic")[1].split(b"event: message_delta")[0]) + (
        b'event: error\ndata: {"type": "error", "error": {"type": "overloaded_error", "message": "Overloaded"}}\n\n'
    )
    with respx.mock:
        respx.post(ANTHROPIC).respond(200, headers=SSE, content=body)
        texts = []
        with pytest.raises(anthropic.APIStatusError) as caught:
            async with sdk.messages.stream(model="claude/claude-x", max_tokens=50, messages=[USER]) as stream:
                async for text in stream.text_stream:
                    texts.append(text)
    assert texts and caught.value.body["error"]["type"] == "overloaded_error"


async def test_models_answer_anthropic_clients_in_their_shape_and_openai_clients_in_theirs(handler, sdk, token):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    page = await sdk.models.list()
    ids = [m.id for m in page.data]
    assert ids[0] == "oai/gpt-4o" and ids[-1] == "gpt-4o" and "oai/gpt-4o-mini" in ids  # + the catalog's models
    assert page.data[0].type == "model"
    assert (await sdk.models.retrieve("oai/gpt-4o-mini")).id == "oai/gpt-4o-mini"
    with pytest.raises(anthropic.NotFoundError):
        await sdk.models.retrieve("nope")
    openai_style = await AsyncClient(AUTHORIZATION=f"Bearer {token}").get("/v1/models")
    assert openai_style.json()["object"] == "list" and [m["id"] for m in openai_style.json()["data"]] == ids
    refused = await AsyncClient(ANTHROPIC_VERSION="2023-06-01").get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["type"] == "authentication_error"
    request = AsyncRequestFactory().post("/v1/models/oai/gpt-4o", HTTP_X_API_KEY=token)
    assert (await views_anthropic.model_detail(request, "oai/gpt-4o")).status_code == 405


# -- shared by construction: failover and budgets behave as on every dialect ----------------------------


async def _policy(primary: str, *fallbacks: str) -> None:
    from django.db import transaction

    from byok.changes import announce
    from byok.models import FailoverPolicy, FailoverStep, Provider

    def make():
        policy = FailoverPolicy.objects.create(
            name=f"{primary}-chain", primary=Provider.objects.get(name=primary), max_retries=0
        )
        for i, name in enumerate(fallbacks):
            FailoverStep.objects.create(policy=policy, provider=Provider.objects.get(name=name), position=i)
        announce(None)

    await sync_to_async(lambda: transaction.atomic()(make)())()


async def test_failover_from_openai_to_anthropic_whole_and_streamed(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o", is_default=True, max_retries=0)
    await register(kind="anthropic", name="claude", default_model="claude-x", max_retries=0)
    await _policy("oai", "claude")
    _, stream_body = corpus_case("anthropic_stream_sdk_basic")
    answer = {
        "id": "msg_1",
        "type": "message",
        "role": "assistant",
        "model": "claude-x",
        "content": [{"type": "text", "text": "from the fallback"}],
        "stop_reason": "end_turn",
        "usage": {"input_tokens": 4, "output_tokens": 3, "cache_read_input_tokens": 2},
    }
    with respx.mock:
        primary = respx.post(OPENAI).respond(503, json={"error": {"message": "down"}})
        respx.post(ANTHROPIC).respond(200, json=answer)
        raw = await sdk.messages.with_raw_response.create(model="gpt-4o", max_tokens=50, messages=[USER])
        message = await raw.parse()
        respx.post(ANTHROPIC).respond(200, headers=SSE, content=stream_body)
        async with sdk.messages.stream(model="gpt-4o", max_tokens=50, messages=[USER]) as stream:
            streamed = await stream.get_final_message()
    assert primary.call_count == 2
    assert raw.headers["x-byok-provider"] == "claude" and raw.headers["x-byok-attempts"] == "2"
    assert message.content[0].text == "from the fallback" and message.model == "claude/claude-x"
    assert (message.usage.input_tokens, message.usage.cache_read_input_tokens) == (4, 2)
    assert streamed.content and streamed.stop_reason == "end_turn"
    rows = await usage_rows(handler)
    assert [(r.provider_name, r.attempts, r.interface) for r in rows] == [("claude", 2, "anthropic")] * 2


async def test_a_spent_budget_is_a_rate_limit_error_with_retry_after(handler, sdk):
    from byok import budget_store
    from byok.audit import Actor

    await register(kind="openai", name="oai", default_model="gpt-4o")
    carol = await sync_to_async(lambda: Token.objects.get().user_id)()
    make = budget_store.create_budget
    await sync_to_async(make)(actor=Actor("alice", "203.0.113.9"), user=carol, token_limit=1)  # any prompt is more
    with respx.mock:
        upstream = respx.post(OPENAI).respond(200, json=openai_json("never"))
        with pytest.raises(anthropic.RateLimitError) as caught:
            await sdk.messages.create(model="oai/gpt-4o", max_tokens=500, messages=[USER])
    assert not upstream.called
    assert caught.value.body["error"]["type"] == "rate_limit_error"
    assert int(caught.value.response.headers["retry-after"]) > 0


# -- keep-alive pings while the provider is silent -----------------------------------------------------


async def test_a_silent_provider_gets_pings_and_the_chunk_is_never_lost():
    release = asyncio.Event()

    async def body():
        yield b"first"
        await release.wait()
        yield b"second"

    stream = sse.keep_alive(body(), lambda: b"ping", every=0.01)
    assert await anext(stream) == b"first"
    assert await anext(stream) == b"ping"  # the source is blocked until released: only a ping can come
    assert await anext(stream) == b"ping"
    release.set()
    rest = [chunk async for chunk in stream]
    assert rest[-1] == b"second" and set(rest[:-1]) <= {b"ping"}


async def test_closing_the_stream_while_waiting_closes_the_source():
    closed = asyncio.Event()

    async def body():
        try:
            yield b"first"
            await asyncio.Event().wait()  # never answers
        finally:
            closed.set()

    stream = sse.keep_alive(body(), lambda: b"ping", every=0.01)
    assert [await anext(stream), await anext(stream)] == [b"first", b"ping"]
    await stream.aclose()  # the client went away
    assert closed.is_set()


async def test_pings_while_the_upstream_hangs_and_a_disconnect_closes_it(handler, token, monkeypatch):
    """Django cancels the task that iterates the body when the client goes away: the upstream closes at once."""
    monkeypatch.setattr(chat_entry, "KEEPALIVE_S", 0.01)
    await register(kind="openai", name="oai", default_model="gpt-4o")
    one = b'data: {"choices": [{"index": 0, "delta": {"content": "one"}}]}\n\n'
    upstream = Pieces(one, b"data: [DONE]\n\n", hang_after=1)
    request = AsyncRequestFactory().post(
        "/v1/messages",
        {"model": "oai/gpt-4o", "max_tokens": 20, "messages": [USER], "stream": True},
        content_type="application/json",
    )
    request.META["HTTP_X_API_KEY"] = token
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=upstream))
        response = await views_anthropic.messages(request)
        body = aiter(response)
        seen = b""
        while b"ping" not in seen.split(b"text_delta", 1)[-1]:  # a ping after the first text
            seen += await anext(body)
        assert b'"text":"one"' in seen and seen.startswith(b"event: message_start")
        await asyncio.wait_for(upstream.hanging.wait(), 10)
        assert not upstream.closed.is_set()
        while True:  # the client goes away while byok waits for the next chunk (a ping may slip in first)
            task = asyncio.create_task(anext(body))
            await asyncio.sleep(0)
            task.cancel()
            try:
                assert b"ping" in await task
            except asyncio.CancelledError:
                break
    assert upstream.closed.is_set()
    [row] = await usage_rows(handler)
    assert row.status == "cancelled" and row.interface == "anthropic"


# -- the OpenAPI document --------------------------------------------------------------------------------


async def test_the_openapi_schema_describes_the_messages_dialect():
    schema = (await AsyncClient().get("/api/schema?format=json")).json()
    create = schema["paths"]["/v1/messages"]["post"]
    count = schema["paths"]["/v1/messages/count_tokens"]["post"]
    assert create["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnthropicMessagesRequest"
    }
    assert set(create["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert create["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/AnthropicError"
    }
    assert set(count["responses"]) == {"200", "400", "401", "403", "404", "413"}
    components = schema["components"]["schemas"]
    assert components["AnthropicMessagesRequest"]["required"] == ["model", "messages", "max_tokens"]
    assert "max_tokens" not in components["AnthropicCountTokensRequest"]["properties"]
    assert components["AnthropicMessageParam"]["properties"]["role"]["enum"] == ["user", "assistant"]
    assert schema["components"]["securitySchemes"]["apiKeyAuth"]["name"] == "x-api-key"
    assert "/v1/chat/completions" in schema["paths"]  # the other dialects' hook still runs


async def test_gateway_keys_in_x_api_key_allow_refuse_and_revoke(handler):
    from django.contrib.auth.models import User

    from byok.audit import Actor
    from byok.keys import store

    await register(kind="openai", name="oai", default_model="gpt-4o-mini")
    staff = Actor("alice", "203.0.113.9")

    def make():
        User.objects.create_user("erin")
        return store.create_key(actor=staff, user="erin", name="ci", models=["oai/gpt-4o*"])

    row, key = await sync_to_async(make)()
    sdk = client(api_key=key)
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json("allowed"))
        assert (await sdk.messages.create(model="oai/gpt-4o-mini", max_tokens=5, messages=[USER])).content[
            0
        ].text == "allowed"
        with pytest.raises(anthropic.PermissionDeniedError) as refused:
            await sdk.messages.create(model="oai/o1", max_tokens=5, messages=[USER])
        assert refused.value.body["error"]["type"] == "permission_error" and route.call_count == 1
        with pytest.raises(anthropic.PermissionDeniedError):  # streaming too, before any upstream call
            async with sdk.messages.stream(model="oai/o1", max_tokens=5, messages=[USER]) as stream:
                await stream.get_final_message()
        assert route.call_count == 1
        listed = [m.id for m in (await sdk.models.list()).data]  # the catalog's gpt-4o matches oai/gpt-4o* too
        assert listed == ["oai/gpt-4o-mini", "oai/gpt-4o", "gpt-4o-mini"]
        await sync_to_async(store.revoke_key)(row.pk, actor=staff)
        with pytest.raises(anthropic.AuthenticationError) as revoked:
            await sdk.messages.create(model="oai/gpt-4o-mini", max_tokens=5, messages=[USER])
    assert revoked.value.body["error"]["type"] == "authentication_error"
