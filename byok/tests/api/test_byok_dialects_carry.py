"""byok's own dialects (`POST /api/chat`, the websocket's `chat.request`) carry more than text, both ways:
content parts (text, image by URL or base64 data URL), an assistant turn's signed `thinking` blocks,
tool calls' `thought_signature`, `response_format`, `reasoning_effort`; and the answers give the client
the signed blocks and signatures to send back. The conversation tests hold an Anthropic thinking + tool
loop through each dialect against the fake provider, which (like Anthropic) refuses the second turn when
the signed thinking block is not sent back unchanged."""

from __future__ import annotations

import json

import pytest
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.test import AsyncClient
from rest_framework.authtoken.models import Token

from byok import registry
from byok.api import chat_entry
from byok.gateway.handler import BYOKHandler
from byok.providers.types import ImagePart, ResponseFormat, TextPart, Thinking
from byok.schemas.byok_chat import ByokChatRequest
from byok.state import MemoryStateBackend, MemoryStore
from byok.ws import consumer
from byok.ws.frames import FrameError, parse_chat_request
from byok_project.asgi import application
from devtools.fakeprovider import anthropic_format
from devtools.fakeprovider.server import start_server

PNG = "data:image/png;base64,iVBORw0KGgo="
SIGNED = [{"type": "thinking", "thinking": "t", "signature": "SIG"}, {"type": "redacted_thinking", "data": "OPAQUE"}]
CARRIED = [
    {"role": "system", "content": [{"type": "text", "text": "rules"}]},
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "What is this?"},
            {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
            {"type": "image_url", "image_url": {"url": PNG}},
        ],
    },
    {
        "role": "assistant",
        "thinking": SIGNED,
        "tool_calls": [{"id": "c1", "name": "look", "arguments": "{}", "thought_signature": "GSIG"}],
    },
    {"role": "tool", "tool_call_id": "c1", "content": [{"type": "text", "text": "a cat"}]},
]
EXTRAS = {"response_format": {"type": "json_object"}, "reasoning_effort": "low"}


def check_carried(req):
    system, user, assistant, tool = req.messages
    assert system.content == "rules" and tool.content == "a cat"
    assert user.content is None and user.parts == (
        TextPart(text="What is this?"),
        ImagePart(url="https://x/cat.png", detail="low"),
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
    )
    assert assistant.thinking == (Thinking(text="t", signature="SIG"), Thinking(redacted="OPAQUE"))
    assert assistant.tool_calls[0].thought_signature == "GSIG"
    assert req.response_format == ResponseFormat(type="json_object") and req.reasoning_effort == "low"


def test_api_chat_schema_carries_parts_thinking_signatures_and_options():
    req, _, _ = ByokChatRequest.model_validate({"messages": CARRIED, **EXTRAS}).to_request()
    check_carried(req)
    plain, _, _ = ByokChatRequest.model_validate({"messages": [{"role": "user", "content": "hi"}]}).to_request()
    assert plain.messages[0].content == "hi" and plain.response_format is None and plain.reasoning_effort is None


def test_ws_frame_carries_parts_thinking_signatures_and_options():
    messages = [dict(m) for m in CARRIED]
    messages[2] = {
        **messages[2],
        "tool_calls": [{"id": "c1", "function": {"name": "look"}, "thought_signature": "GSIG"}],
    }
    req, _ = parse_chat_request({"type": "chat.request", "messages": messages, **EXTRAS})
    check_carried(req)


BAD = [
    ([{"role": "user", "content": [{"type": "audio"}]}], {}, "messages[0].content[0].type"),
    ([{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}], {}, "image_url"),
    (
        [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "data:image/png,raw"}}]}],
        {},
        "image_url",
    ),
    ([{"role": "assistant", "content": "x", "thinking": [{"type": "redacted_thinking"}]}], {}, "thinking"),
    ([{"role": "assistant", "content": "x", "thinking": [{"type": "secret"}]}], {}, "thinking"),
    ([{"role": "user", "content": "hi"}], {"response_format": {"type": "xml"}}, "response_format"),
    ([{"role": "user", "content": "hi"}], {"reasoning_effort": "max"}, "reasoning_effort"),
]


@pytest.mark.parametrize(("messages", "extra", "field"), BAD)
def test_ws_bad_carried_fields_are_a_bad_request_frame(messages, extra, field):
    with pytest.raises(FrameError) as caught:
        parse_chat_request({"type": "chat.request", "messages": messages, **extra})
    assert caught.value.code == "bad_request" and field in caught.value.message


# -- through the endpoints, against the fake provider ------------------------------------------------------

