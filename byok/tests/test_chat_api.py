"""The chat endpoints in process: `/api/chat` (byok's shape) and `/v1/*` (OpenAI's), over the real
handler with upstreams faked by respx, and the official SDK through an in-memory ASGI transport.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import openai
import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import AsyncClient, AsyncRequestFactory

from byok.api import chat_entry, views_byok, views_openai
from byok.api.render_byok import ByokStreamRenderer
from byok.exceptions import AllProvidersFailedError
from byok.models import UsageRecord
from byok.providers.types import StreamDone, StreamEvent, StreamFailed, StreamStarted
from byok.tests.chat_fakes import (
    DEEPSEEK,
    OPENAI,
    SSE,
    USAGE_CHUNK,
    USER,
    Pieces,
    chunk,
    events_of,
    openai_json,
    register,
    sse,
)
from byok.tests.conftest import CANARY
from byok.tests.providers.replay import corpus_case

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture
def handler(chat_handler):
    """The chat views' handler (conftest's `chat_handler`), under the name these tests use."""
    return chat_handler


async def body_of(response) -> bytes:
    return b"".join([part async for part in response.streaming_content])


async def usage_rows(handler):
    await handler.flush_usage()
    return await sync_to_async(lambda: list(UsageRecord.objects.order_by("id")))()


# -- /api/chat ------------------------------------------------------------------------------------


async def test_byok_chat_answer_shape_and_headers(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o", api_key=CANARY)
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json("Bonjour"))
        response = await api.post(
            "/api/chat",
            {
                "messages": [
                    {"role": "system", "content": "Be brief."},
                    USER,
                    {"role": "assistant", "content": "Hi!"},
                    USER,
                ],
                "provider": "oai",
                "model": "gpt-4o-mini",
                "temperature": 0.1,
                "top_p": 0.5,
                "max_tokens": 20,
                "stop": "END",
            },
            content_type="application/json",
        )
    assert response.status_code == 200
    body = response.json()
    assert body["provider"] == "oai" and body["model"] == "gpt-4o" and body["key_hint"] == "sk-…9c2e"
    assert body["message"] == {
        "role": "assistant",
        "content": "Bonjour",
        "reasoning": None,
        "refusal": None,
        "tool_calls": [],
    }
    assert body["finish_reason"] == "stop" and body["usage"]["input_tokens"] == 9
    assert [a["provider"] for a in body["attempts"]] == ["oai"] and body["failover_ms"] == 0
    assert response["x-byok-provider"] == "oai" and response["x-byok-key-hint"] == "sk-...9c2e"
    assert response["x-byok-attempts"] == "1" and response["x-byok-request-id"] == body["id"]
    sent = json.loads(route.calls.last.request.content)
    assert sent["model"] == "gpt-4o-mini" and sent["temperature"] == 0.1 and sent["stop"] == ["END"]
    assert sent["messages"][0] == {"role": "system", "content": "Be brief."}
    assert CANARY not in response.content.decode() + json.dumps(dict(response.headers))


async def test_byok_chat_tool_calls_round_trip(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    call = {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    tool = {
        "name": "get_weather",
        "description": "Weather.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
    }
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json(None, tool_calls=[call], finish="tool_calls"))
        response = await api.post(
            "/api/chat",
            {"messages": [USER], "tools": [tool], "tool_choice": "get_weather"},
            content_type="application/json",
        )
        assert response.json()["message"]["tool_calls"] == [
            {"id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'}
        ]
        assert response.json()["finish_reason"] == "tool_calls"
        assert json.loads(route.calls.last.request.content)["tool_choice"] == {
            "type": "function",
            "function": {"name": "get_weather"},
        }
        history = [
            USER,
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [{"id": "call_1", "name": "get_weather", "arguments": {"city": "Paris"}}],
            },
            {"role": "tool", "tool_call_id": "call_1", "name": "get_weather", "content": "21C"},
        ]
        route.respond(200, json=openai_json("Sunny"))
        response = await api.post("/api/chat", {"messages": history, "tools": [tool]}, content_type="application/json")
    assert response.json()["message"]["content"] == "Sunny"
    sent = json.loads(route.calls.last.request.content)["messages"]
    assert sent[1]["tool_calls"][0]["function"] == {"name": "get_weather", "arguments": '{"city":"Paris"}'}
    assert sent[2] == {"role": "tool", "tool_call_id": "call_1", "content": "21C"}


async def test_byok_chat_stream_events(handler, api):
    await register(kind="deepseek", name="ds", default_model="deepseek-reasoner")
    _, body = corpus_case("deepseek_stream_reasoner_tool_call")
    with respx.mock:
        respx.post(DEEPSEEK).respond(200, headers=SSE, content=body)
        response = await api.post(
            "/api/chat",
            {"messages": [USER], "stream": True, "tools": [{"name": "weather", "parameters": {"type": "object"}}]},
            content_type="application/json",
        )
        assert response.status_code == 200 and response["content-type"].startswith("text/event-stream")
        assert response["x-byok-provider"] == "ds" and response["cache-control"] == "no-cache"
        events = events_of(await body_of(response))
    kinds = [e for e, _ in events]
    assert kinds[-1] == "done" and kinds.count("done") == 1 and "error" not in kinds
    assert any("reasoning" in data for e, data in events if e == "delta")
    calls = [data for e, data in events if e == "tool_call"]
    assert calls and calls[0]["name"] == "weather" and json.loads(calls[0]["arguments"]) is not None
    done = events[-1][1]
    assert done["provider"] == "ds" and done["finish_reason"] == "tool_calls" and done["usage"]["total_tokens"] > 0
    assert done["id"] == response["x-byok-request-id"] and done["ttft_ms"] is not None
    [row] = await usage_rows(handler)
    assert row.status == "ok" and row.interface == "rest"


async def test_byok_chat_stream_text_and_refusal(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    body = sse(
        chunk({"role": "assistant", "content": ""}),
        chunk({"content": "Hel"}),
        chunk({"content": "lo"}),
        chunk({"refusal": "nope"}),
        chunk({}, "stop"),
        USAGE_CHUNK,
    )
    with respx.mock:
        respx.post(OPENAI).respond(200, headers=SSE, content=body)
        response = await api.post("/api/chat", {"messages": [USER], "stream": True}, content_type="application/json")
        events = events_of(await body_of(response))
    assert events[:3] == [("delta", {"text": "Hel"}), ("delta", {"text": "lo"}), ("delta", {"refusal": "nope"})]
    assert events[3][0] == "done" and events[3][1]["usage"]["output_tokens"] == 2


async def test_byok_chat_stream_error_after_first_token(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    first = sse(chunk({"content": "Hel"}), done=False)
    broken = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=Pieces(first, broken)))
        response = await api.post("/api/chat", {"messages": [USER], "stream": True}, content_type="application/json")
        events = events_of(await body_of(response))
    assert events[0] == ("delta", {"text": "Hel"})
    kind, error = events[-1]
    assert (
        kind == "error"
        and error["partial"] is True
        and error["code"] == "upstream_server_error"
        and error["status"] == 502
    )
    assert len(events) == 2


async def test_byok_chat_stream_failure_before_first_token_is_a_json_error(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    with respx.mock:
        respx.post(OPENAI).respond(500, json={"error": {"message": "down"}})
        response = await api.post("/api/chat", {"messages": [USER], "stream": True}, content_type="application/json")
    assert response.status_code == 502 and response["content-type"] == "application/json"
    body = response.json()
    assert body["code"] == "upstream_failed" and body["attempts"][0]["status"] == 500
    assert response["x-byok-attempts"] == "1" and response["x-byok-request-id"]
    [row] = await usage_rows(handler)
    assert row.status == "error"


async def test_byok_chat_errors(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    unknown = await api.post("/api/chat", {"messages": [USER], "provider": "nosuch"}, content_type="application/json")
    assert unknown.status_code == 404 and unknown.json()["code"] == "provider_not_found"
    with respx.mock:
        respx.post(OPENAI).respond(
            400, json={"error": {"message": "context too long", "type": "invalid_request_error"}}
        )
        client_error = await api.post(
            "/api/chat", {"messages": [USER], "provider": "oai"}, content_type="application/json"
        )
    assert client_error.status_code == 400 and "context too long" in client_error.json()["message"]
    with respx.mock:
        respx.post(OPENAI).respond(
            429, headers={"retry-after": "20"}, json={"error": {"message": "slow", "type": "rate_limit"}}
        )
        limited = await api.post("/api/chat", {"messages": [USER]}, content_type="application/json")
    assert limited.status_code == 429 and limited.json()["code"] == "rate_limited" and limited["Retry-After"] == "20"
    not_json = await api.post("/api/chat", b"{nope", content_type="application/json")
    assert not_json.status_code == 400 and not_json.json()["code"] == "parse_error"
    wrong_method = await api.get("/api/chat")
    assert wrong_method.status_code == 405 and wrong_method.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    "body, fields",
    [
        ([], ["non_field_errors"]),
        ({}, ["messages"]),
        ({"messages": [], "extra": 1}, ["extra", "messages"]),
        (
            {
                "messages": [
                    "x",
                    {"role": "robot"},
                    {"role": "user", "content": 3},
                    {"role": "user"},
                    {"role": "tool", "content": "r"},
                ]
            },
            [
                "messages[0]",
                "messages[1].role",
                "messages[2].content",
                "messages[3].content",
                "messages[4].tool_call_id",
            ],
        ),
        ({"messages": [{"role": "assistant", "tool_calls": {}}]}, ["messages[0].tool_calls", "messages[0].content"]),
        (
            {
                "messages": [
                    {"role": "assistant", "tool_calls": [1, {"name": "f", "arguments": 5}, {"name": "f", "id": 3}]}
                ]
            },
            [
                "messages[0].tool_calls[0]",
                "messages[0].tool_calls[1].arguments",
                "messages[0].tool_calls[2].id",
                "messages[0].content",
            ],
        ),
        ({"messages": [USER], "tools": {}}, ["tools"]),
        (
            {
                "messages": [USER],
                "tools": [{"name": "bad name"}, {"name": "f", "description": 1}, {"name": "g", "parameters": []}],
            },
            ["tools[0].name", "tools[1].description", "tools[2].parameters"],
        ),
        (
            {"messages": [USER], "provider": 5, "model": "m" * 201, "tool_choice": "f"},
            ["provider", "model", "tool_choice"],
        ),
        (
            {"messages": [USER], "temperature": 3, "top_p": "x", "max_tokens": 0, "stop": [1], "stream": "yes"},
            ["temperature", "top_p", "max_tokens", "stop", "stream"],
        ),
        ({"messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, ["stop"]),
    ],
)
async def test_byok_chat_validation_is_422_with_every_field(handler, api, body, fields):
    response = await api.post("/api/chat", body, content_type="application/json")
    assert response.status_code == 422
    got = response.json()
    assert got["code"] == "validation_error" and sorted(got["errors"]) == sorted(fields)


async def test_byok_chat_accepts_a_tool_result_by_function_name(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    history = [
        USER,
        {"role": "assistant", "content": None, "tool_calls": [{"name": "f", "arguments": "{}"}]},
        {"role": "tool", "name": "f", "content": "ok"},
    ]
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json("fine"))
        response = await api.post(
            "/api/chat", {"messages": history, "stop": ["X"], "model": "oai/gpt-4o"}, content_type="application/json"
        )
    assert response.status_code == 200
    sent = json.loads(route.calls.last.request.content)
    assert (
        sent["model"] == "gpt-4o" and sent["messages"][2]["tool_call_id"] == sent["messages"][1]["tool_calls"][0]["id"]
    )


# -- authentication --------------------------------------------------------------------------------


async def test_authentication(handler, token):
    assert (await AsyncClient().post("/api/chat", {}, content_type="application/json")).status_code == 401
    for header in ("Bearer wrong", "Basic abc", "Bearer a b"):
        response = await AsyncClient(AUTHORIZATION=header).post("/api/chat", {}, content_type="application/json")
        assert response.status_code == 401 and response.json()["code"] in ("authentication_failed", "not_authenticated")
        v1 = await AsyncClient(AUTHORIZATION=header).get("/v1/models")
        assert v1.status_code == 401 and v1.json()["error"]["code"] == "invalid_api_key"
        assert v1["WWW-Authenticate"].startswith("Bearer")
    for scheme in ("Token", "Bearer"):  # twice each: a token lookup may be answered from a cache
        for _ in range(2):
            assert (await AsyncClient(AUTHORIZATION=f"{scheme} {token}").get("/v1/models")).status_code == 200


async def test_inactive_users_are_refused(handler, token, django_user_model):
    await sync_to_async(django_user_model.objects.filter(username="carol").update)(is_active=False)
    response = await AsyncClient(AUTHORIZATION=f"Bearer {token}").get("/v1/models")
    assert response.status_code == 401


async def test_session_auth_needs_csrf(handler, django_user_model):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    user = await sync_to_async(django_user_model.objects.create_user)("dave")
    client = AsyncClient(enforce_csrf_checks=True)
    await client.aforce_login(user)
    refused = await client.post("/api/chat", {"messages": [USER]}, content_type="application/json")
    assert refused.status_code == 403 and "CSRF" in refused.json()["message"]
    v1_refused = await client.post(
        "/v1/chat/completions", {"model": "m", "messages": [USER]}, content_type="application/json"
    )
    assert v1_refused.status_code == 403 and v1_refused.json()["error"]["type"] == "permission_error"
    secret = "c" * 32
    client.cookies["csrftoken"] = secret
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json())
        accepted = await client.post(
            "/api/chat", {"messages": [USER]}, content_type="application/json", headers={"X-CSRFToken": secret}
        )
    assert accepted.status_code == 200
    assert (await client.get("/v1/models")).status_code == 200  # safe methods need no CSRF token


# -- /v1 in process -------------------------------------------------------------------------------


async def test_v1_methods_and_models(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    await register(kind="anthropic", name="claude", default_model="claude-x")
    assert (await api.get("/v1/chat/completions")).status_code == 405
    assert (await api.post("/v1/models")).status_code == 405
    assert (await api.delete("/v1/models/oai/gpt-4o")).status_code == 405
    models = (await api.get("/v1/models")).json()
    ids = [m["id"] for m in models["data"]]
    # Each provider's default first, then the catalog's models of its kind, then the bare defaults.
    assert ids[0] == "claude/claude-x" and ids[-2:] == ["claude-x", "gpt-4o"]
    assert {"claude/claude-sonnet-4", "oai/gpt-4o-mini", "oai/gpt-4.1"} <= set(ids)
    assert not any(i.startswith("claude/gpt") or i.startswith("oai/claude") for i in ids)
    oai = [i for i in ids if i.startswith("oai/")]
    assert oai[0] == "oai/gpt-4o" and oai[1:] == sorted(oai[1:]) and "oai/gpt-5-nano" in oai
    assert len(ids) == len(set(ids))
    assert (await api.get("/v1/models/oai/gpt-4o-mini")).json()["owned_by"] == "oai"
    assert (await api.get("/v1/models/oai/gpt-4o")).json() == {
        "id": "oai/gpt-4o",
        "object": "model",
        "created": 0,
        "owned_by": "oai",
    }
    missing = await api.get("/v1/models/nope")
    assert missing.status_code == 404 and missing.json()["error"]["code"] == "model_not_found"
    assert (await AsyncClient().get("/v1/models/oai/gpt-4o")).status_code == 401


async def test_v1_validation_and_errors_in_openai_shape(handler, api):
    bad = await api.post(
        "/v1/chat/completions", {"model": "m", "messages": [USER], "n": 3}, content_type="application/json"
    )
    assert bad.status_code == 400 and bad.json() == {
        "error": {
            "message": "Invalid 'n': byok returns one choice; n must be 1.",
            "type": "invalid_request_error",
            "param": "n",
            "code": "unsupported_value",
        }
    }
    none = await api.post("/v1/chat/completions", {"model": "m", "messages": [USER]}, content_type="application/json")
    assert none.status_code == 503 and none.json()["error"]["code"] == "no_usable_provider"
    await register(kind="openai", name="oai", default_model="gpt-4o")
    unknown = await api.post(
        "/v1/chat/completions",
        {"model": "m", "messages": [USER]},
        content_type="application/json",
        headers={"X-Byok-Provider": "nosuch"},
    )
    assert unknown.status_code == 404 and unknown.json()["error"]["type"] == "not_found_error"
    prefixed = await api.post(
        "/v1/chat/completions", {"model": "nosuchprovider/gpt-4o", "messages": [USER]}, content_type="application/json"
    )
    assert prefixed.status_code == 404 and prefixed.json()["error"]["code"] == "provider_not_found"


async def test_v1_request_body_too_large(handler, api, settings):
    """Django's own limit (for a body without a Content-Length the middleware could check)."""
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request = AsyncRequestFactory().post(
        "/v1/chat/completions", {"model": "m", "messages": [USER]}, content_type="application/json"
    )
    request.META.pop("CONTENT_LENGTH")
    request.META["HTTP_AUTHORIZATION"] = api.defaults["AUTHORIZATION"]
    response = await views_openai.chat_completions(request)
    assert response.status_code == 413 and json.loads(response.content)["error"]["code"] == "payload_too_large"
    request = AsyncRequestFactory().post("/api/chat", {"messages": [USER]}, content_type="application/json")
    request.META.pop("CONTENT_LENGTH")
    request.META["HTTP_AUTHORIZATION"] = api.defaults["AUTHORIZATION"]
    response = await views_byok.byok_chat(request)
    assert response.status_code == 413 and json.loads(response.content)["code"] == "payload_too_large"


