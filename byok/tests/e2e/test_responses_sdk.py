"""The official `openai` SDK's Responses API against a real daphne serving byok, in front of every provider kind.

One fake provider process and one daphne for the module; an OpenAI, an Anthropic, a DeepSeek and a
Gemini provider registered against the fake (plus two that fail), a normal user's byok token as the
SDK's api key. Each test asserts what the SDK hands its user and, through the fake's request log,
what reached the provider.
"""

from __future__ import annotations

import json
import uuid

import openai
import pytest

from byok.tests.live import drop_live_env, live_env, manage, start_daphne, start_fake_provider
from byok.tests.openai_fakes import WEATHER

KINDS = {  # provider name -> (kind, model, base path on the fake)
    "oai": ("openai", "gpt-x", "/v1"),
    "anthropic": ("anthropic", "claude-x", "/anthropic"),
    "deepseek": ("deepseek", "deepseek-reasoner", "/deepseek"),
    "gemini": ("gemini", "gemini-x", "/v1beta"),
}
FAILING = {  # provider name -> (model, fake settings)
    "down": ("gpt-down", "fault=500"),
    "midfail": ("gpt-midfail", "fault=stream_error;chunks=6;fault_after=2"),
}
_SHELL = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
print("TOKEN", Token.objects.create(user=User.objects.create_user("dana")).plaintext)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("responses-live")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    server = start_daphne(env, tmp, extra_env={"BYOK_STATE_PREFIX": f"byok-resp-live-{uuid.uuid4().hex[:8]}:"})
    try:
        with server.admin() as admin:
            for name, (kind, model, path) in KINDS.items():
                body = {"provider": kind, "name": name, "model": model, "base_url": fake.url + path}
                r = admin.post("/api/providers/register", json={**body, "api_key": f"sk-live-{name}-0123456789abcdef"})
                assert r.status_code == 201, r.text
            for name, (model, cfg) in FAILING.items():
                body = {"provider": "openai", "name": name, "model": model, "base_url": f"{fake.url}/cfg/{cfg}/v1"}
                r = admin.post(
                    "/api/providers/register", json={**body, "api_key": "sk-live-x-0123456789", "max_retries": 0}
                )
                assert r.status_code == 201, r.text
        token = manage(env, "shell", "-c", _SHELL).split("TOKEN ")[1].split()[0]
        yield server, fake, token
    finally:
        server.stop()
        fake.stop()
        drop_live_env(env)


@pytest.fixture(scope="module")
def client(live):
    server, _, token = live
    with openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=20) as c:
        yield c


def upstream(fake, model: str) -> dict:
    """The body of the last request the fake provider saw for `model`."""
    with fake.control() as c:
        records = c.get("/_control/requests", params={"model": model}).json()
    assert records, f"no upstream request for {model}"
    return records[-1]["body"]


def target(name: str) -> str:
    return f"{name}/{KINDS[name][1]}"


@pytest.mark.parametrize("name", list(KINDS))
def test_create_with_instructions_each_kind(live, client, name):
    _, fake, _ = live
    raw = client.responses.with_raw_response.create(
        model=target(name), instructions="You are INSTRUCTIONS-MARKER.", input="Say something.", temperature=0.5
    )
    response = raw.parse()
    assert raw.headers["x-byok-provider"] == name
    assert response.status == "completed" and response.model == target(name)
    assert "quick brown fox" in response.output_text
    assert response.usage.output_tokens > 0 and response.usage.total_tokens >= response.usage.input_tokens
    assert "INSTRUCTIONS-MARKER" in json.dumps(upstream(fake, KINDS[name][1]))
    if name == "deepseek":  # deepseek-reasoner thinks first: its reasoning is a reasoning item
        assert response.output[0].type == "reasoning" and response.output[0].summary[0].text


