"""`POST /v1/responses` in process: the official SDK through an in-memory ASGI transport, over the real
handler with the upstream faked by respx. What reaches the provider, what the SDK gets back, errors in
OpenAI's shape, usage recorded with the interface `responses`.
"""

from __future__ import annotations

import asyncio
import json

import httpx
import httpx2
import openai
import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import AsyncClient, AsyncRequestFactory
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry, views_responses
from byok.models import UsageRecord
from byok.tests.openai_fakes import WEATHER, Pieces, chunk, completion, sse

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
SSE = {"content-type": "text/event-stream"}


@pytest.fixture
def handler(monkeypatch, memory_handler):
    monkeypatch.setattr(chat_entry, "get_handler", lambda: memory_handler)
    return memory_handler


@pytest.fixture
async def token(django_user_model):
    def make():
        return Token.objects.create(user=django_user_model.objects.create_user("carol")).plaintext

    return await sync_to_async(make)()


@pytest.fixture
async def oai(handler):
    await sync_to_async(registry.register_provider)(
        kind="openai", name="oai", default_model="gpt-4o", api_key="sk-test-0123456789abcdef", max_retries=0
    )


async def test_create_with_instructions_reaches_the_provider_and_answers_a_response(handler, oai, sdk):
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=completion("Bonjour"))
        raw = await sdk.responses.with_raw_response.create(
            model="oai/gpt-4o",
            instructions="Answer in French.",
            input="Hello",
            temperature=0.2,
            max_output_tokens=40,
            metadata={"team": "web"},
            reasoning={"effort": "low"},
            text={"format": {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True}},
        )
    response = raw.parse()
    assert response.output_text == "Bonjour" and response.status == "completed"
    assert response.id.startswith("resp_") and response.model == "oai/gpt-4o"
    assert response.usage.input_tokens == 9 and response.usage.total_tokens == 12
    assert response.metadata == {"team": "web"} and response.instructions == "Answer in French."
    assert raw.headers["x-byok-provider"] == "oai" and raw.headers["x-byok-request-id"] in response.id
    sent = json.loads(route.calls.last.request.content)
    assert sent["messages"] == [
        {"role": "system", "content": "Answer in French."},
        {"role": "user", "content": "Hello"},
    ]
    assert sent["temperature"] == 0.2 and sent["max_completion_tokens"] == 40
    assert sent["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "out", "schema": {"type": "object"}, "strict": True},
    }
    assert sent["reasoning_effort"] == "low"
    await handler.flush_usage()
    rows = await sync_to_async(lambda: list(UsageRecord.objects.all()))()
    assert [r.interface for r in rows] == ["responses"]


async def test_stream_text_deltas_and_the_final_response(handler, oai, sdk):
    body = sse(chunk({"role": "assistant", "content": ""}), chunk({"content": "Hel"}), chunk({"content": "lo"}))
    body = body[: -len(b"data: [DONE]\n\n")] + sse(chunk({}, "stop"))
    with respx.mock:
        respx.post(OPENAI).respond(200, headers=SSE, content=body)
        async with sdk.responses.stream(model="oai/gpt-4o", input="Hi") as stream:
            deltas = [e.delta async for e in stream if e.type == "response.output_text.delta"]
            final = await stream.get_final_response()
    assert deltas == ["Hel", "lo"] and final.output_text == "Hello" and final.status == "completed"


async def test_function_call_then_its_output_on_the_next_turn(handler, oai, sdk):
    call = {"id": "call_7", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}}
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=completion(None, tool_calls=[call], finish="tool_calls"))
        first = await sdk.responses.create(
            model="oai/gpt-4o", input="Weather in Paris?", tools=[WEATHER], tool_choice="required"
        )
        (fc,) = [o for o in first.output if o.type == "function_call"]
        assert (fc.call_id, fc.name, json.loads(fc.arguments)) == ("call_7", "get_weather", {"city": "Paris"})
        sent = json.loads(route.calls.last.request.content)
        assert sent["tool_choice"] == "required" and sent["tools"][0]["function"]["name"] == "get_weather"

        route = respx.post(OPENAI).respond(200, json=completion("21 degrees."))
        history = [{"role": "user", "content": "Weather in Paris?"}, *[o.model_dump() for o in first.output]]
        history.append({"type": "function_call_output", "call_id": fc.call_id, "output": '{"t": 21}'})
        second = await sdk.responses.create(model="oai/gpt-4o", input=history, tools=[WEATHER])
    assert second.output_text == "21 degrees."
    messages = json.loads(route.calls.last.request.content)["messages"]
    assert messages[1]["tool_calls"][0]["id"] == "call_7"
    assert messages[2] == {"role": "tool", "tool_call_id": "call_7", "content": '{"t": 21}'}