async def test_sdk_in_process_non_stream_and_stream(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o", api_key=CANARY)
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("Hello"))
        raw = await sdk.chat.completions.with_raw_response.create(
            model="oai/gpt-4o", messages=[USER], max_completion_tokens=5
        )
        completion = raw.parse()
        assert completion.choices[0].message.content == "Hello" and completion.model == "oai/gpt-4o"
        assert raw.headers["x-byok-provider"] == "oai" and completion.usage.total_tokens == 12
        body = sse(
            chunk({"role": "assistant", "content": ""}),
            chunk({"content": "Hi"}),
            chunk(
                {
                    "tool_calls": [
                        {"index": 0, "id": "call_9", "type": "function", "function": {"name": "f", "arguments": ""}}
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": "{}"}}]}),
            chunk({}, "tool_calls"),
            USAGE_CHUNK,
        )
        respx.post(OPENAI).respond(200, headers=SSE, content=body)
        stream = await sdk.chat.completions.create(
            model="oai/gpt-4o", messages=[USER], stream=True, stream_options={"include_usage": True}
        )
        chunks = [c async for c in stream]
    assert chunks[0].choices[0].delta.content == "Hi"
    assert chunks[1].choices[0].delta.tool_calls[0].id == "call_9"
    assert chunks[-2].choices[0].finish_reason == "tool_calls" and chunks[-1].usage.total_tokens == 7


async def test_sdk_in_process_legacy_functions(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    call = {"id": "call_1", "type": "function", "function": {"name": "f", "arguments": "{}"}}
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=openai_json(None, tool_calls=[call], finish="tool_calls"))
        completion = await sdk.chat.completions.create(
            model="oai/gpt-4o", messages=[USER], functions=[{"name": "f"}], function_call="auto"
        )
    assert completion.choices[0].finish_reason == "function_call"
    assert completion.choices[0].message.function_call.name == "f"
    assert json.loads(route.calls.last.request.content)["tools"][0]["function"]["name"] == "f"


# -- streams: first byte, failures, disconnects -----------------------------------------------------


async def test_stream_failure_before_first_token_is_a_json_error(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    with respx.mock:
        respx.post(OPENAI).respond(503, json={"error": {"message": "down"}})
        with pytest.raises(openai.InternalServerError) as exc:
            await sdk.chat.completions.create(model="oai/gpt-4o", messages=[USER], stream=True)
    assert exc.value.status_code == 502 and exc.value.response.headers["x-byok-attempts"] == "1"


async def test_stream_failure_after_first_token_is_an_error_chunk(handler, sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o", max_retries=0)
    first = sse(chunk({"content": "Hel"}), done=False)
    broken = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=Pieces(first, broken)))
        stream = await sdk.chat.completions.create(model="oai/gpt-4o", messages=[USER], stream=True)
        texts = []
        with pytest.raises(openai.APIError, match="server had an error"):
            async for c in stream:
                texts.append(c.choices[0].delta.content)
    assert texts == ["Hel"]


async def _view_stream(api, path, body):
    """Call a view directly and return its StreamingHttpResponse (not consumed)."""
    request = AsyncRequestFactory().post(path, body, content_type="application/json")
    request.META["HTTP_AUTHORIZATION"] = api.defaults["AUTHORIZATION"]
    view = views_openai.chat_completions if path.startswith("/v1") else views_byok.byok_chat
    return await view(request)


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": "oai/gpt-4o", "messages": [USER], "stream": True}),
        ("/api/chat", {"messages": [USER], "stream": True}),
    ],
)
async def test_disconnect_closes_the_upstream(handler, api, path, body):
    """Django cancels the task that iterates the body when the client goes away: the upstream closes at once."""
    await register(kind="openai", name="oai", default_model="gpt-4o")
    upstream = Pieces(
        sse(chunk({"content": "one"}), done=False), sse(chunk({"content": "two"}), done=False), hang_after=1
    )
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=upstream))
        response = await _view_stream(api, path, body)
        body_iter = aiter(response)
        first = await anext(body_iter)
        assert b"one" in first
        task = asyncio.create_task(anext(body_iter))
        await asyncio.wait_for(upstream.hanging.wait(), 10)
        await asyncio.sleep(0.01)
        assert not task.done() and not upstream.closed.is_set()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert upstream.closed.is_set()
    [row] = await usage_rows(handler)
    assert row.status == "cancelled"