WEATHER = {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
ASK = {"role": "user", "content": "What is the weather in Paris?"}
CLAUDE = "claude-sonnet-4-20250514"


@pytest.fixture
async def fake(settings, monkeypatch, django_user_model):
    """(user, api client) with provider `claude` on the fake provider; both dialects use one handler."""
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    store = MemoryStore()
    handler = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store))
    monkeypatch.setattr(chat_entry, "get_handler", lambda: handler)
    monkeypatch.setattr(consumer, "get_handler", lambda: handler)
    runner, url = await start_server()
    await sync_to_async(registry.register_provider)(
        kind="anthropic",
        name="claude",
        base_url=f"{url}/anthropic",
        api_key="sk-ant-0123456789abcdef",
        default_model=CLAUDE,
    )

    def user_and_token():
        user = django_user_model.objects.create_user("erin")
        return user, Token.objects.create(user=user).plaintext

    user, token = await sync_to_async(user_and_token)()
    yield user, AsyncClient(AUTHORIZATION=f"Bearer {token}")
    await runner.cleanup()


async def chat(api, messages, **extra):
    body = {"provider": "claude", "messages": messages, "tools": [WEATHER], "reasoning_effort": "low", **extra}
    return await api.post("/api/chat", json.dumps(body), content_type="application/json")


@pytest.mark.django_db(transaction=True)
async def test_api_chat_bad_part_is_a_422_naming_the_field(fake):
    _, api = fake
    for messages, extra, field in BAD:
        response = await chat(api, messages, **extra)
        assert response.status_code == 422, response.content
        assert any(field in name for name in response.json()["errors"]), (field, response.json())


@pytest.mark.django_db(transaction=True)
async def test_anthropic_thinking_round_trips_through_api_chat(fake):
    _, api = fake
    first = await chat(api, [ASK])
    assert first.status_code == 200, first.content
    message = first.json()["message"]
    assert message["thinking"][0]["signature"] == anthropic_format.SIGNATURE and message["tool_calls"]
    result = {"role": "tool", "tool_call_id": message["tool_calls"][0]["id"], "content": "15 degrees"}
    second = await chat(api, [ASK, message, result])
    assert second.status_code == 200, second.content
    assert second.json()["message"]["content"]
    stripped = {k: v for k, v in message.items() if k != "thinking"}
    refused = await chat(api, [ASK, stripped, result])
    assert refused.status_code == 400, refused.content  # the fake, like Anthropic, wants the signed block back


@pytest.mark.django_db(transaction=True)
async def test_api_chat_stream_gives_the_signed_thinking_in_done(fake):
    _, api = fake
    response = await chat(api, [ASK], stream=True)
    assert response.status_code == 200
    body = b"".join([chunk async for chunk in response.streaming_content]).decode()
    events = {}
    for block in body.strip().split("\n\n"):
        lines = dict(line.split(": ", 1) for line in block.splitlines() if ": " in line)
        events[lines.get("event")] = json.loads(lines["data"])
    assert events["done"]["thinking"][0]["signature"] == anthropic_format.SIGNATURE
    assert events["tool_call"]["name"] == "get_weather"


async def ws_turn(comm, rid, messages) -> list[dict]:
    frame = {"type": "chat.request", "id": rid, "provider": "claude", "messages": messages, "tools": [WEATHER]}
    await comm.send_json_to({**frame, "reasoning_effort": "low"})
    frames: list[dict] = []
    while not frames or frames[-1]["type"] not in ("chat.done", "chat.error"):
        frames.append(await comm.receive_json_from(timeout=10))
    return frames


@pytest.mark.django_db(transaction=True)
async def test_anthropic_thinking_round_trips_through_the_websocket(fake):
    user, _ = fake
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://testserver")])
    comm.scope["user"] = user
    assert (await comm.connect())[0]
    assert (await comm.receive_json_from(timeout=5))["type"] == "chat.ready"
    try:
        done = (await ws_turn(comm, "r1", [ASK]))[-1]
        assert done["type"] == "chat.done", done
        assert done["thinking"][0]["signature"] == anthropic_format.SIGNATURE
        call = done["tool_calls"][0]
        message = {"role": "assistant", "thinking": done["thinking"], "tool_calls": done["tool_calls"]}
        result = {"role": "tool", "tool_call_id": call["id"], "content": "15 degrees"}
        second = (await ws_turn(comm, "r2", [ASK, message, result]))[-1]
        assert second["type"] == "chat.done", second
        stripped = {"role": "assistant", "tool_calls": done["tool_calls"]}
        refused = (await ws_turn(comm, "r3", [ASK, stripped, result]))[-1]
        assert refused["type"] == "chat.error" and refused["code"] != "bad_request", refused
    finally:
        await comm.disconnect()


@pytest.mark.django_db
def test_the_openapi_document_describes_the_carried_fields(client):
    components = client.get("/api/schema?format=json").json()["components"]["schemas"]
    body = components["ByokChatRequest"]["properties"]
    assert {"response_format", "reasoning_effort"} <= set(body)
    assert "thinking" in components["ByokAssistantMessage"]["properties"]
    assert "thought_signature" in components["ByokToolCall"]["properties"]
    assert "OpenAIImageURLPart" in json.dumps(components["ByokUserMessage"])
    assert "thinking" in components["ByokAnswerMessage"]["properties"]
    assert "thought_signature" in components["ByokToolCallOut"]["properties"]
