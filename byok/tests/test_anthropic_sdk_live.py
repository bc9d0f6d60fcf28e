"""The official `anthropic` SDK against a real daphne serving byok, with providers of every kind on the fake upstream.

One fake provider process and one daphne for the module; a normal (non-staff) user's byok token is
the SDK's api key. Each provider kind answers Anthropic's Messages API through byok: create, stream,
count_tokens, a tool-use round trip, thinking where the upstream thinks, and the error types.
"""

from __future__ import annotations

import json
import uuid
from typing import Any

import anthropic
import pytest

from byok.tests.live import drop_live_env, live_env, manage, start_daphne, start_fake_provider

KINDS = {  # provider name -> (kind, model)
    "oai": ("openai", "gpt-x"),
    "claude": ("anthropic", "claude-x"),
    "deepseek": ("deepseek", "deepseek-reasoner"),
    "gemini": ("gemini", "gemini-2.5-flash"),
}
BASES = {"openai": "/v1", "anthropic": "/anthropic", "deepseek": "/deepseek", "gemini": "/v1beta"}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
ASK_WEATHER = [{"role": "user", "content": "What is the weather in Paris?"}]
_SHELL = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
print("TOKEN", Token.objects.create(user=User.objects.create_user("dora")).plaintext)
"""


def _providers(fake: str) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = [
        {
            "provider": kind,
            "name": name,
            "model": model,
            "base_url": fake + BASES[kind],
            "api_key": f"sk-live-{name}-0123456789abcdef",
        }
        for name, (kind, model) in KINDS.items()
    ]
    cfg = f"{fake}/cfg"
    out += [
        {  # every key rate limited for 30 s: more than byok waits, so it answers 429 at once
            "provider": "openai",
            "name": "limited",
            "model": "gpt-limited",
            "base_url": f"{cfg}/fault=429;retry_after=30/v1",
            "api_key": "sk-live-limited-0123456789abcdef",
            "max_retries": 0,
        },
        {
            "provider": "openai",
            "name": "down",
            "model": "gpt-down",
            "base_url": f"{cfg}/fault=500/v1",
            "api_key": "sk-live-down-0123456789abcdef",
            "max_retries": 0,
        },
        {
            "provider": "anthropic",
            "name": "midfail",
            "model": "claude-midfail",
            "base_url": f"{cfg}/fault=stream_error;chunks=6;fault_after=2/anthropic",
            "api_key": "sk-live-midfail-0123456789abcdef",
            "max_retries": 0,
        },
    ]
    return out


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("anthropic-sdk-live")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    server = start_daphne(env, tmp, extra_env={"BYOK_STATE_PREFIX": f"byok-anthropic-live-{uuid.uuid4().hex[:8]}:"})
    try:
        with server.admin() as admin:
            for body in _providers(fake.url):
                r = admin.post("/api/providers/register", json=body)
                assert r.status_code == 201, r.text
        out = manage(env, "shell", "-c", _SHELL)
        token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN "))
        yield server, fake, token
    finally:
        server.stop()
        fake.stop()
        drop_live_env(env)


@pytest.fixture(scope="module")
def client(live):
    server, _, token = live
    with anthropic.Anthropic(base_url=server.url, api_key=token, max_retries=0, timeout=20) as c:
        yield c


def upstream_requests(fake, model: str) -> list[dict]:
    with fake.control() as c:
        return c.get("/_control/requests", params={"model": model}).json()


@pytest.mark.parametrize("name", list(KINDS))
def test_create_each_kind(live, client, name):
    _, fake, _ = live
    model = KINDS[name][1]
    raw = client.messages.with_raw_response.create(
        model=f"{name}/{model}",
        max_tokens=50,
        system="You are SYSTEM-MARKER.",
        messages=[
            {"role": "user", "content": "first USER-ONE"},
            {"role": "assistant", "content": "reply ASSISTANT-ONE"},
            {"role": "user", "content": [{"type": "text", "text": "second USER-TWO"}]},
        ],
        stop_sequences=["\n\n\n"],
        metadata={"user_id": "user-42"},
    )
    message = raw.parse()
    assert raw.headers["x-byok-provider"] == name and raw.headers["x-byok-request-id"]
    assert message.type == "message" and message.role == "assistant" and message.id.startswith("msg_")
    assert message.model == f"{name}/{model}" and message.stop_reason == "end_turn"
    text = "".join(b.text for b in message.content if b.type == "text")
    assert "quick brown fox" in text
    assert message.usage.output_tokens > 0 and message.usage.input_tokens > 0
    sent = json.dumps(upstream_requests(fake, model)[-1]["body"])
    for marker in ("SYSTEM-MARKER", "USER-ONE", "ASSISTANT-ONE", "USER-TWO"):
        assert marker in sent


@pytest.mark.parametrize("name", list(KINDS))
def test_stream_each_kind(client, name):
    with client.messages.stream(
        model=f"{name}/{KINDS[name][1]}", max_tokens=50, messages=[{"role": "user", "content": "Stream please."}]
    ) as stream:
        texts = list(stream.text_stream)
        final = stream.get_final_message()
    assert "quick brown fox" in "".join(texts)
    assert [b.text for b in final.content if b.type == "text"] == ["".join(texts)]
    assert final.stop_reason == "end_turn" and final.usage.output_tokens > 0 and final.usage.input_tokens > 0


@pytest.mark.parametrize("name", list(KINDS))
def test_count_tokens_each_kind_without_calling_it(live, client, name):
    _, fake, _ = live
    model = KINDS[name][1]
    before = len(upstream_requests(fake, model))
    short = client.messages.count_tokens(model=f"{name}/{model}", messages=ASK_WEATHER)
    longer = client.messages.count_tokens(
        model=f"{name}/{model}", messages=ASK_WEATHER, tools=[WEATHER], system="Be brief."
    )
    assert 0 < short.input_tokens < longer.input_tokens
    assert len(upstream_requests(fake, model)) == before


@pytest.mark.parametrize("name", list(KINDS))
def test_tool_use_round_trip_each_kind(live, client, name):
    _, fake, _ = live
    model = KINDS[name][1]
    first = client.messages.create(model=f"{name}/{model}", max_tokens=200, messages=ASK_WEATHER, tools=[WEATHER])
    assert first.stop_reason == "tool_use"
    (use,) = [b for b in first.content if b.type == "tool_use"]
    assert use.name == "get_weather" and use.input == {"city": "Paris"} and use.id

    with client.messages.stream(
        model=f"{name}/{model}", max_tokens=200, messages=ASK_WEATHER, tools=[WEATHER], tool_choice={"type": "any"}
    ) as stream:
        streamed = stream.get_final_message()
    (streamed_use,) = [b for b in streamed.content if b.type == "tool_use"]
    assert streamed.stop_reason == "tool_use" and streamed_use.input == {"city": "Paris"}

    result = {"type": "tool_result", "tool_use_id": streamed_use.id, "content": "TOOL-RESULT-21C"}
    history = [*ASK_WEATHER, streamed.to_param(), {"role": "user", "content": [result]}]
    after = client.messages.create(model=f"{name}/{model}", max_tokens=200, messages=history, tools=[WEATHER])
    assert after.stop_reason == "end_turn" and any(b.type == "text" and b.text for b in after.content)
    assert "TOOL-RESULT-21C" in json.dumps(upstream_requests(fake, model)[-1]["body"])


@pytest.mark.parametrize(("name", "thinking"), [("claude", True), ("gemini", True), ("deepseek", False)])
def test_thinking_where_the_upstream_thinks(live, client, name, thinking):
    _, fake, _ = live
    model = KINDS[name][1]
    extra: dict[str, Any] = {"thinking": {"type": "enabled", "budget_tokens": 1024}} if thinking else {}
    with client.messages.stream(
        model=f"{name}/{model}", max_tokens=2048, messages=ASK_WEATHER, tools=[WEATHER], **extra
    ) as stream:
        kinds = {event.delta.type for event in stream if event.type == "content_block_delta"}
        final = stream.get_final_message()
    assert "thinking_delta" in kinds
    thought = next(b for b in final.content if b.type == "thinking")
    assert thought.thinking.strip()
    if name == "claude":  # Anthropic signs its thinking: the signature must reach the client, then come back
        assert "signature_delta" in kinds and thought.signature
        use = next(b for b in final.content if b.type == "tool_use")
        result = {"type": "tool_result", "tool_use_id": use.id, "content": "sunny"}
        history = [*ASK_WEATHER, final.to_param(), {"role": "user", "content": [result]}]
        client.messages.create(model=f"{name}/{model}", max_tokens=2048, messages=history, tools=[WEATHER], **extra)
        sent = upstream_requests(fake, model)[-1]["body"]["messages"][1]["content"]
        assert {"type": "thinking", "thinking": thought.thinking, "signature": thought.signature} in sent
    whole = client.messages.create(model=f"{name}/{model}", max_tokens=2048, messages=ASK_WEATHER, **extra)
    assert whole.content[0].type == "thinking" and whole.content[0].thinking.strip()


def test_models_for_anthropic_clients(client):
    ids = [m.id for m in client.models.list().data]
    assert {"oai/gpt-x", "claude/claude-x", "gemini/gemini-2.5-flash"} <= set(ids)
    assert client.models.retrieve("claude/claude-x").type == "model"


def test_error_types(live, client):
    server, _, _ = live
    with anthropic.Anthropic(base_url=server.url, api_key="not-a-byok-token", max_retries=0) as bad:
        with pytest.raises(anthropic.AuthenticationError) as auth:
            bad.messages.create(model="oai/gpt-x", max_tokens=5, messages=ASK_WEATHER)
    assert auth.value.body["error"]["type"] == "authentication_error"

    with pytest.raises(anthropic.RateLimitError) as limited:
        client.messages.create(model="limited/gpt-limited", max_tokens=5, messages=ASK_WEATHER)
    assert limited.value.body["error"]["type"] == "rate_limit_error"
    assert 1 <= int(limited.value.response.headers["retry-after"]) <= 30

    for stream in (False, True):
        with pytest.raises(anthropic.InternalServerError) as down:
            client.messages.create(model="down/gpt-down", max_tokens=5, messages=ASK_WEATHER, stream=stream)
        assert down.value.status_code == 502 and down.value.body["error"]["type"] == "api_error"

    with pytest.raises(anthropic.NotFoundError) as missing:
        client.messages.create(
            model="gpt-x", max_tokens=5, messages=ASK_WEATHER, extra_headers={"x-byok-provider": "nosuch"}
        )
    assert missing.value.body["error"]["type"] == "not_found_error"

    with pytest.raises(anthropic.BadRequestError) as invalid:
        client.messages.create(
            model="oai/gpt-x", max_tokens=5, messages=[{"role": "user", "content": [{"type": "document"}]}]
        )
    assert invalid.value.body["error"]["message"].startswith("messages.0.content.0.type")


def test_a_failure_mid_stream_is_an_error_event(client):
    texts: list[str] = []
    with pytest.raises(anthropic.APIStatusError) as failed:
        with client.messages.stream(model="midfail/claude-midfail", max_tokens=50, messages=ASK_WEATHER) as stream:
            texts.extend(stream.text_stream)
    assert "".join(texts), "tokens arrived before the failure"
    assert failed.value.body["error"]["type"] in ("overloaded_error", "api_error")
