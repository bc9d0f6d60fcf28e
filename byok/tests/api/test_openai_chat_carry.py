"""/v1/chat/completions carries more than text: image_url parts, cache_control on parts, response_format,
reasoning_effort, parallel_tool_calls, user/metadata, and what byok's answers gave the client to send back
(thinking_blocks with signatures, reasoning_content, Gemini thought signatures on tool calls). The last tests
hold a whole tool conversation with Anthropic thinking and with Gemini 3 through the endpoint, against the fake
provider, which refuses the second turn if a signature was lost."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry
from byok.gateway.handler import BYOKHandler
from byok.providers.types import CacheControl, ImagePart, ResponseFormat, TextPart, Thinking
from byok.schemas.openai_chat import InvalidRequest, parse_chat_completion
from byok.state import MemoryStateBackend, MemoryStore
from devtools.fakeprovider import anthropic_format, gemini_format
from devtools.fakeprovider.server import start_server

EPHEMERAL = {"type": "ephemeral"}


def parse(**body):
    body.setdefault("model", "m")
    body.setdefault("messages", [{"role": "user", "content": "hi"}])
    return parse_chat_completion(body).request


def test_image_url_parts_and_cache_control_are_kept():
    req = parse(
        messages=[
            {"role": "system", "content": [{"type": "text", "text": "rules", "cache_control": EPHEMERAL}]},
            {
                "role": "user",
                "content": [
                    {"type": "text", "text": "What is this?"},
                    {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "high"}},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
                ],
            },
        ]
    )
    system, user = req.messages
    assert system.parts == (TextPart(text="rules", cache_control=CacheControl()),) and system.content is None
    assert user.parts == (
        TextPart(text="What is this?"),
        ImagePart(url="https://x/cat.png", detail="high"),
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
    )
    plain = parse(
        messages=[{"role": "user", "content": [{"type": "text", "text": "a"}, {"type": "text", "text": "b"}]}]
    )
    assert plain.messages[0].content == "a\nb" and plain.messages[0].parts == ()


@pytest.mark.parametrize(
    ("url", "needle"),
    [("ftp://x/cat.png", "http"), ("data:image/png,raw", "base64"), ("data:image/png;base64,@@@", "base64")],
)
def test_bad_image_urls_are_a_400_naming_the_part(url, needle):
    with pytest.raises(InvalidRequest, match=needle) as info:
        parse(messages=[{"role": "user", "content": [{"type": "image_url", "image_url": {"url": url}}]}])
    assert info.value.param == "messages[0].content[0].image_url"


def test_response_format_reasoning_effort_and_the_rest_are_carried():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    req = parse(
        response_format={"type": "json_schema", "json_schema": {"name": "answer", "schema": schema, "strict": True}},
        reasoning_effort="low",
        parallel_tool_calls=False,
        user="u-1",
        metadata={"team": "blue"},
    )
    assert req.response_format == ResponseFormat(type="json_schema", name="answer", schema=schema, strict=True)
    assert (req.reasoning_effort, req.parallel_tool_calls, req.user, req.metadata) == (
        "low",
        False,
        "u-1",
        {"team": "blue"},
    )
    assert parse(response_format={"type": "json_object"}).response_format == ResponseFormat(type="json_object")
    assert parse(response_format={"type": "text"}).response_format is None


def test_what_answers_gave_back_is_read_from_assistant_messages():
    req = parse(
        messages=[
            {"role": "user", "content": "weather?"},
            {
                "role": "assistant",
                "content": None,
                "reasoning_content": "shown reasoning",
                "thinking_blocks": [
                    {"type": "thinking", "thinking": "t", "signature": "SIG"},
                    {"type": "redacted_thinking", "data": "OPAQUE"},
                ],
                "tool_calls": [
                    {
                        "id": "c1",
                        "type": "function",
                        "function": {"name": "f", "arguments": "{}"},
                        "extra_content": {"google": {"thought_signature": "GSIG"}},
                    }
                ],
            },
            {
                "role": "tool",
                "tool_call_id": "c1",
                "content": [{"type": "text", "text": "ok", "cache_control": EPHEMERAL}],
            },
            {"role": "assistant", "content": "done", "reasoning_content": "deepseek"},
        ]
    )
    assistant, tool, last = req.messages[1], req.messages[2], req.messages[3]
    assert assistant.thinking == (Thinking(text="t", signature="SIG"), Thinking(redacted="OPAQUE"))
    assert assistant.tool_calls[0].thought_signature == "GSIG"
    assert tool.parts == (TextPart(text="ok", cache_control=CacheControl()),)
    assert last.thinking == (Thinking(text="deepseek"),)


# -- a whole conversation through the endpoint, against the fake provider ---------------------------

WEATHER = {
    "type": "function",
    "function": {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}},
}


@pytest.fixture
async def client(settings, monkeypatch, django_user_model):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    store = MemoryStore()
    handler = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store))
    monkeypatch.setattr(chat_entry, "get_handler", lambda: handler)
    runner, url = await start_server()

    def token() -> str:
        return Token.objects.create(user=django_user_model.objects.create_user("erin")).plaintext  # type: ignore[attr-defined]  # set on save

    yield AsyncClient(AUTHORIZATION=f"Bearer {await sync_to_async(token)()}"), url
    await runner.cleanup()


async def post(api, body):
    return await api.post("/v1/chat/completions", json.dumps(body), content_type="application/json")


async def tool_loop(api, model, **extra):
    ask = {"role": "user", "content": "What is the weather in Paris?"}
    first = await post(api, {"model": model, "messages": [ask], "tools": [WEATHER], **extra})
    assert first.status_code == 200, first.content
    message = first.json()["choices"][0]["message"]
    call = message["tool_calls"][0]
    result = {"role": "tool", "tool_call_id": call["id"], "content": "15 degrees"}
    second = await post(api, {"model": model, "messages": [ask, message, result], "tools": [WEATHER], **extra})
    return message, second, (ask, result)


@pytest.mark.django_db(transaction=True)
async def test_anthropic_thinking_round_trips_through_the_openai_dialect(client):
    api, url = client
    await sync_to_async(registry.register_provider)(
        kind="anthropic",
        name="claude",
        base_url=f"{url}/anthropic",
        api_key="sk-ant-0123456789abcdef",
        default_model="claude-sonnet-4-20250514",
    )
    message, second, (ask, result) = await tool_loop(api, "claude/claude-sonnet-4-20250514", reasoning_effort="low")
    assert message["thinking_blocks"][0]["signature"] == anthropic_format.SIGNATURE
    assert second.status_code == 200, second.content
    assert second.json()["choices"][0]["message"]["content"]
    stripped = {k: v for k, v in message.items() if k != "thinking_blocks"}
    refused = await post(
        api,
        {
            "model": "claude/claude-sonnet-4-20250514",
            "messages": [ask, stripped, result],
            "tools": [WEATHER],
            "reasoning_effort": "low",
        },
    )
    assert refused.status_code == 400  # the fake, like Anthropic, wants the signed block back


@pytest.mark.django_db(transaction=True)
async def test_gemini_thought_signature_round_trips_through_the_openai_dialect(client):
    api, url = client
    await sync_to_async(registry.register_provider)(
        kind="gemini",
        name="gem",
        base_url=f"{url}/v1beta",
        api_key="AIzaSyA-0123456789abcdefghijklmnop",
        default_model="gemini-3-pro-preview",
    )
    message, second, _ = await tool_loop(api, "gem/gemini-3-pro-preview")
    assert message["tool_calls"][0]["extra_content"] == {"google": {"thought_signature": gemini_format.SIGNATURE}}
    assert second.status_code == 200, second.content


def test_a_redacted_thinking_block_without_data_is_a_400_naming_it():
    turn = {"role": "assistant", "content": "x", "thinking_blocks": [{"type": "redacted_thinking", "data": None}]}
    with pytest.raises(InvalidRequest) as exc:
        parse_chat_completion({"model": "m", "messages": [{"role": "user", "content": "Hi"}, turn]})
    assert exc.value.param == "messages[1].thinking_blocks[0].data" and exc.value.code == "invalid_value"