@pytest.mark.parametrize("name", list(KINDS))
def test_function_call_then_its_output_each_kind(live, client, name):
    _, fake, _ = live
    ask = [{"role": "user", "content": [{"type": "input_text", "text": "What is the weather in Paris?"}]}]
    first = client.responses.create(model=target(name), input=ask, tools=[WEATHER], tool_choice="auto")
    (call,) = [o for o in first.output if o.type == "function_call"]
    assert call.name == "get_weather" and json.loads(call.arguments) == {"city": "Paris"} and call.call_id
    assert first.status == "completed"

    history = ask + [o.model_dump(exclude_none=True) for o in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": '{"temperature": "TOOL-21"}'})
    second = client.responses.create(model=target(name), input=history, tools=[WEATHER])
    assert second.output_text and not [o for o in second.output if o.type == "function_call"]
    assert "TOOL-21" in json.dumps(upstream(fake, KINDS[name][1]))


@pytest.mark.parametrize("name", list(KINDS))
def test_stream_text_deltas_and_final_response_each_kind(client, name):
    with client.responses.stream(model=target(name), input="Stream please.") as stream:
        events = list(stream)
        final = stream.get_final_response()
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert "quick brown fox" in deltas and deltas == final.output_text
    assert events[0].type == "response.created" and events[-1].type == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    assert final.status == "completed" and final.usage.output_tokens > 0


@pytest.mark.parametrize("name", list(KINDS))
def test_stream_function_call_each_kind(client, name):
    ask = "What is the weather in Paris?"
    with client.responses.stream(model=target(name), input=ask, tools=[WEATHER]) as stream:
        events = list(stream)
        final = stream.get_final_response()
    (call,) = [o for o in final.output if o.type == "function_call"]
    streamed = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")
    assert json.loads(streamed) == json.loads(call.arguments) == {"city": "Paris"}


@pytest.mark.parametrize("name", list(KINDS))
def test_max_output_tokens_is_incomplete_each_kind(client, name):
    response = client.responses.create(model=target(name), input="Go on.", max_output_tokens=2)
    assert response.status == "incomplete" and response.incomplete_details.reason == "max_output_tokens"
    assert response.output_text


@pytest.mark.parametrize("name", ["oai", "anthropic", "gemini"])
def test_json_schema_reaches_the_provider(live, client, name):
    _, fake, _ = live
    schema = {"type": "object", "properties": {"capital_city_marker": {"type": "string"}}, "required": []}
    response = client.responses.create(
        model=target(name),
        input="The capital of France?",
        text={"format": {"type": "json_schema", "name": "capital", "schema": schema, "strict": True}},
    )
    assert response.status == "completed" and response.text.format.type == "json_schema"
    assert "capital_city_marker" in json.dumps(upstream(fake, KINDS[name][1]))


def test_deepseek_takes_json_object_and_refuses_json_schema(live, client):
    _, fake, _ = live
    response = client.responses.create(
        model=target("deepseek"), input="Answer in JSON.", text={"format": {"type": "json_object"}}
    )
    assert response.status == "completed"
    assert upstream(fake, "deepseek-reasoner")["response_format"] == {"type": "json_object"}
    schema = {"type": "json_schema", "name": "x", "schema": {"type": "object"}}
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=target("deepseek"), input="hi", text={"format": schema})
    assert "json_schema" in exc.value.body["message"]


def test_errors_in_openai_shape(live, client):
    server, _, _ = live
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=target("oai"), input="hi", previous_response_id="resp_abc")
    assert exc.value.body["code"] == "previous_response_not_supported"
    assert exc.value.body["param"] == "previous_response_id"
    with pytest.raises(openai.BadRequestError) as exc:
        client.responses.create(model=target("oai"), input=[{"type": "item_reference", "id": "msg_1"}])
    assert exc.value.body["param"] == "input[0].type"
    with openai.OpenAI(base_url=server.url + "/v1", api_key="not-a-byok-token", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError):
            bad.responses.create(model=target("oai"), input="hi")
    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as exc:
            client.responses.create(model="down/gpt-down", input="hi", stream=stream)
        assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_failed"


def test_failure_mid_stream_ends_with_response_failed(client):
    seen = []
    with pytest.raises(openai.APIError):
        with client.responses.stream(model="midfail/gpt-midfail", input="hi") as stream:
            for event in stream:
                seen.append(event)
    assert any(e.type == "response.output_text.delta" for e in seen), "tokens arrived before the failure"
    assert seen[-1].type == "response.failed" and seen[-1].response.status == "failed"


@pytest.mark.parametrize("stream", [False, True])
def test_anthropic_thinking_signature_survives_the_next_turn(live, client, stream):
    """Reasoning with tools on Anthropic: the signed thinking block goes back with the tool result."""
    _, fake, _ = live
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    options = {"model": target("anthropic"), "tools": [WEATHER], "reasoning": {"effort": "low"}}
    if stream:
        with client.responses.stream(input=ask, **options) as s:
            first = s.get_final_response()
    else:
        first = client.responses.create(input=ask, **options)
    sent = upstream(fake, "claude-x")
    assert sent["thinking"]["type"] == "enabled" and sent["thinking"]["budget_tokens"] > 0
    reasoning, call = first.output[0], first.output[-1]
    assert reasoning.type == "reasoning" and reasoning.summary[0].text and reasoning.encrypted_content
    assert call.type == "function_call"

    history = ask + [o.model_dump(exclude_none=True) for o in first.output]
    history.append({"type": "function_call_output", "call_id": call.call_id, "output": "21 degrees"})
    second = client.responses.create(input=history, **options)
    assert second.output_text
    assistant = next(m for m in upstream(fake, "claude-x")["messages"] if m["role"] == "assistant")
    thinking = assistant["content"][0]
    assert thinking["type"] == "thinking" and thinking["signature"] == "ZmFrZXByb3ZpZGVyLXNpZ25hdHVyZQ=="
    assert thinking["thinking"] == reasoning.summary[0].text
    assert assistant["content"][-1]["type"] == "tool_use" and assistant["content"][-1]["id"] == call.call_id


PIXEL = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8BQDwAEhQGAhKmMIQAAAABJRU5ErkJggg=="


@pytest.mark.parametrize("name", ["anthropic", "gemini"])
def test_an_input_image_reaches_the_provider_inline(live, client, name):
    _, fake, _ = live
    content = [
        {"type": "input_text", "text": "What is in this picture?"},
        {"type": "input_image", "image_url": f"data:image/png;base64,{PIXEL}", "detail": "auto"},
    ]
    response = client.responses.create(model=target(name), input=[{"role": "user", "content": content}])
    assert response.status == "completed" and response.output_text
    sent = json.dumps(upstream(fake, KINDS[name][1]))
    assert PIXEL in sent and "image/png" in sent and "What is in this picture?" in sent