@pytest.mark.parametrize(
    "path, body",
    [
        ("/v1/chat/completions", {"model": "oai/gpt-4o", "messages": [USER], "stream": True}),
        ("/api/chat", {"messages": [USER], "stream": True}),
        ("/v1/chat/completions", {"model": "oai/gpt-4o", "messages": [USER]}),
    ],
)
async def test_disconnect_before_the_first_token_closes_the_upstream(handler, api, path, body):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    upstream = Pieces(b": waiting\n\n", b"never", hang_after=1)
    with respx.mock:
        respx.post(OPENAI).mock(
            return_value=httpx.Response(200, headers=SSE if body.get("stream") else {}, stream=upstream)
        )
        task = asyncio.create_task(_view_stream(api, path, body))
        await asyncio.wait_for(upstream.hanging.wait(), 10)  # the request is open upstream, waiting for a token
        assert not task.done()
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
    assert upstream.closed.is_set()
    [row] = await usage_rows(handler)
    assert row.status == "cancelled"


async def test_closing_the_body_between_chunks_closes_the_upstream(handler, api):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    upstream = Pieces(
        sse(chunk({"content": "one"}), done=False), sse(chunk({"content": "two"}), done=False), hang_after=1
    )
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=upstream))
        response = await _view_stream(
            api, "/v1/chat/completions", {"model": "oai/gpt-4o", "messages": [USER], "stream": True}
        )
        body = response._iterator  # byok's generator, as Django's response holds it
        await anext(body)
        await body.aclose()
    assert upstream.closed.is_set()