async def test_max_output_tokens_cut_is_incomplete(handler, oai, sdk):
    with respx.mock:
        respx.post(OPENAI).respond(200, json=completion("The quick", finish="length"))
        response = await sdk.responses.create(model="oai/gpt-4o", input="Go on", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"


async def test_bad_requests_are_openai_400s_naming_the_field(handler, oai, sdk):
    with pytest.raises(openai.BadRequestError) as exc:
        await sdk.responses.create(model="oai/gpt-4o", input="hi", previous_response_id="resp_1")
    assert exc.value.body["param"] == "previous_response_id"
    assert exc.value.body["code"] == "previous_response_not_supported"
    with pytest.raises(openai.BadRequestError) as exc:
        await sdk.responses.create(model="oai/gpt-4o", input="hi", tools=[{"type": "web_search"}])
    assert exc.value.body["param"] == "tools[0].type"
    with pytest.raises(openai.BadRequestError) as exc:
        await sdk.responses.create(model="oai/gpt-4o", input="hi", extra_body={"frobnicate": True})
    assert exc.value.body == {
        "message": "Unknown parameter: 'frobnicate'.",
        "type": "invalid_request_error",
        "param": "frobnicate",
        "code": "unknown_parameter",
    }


async def test_auth_method_and_size(handler, token, settings):
    anonymous = AsyncClient()
    response = await anonymous.post("/v1/responses", {"model": "m", "input": "hi"}, content_type="application/json")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"
    client = AsyncClient(AUTHORIZATION=f"Bearer {token}")
    response = await client.get("/v1/responses")
    assert response.status_code == 405 and response["Allow"] == "POST"
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 10
    request = AsyncRequestFactory().post(
        "/v1/responses", {"model": "m", "input": "x" * 100}, content_type="application/json"
    )
    request.META.pop("CONTENT_LENGTH")
    request.META["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    response = await views_responses.responses(request)
    assert response.status_code == 413 and json.loads(response.content)["error"]["code"] == "payload_too_large"


class Stalling(httpx.AsyncByteStream):
    """An upstream that goes silent after its first piece until released (a long thinking pause)."""

    def __init__(self, first: bytes, rest: bytes) -> None:
        self.first, self.rest, self.release = first, rest, asyncio.Event()

    async def __aiter__(self):
        yield self.first
        await self.release.wait()
        yield self.rest


async def test_a_silent_upstream_gets_keep_alive_comments_and_the_sdk_still_the_whole_answer(
    handler, oai, token, monkeypatch
):
    monkeypatch.setattr(chat_entry, "KEEPALIVE_S", 0.01)
    upstream = Stalling(
        sse(chunk({"role": "assistant", "content": "Hel"}), done=False), sse(chunk({"content": "lo"}, "stop"))
    )
    request = AsyncRequestFactory().post(
        "/v1/responses", {"model": "oai/gpt-4o", "input": "Hi", "stream": True}, content_type="application/json"
    )
    request.META["HTTP_AUTHORIZATION"] = f"Bearer {token}"
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=upstream))
        response = await views_responses.responses(request)
        body = aiter(response)
        raw = b""
        while b": keep-alive\n\n" not in raw:  # the upstream is stalled: only a keep-alive can come
            raw += await asyncio.wait_for(anext(body), 10)
        upstream.release.set()
        raw += b"".join([piece async for piece in body])
    assert raw.index(b'"delta":"Hel"') < raw.index(b": keep-alive\n\n") < raw.index(b'"delta":"lo"')

    def replay(_request):
        return httpx2.Response(200, headers=SSE, content=raw)

    judge = openai.AsyncOpenAI(
        base_url="http://testserver/v1",
        api_key="k",
        http_client=httpx2.AsyncClient(transport=httpx2.MockTransport(replay)),
    )
    async with judge.responses.stream(model="oai/gpt-4o", input="Hi") as stream:
        kinds = [event.type async for event in stream]
        final = await stream.get_final_response()
    assert kinds[0] == "response.created" and kinds[-1] == "response.completed"
    assert final.output_text == "Hello" and final.status == "completed"