class _FakeStream:
    """A stand-in for handler.stream(): the given events, then nothing (no terminal event) or a crash."""

    def __init__(self, events, crash=False):
        self.events, self.crash, self.closed = list(events), crash, False

    def __aiter__(self):
        return self

    async def __anext__(self):
        if self.events:
            return self.events.pop(0)
        if self.crash:
            raise RuntimeError("bug")
        raise StopAsyncIteration

    async def aclose(self):
        self.closed = True


@pytest.mark.parametrize("crash", [False, True])
async def test_a_stream_that_ends_without_a_terminal_event_still_ends_with_an_error(crash):
    from byok.api.openai_compat import ChunkWriter

    text = StreamEvent(kind="text_delta", text="a")
    fake = _FakeStream([], crash=crash)
    out = [
        part async for part in chat_entry.render_stream(fake, text, views_openai.OpenAIStream(ChunkWriter("c", 1, "m")))
    ]
    assert b'"error"' in out[-1] and out[-1].endswith(b"data: [DONE]\n\n") and fake.closed
    fake = _FakeStream([StreamEvent(kind="tool_call_delta", index=3, arguments="x")], crash=crash)
    events = events_of(b"".join([part async for part in chat_entry.render_stream(fake, text, ByokStreamRenderer())]))
    assert events[0] == ("delta", {"text": "a"}) and events[-1][0] == "error" and events[-1][1]["partial"] is True


def test_served_headers_come_from_the_stream_started_event():
    started = StreamStarted(
        provider="p",
        model="m",
        key_hint="sk-\u2026abcd",
        attempts=[{}, {}],
        request_id="r",
        failover_ms=12.34,
        overhead_ms=0.456,
    )
    assert chat_entry.served_stream(started).headers() == {
        "x-byok-provider": "p",
        "x-byok-attempts": "2",
        "x-byok-failover-ms": "12.3",
        "x-byok-request-id": "r",
        "x-byok-key-hint": "sk-...abcd",
        "x-byok-overhead-ms": "0.46",
    }
    done = StreamDone(
        finish_reason="stop",
        raw_finish_reason=None,
        usage=None,
        provider="p",
        model="m",
        key_hint="k",
        attempts=[],
        latency_ms=1,
        failover_ms=0,
        ttft_ms=None,
        request_id="r",
    )
    failed = StreamFailed(error=AllProvidersFailedError(attempts=[]), partial=True, request_id="r")
    assert (started.kind, done.kind, failed.kind) == ("started", "done", "error")