async def test_upstream_failure_before_the_first_token_is_a_json_error(handler, oai, sdk):
    with respx.mock:
        respx.post(OPENAI).respond(503, json={"error": {"message": "down"}})
        for stream in (False, True):
            with pytest.raises(openai.InternalServerError) as exc:
                await sdk.responses.create(model="oai/gpt-4o", input="hi", stream=stream)
            assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_failed"


async def test_upstream_failure_after_the_first_token_ends_with_response_failed(handler, oai, sdk):
    first = sse(chunk({"content": "Hel"}), done=False)
    broken = b'data: {"error": {"message": "The server had an error", "type": "server_error"}}\n\n'
    seen = []
    with respx.mock:
        respx.post(OPENAI).mock(return_value=httpx.Response(200, headers=SSE, stream=Pieces(first, broken)))
        stream = await sdk.responses.create(model="oai/gpt-4o", input="hi", stream=True)
        with pytest.raises(openai.APIError, match="server had an error"):
            async for event in stream:
                seen.append(event)
    assert seen[-1].type == "response.failed" and seen[-1].response.status == "failed"
    assert seen[-1].response.error.code == "server_error"
    assert [e.delta for e in seen if e.type == "response.output_text.delta"] == ["Hel"]


ANTHROPIC = "https://api.anthropic.com/v1/messages"
CLAUDE = {
    "id": "msg_1",
    "type": "message",
    "role": "assistant",
    "model": "claude-sonnet-4",
    "content": [{"type": "text", "text": "from the fallback"}],
    "stop_reason": "end_turn",
    "usage": {"input_tokens": 5, "output_tokens": 3},
}


async def test_failover_serves_the_response_from_the_next_provider(handler, oai, sdk):
    def chain():
        from byok.changes import announce
        from byok.models import FailoverPolicy, FailoverStep, Provider

        registry.register_provider(
            kind="anthropic", name="claude", default_model="claude-sonnet-4", api_key="sk-ant-0123456789abcdef"
        )
        policy = FailoverPolicy.objects.create(
            name="oai-chain", primary=Provider.objects.get(name="oai"), max_retries=0
        )
        FailoverStep.objects.create(policy=policy, provider=Provider.objects.get(name="claude"), position=0)
        announce(None)

    await sync_to_async(chain)()
    with respx.mock:
        respx.post(OPENAI).respond(503, json={"error": {"message": "down"}})
        fallback = respx.post(ANTHROPIC).respond(200, json=CLAUDE)
        raw = await sdk.responses.with_raw_response.create(model="gpt-4o", instructions="Be kind.", input="Hi")
    response = raw.parse()
    assert response.output_text == "from the fallback" and response.model == "claude/claude-sonnet-4"
    assert raw.headers["x-byok-provider"] == "claude" and raw.headers["x-byok-attempts"] == "2"
    assert json.loads(fallback.calls.last.request.content)["system"] == "Be kind."


async def test_a_spent_budget_is_a_429_with_retry_after(handler, oai, sdk, django_user_model):
    def budget():
        from byok import budget_store as budgets

        user = django_user_model.objects.get(username="carol")  # the sdk's token is carol's
        budgets.create_budget(actor=None, user=user.pk, token_limit=1, period="day")

    await sync_to_async(budget)()
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=completion("x"))
        with pytest.raises(openai.RateLimitError) as exc:
            await sdk.responses.create(model="oai/gpt-4o", input="A prompt longer than one token")
    assert exc.value.body["code"] == "budget_exceeded" and int(exc.value.response.headers["retry-after"]) >= 1
    assert route.call_count == 0


async def test_parse_with_a_pydantic_model_through_anthropic_structured_outputs(handler, sdk):
    from pydantic import BaseModel

    class Capital(BaseModel):
        city: str
        country: str

    await sync_to_async(registry.register_provider)(
        kind="anthropic", name="claude", default_model="claude-sonnet-4-5", api_key="sk-ant-0123456789abcdef"
    )
    answer = {**CLAUDE, "content": [{"type": "text", "text": '{"city": "Paris", "country": "France"}'}]}
    with respx.mock:
        route = respx.post(ANTHROPIC).respond(200, json=answer)
        response = await sdk.responses.parse(
            model="claude/claude-sonnet-4-5", input="The capital of France?", text_format=Capital
        )
    assert response.output_parsed == Capital(city="Paris", country="France")
    sent = json.loads(route.calls.last.request.content)
    assert sent["output_config"]["format"]["type"] == "json_schema"
    assert set(sent["output_config"]["format"]["schema"]["properties"]) == {"city", "country"}
