"""The official `openai` SDK against a real daphne serving byok, with providers on the fake upstream.

One fake provider process and one daphne for the module. Providers of every
kind, registered through the management API, point at the fake, some through `/cfg/` settings that inject faults or
pace the answer. A normal (non-staff) user's byok token is the SDK's api key.
"""

from __future__ import annotations

import json
import time
import uuid
from typing import Any

import httpx
import openai
import pytest

from byok.tests.conftest import CANARY
from byok.tests.live import drop_live_env, live_env, manage, start_daphne, start_fake_provider

GEMINI_CANARY = "AIzaCanary0d1e2f3a4b5c6d7e8f9a0b1c2d3e4f"
KINDS = {  # provider name -> (kind, model)
    "oai": ("openai", "gpt-x"),
    "anthropic": ("anthropic", "claude-x"),
    "deepseek": ("deepseek", "deepseek-reasoner"),
    "gemini": ("gemini", "gemini-x"),
}
WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "The weather in a city.",
        "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    },
}


def _providers(fake: str) -> list[dict]:
    """Register bodies in the management API's shape."""
    bases = {
        "openai": f"{fake}/v1",
        "anthropic": f"{fake}/anthropic",
        "deepseek": f"{fake}/deepseek",
        "gemini": f"{fake}/v1beta",
    }
    out: list[dict[str, Any]] = [
        {
            "provider": kind,
            "name": name,
            "model": model,
            "base_url": bases[kind],
            "api_key": CANARY if name == "oai" else f"sk-live-{name}-0123456789abcdef",
        }
        for name, (kind, model) in KINDS.items()
    ]
    cfg = f"{fake}/cfg"
    out += [
        # every key rate limited for 30 s: more than byok waits, so it answers 429 at once
        {
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
            "provider": "openai",
            "name": "midfail",
            "model": "gpt-midfail",
            "base_url": f"{cfg}/fault=stream_error;chunks=6;fault_after=2;delay_ms=100/v1",
            "api_key": "sk-live-midfail-0123456789abcdef",
            "max_retries": 0,
        },
        {
            "provider": "openai",
            "name": "paced",
            "model": "gpt-paced",
            "base_url": f"{cfg}/first_delay_ms=400;delay_ms=150;chunks=6/v1",
            "api_key": "sk-live-paced-0123456789abcdef",
        },
        {
            "provider": "openai",
            "name": "slow",
            "model": "gpt-slow",
            "base_url": f"{cfg}/chunks=400;delay_ms=50/v1",
            "api_key": "sk-live-slow-0123456789abcdef",
        },
        {
            "provider": "gemini",
            "name": "gembad",
            "model": "gemini-bad",
            "base_url": f"{cfg}/fault=gemini_key_invalid/v1beta",
            "api_key": GEMINI_CANARY,
            "max_retries": 0,
        },
    ]
    return out


# A normal (non-staff) user and its token: the management API creates neither.
_SHELL = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
user = User.objects.create_user("carol")
print("TOKEN", Token.objects.create(user=user).plaintext)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("sdk-live")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    # Its own namespace in a shared Redis: earlier runs' cooldowns (same key ids) must not apply here.
    server = start_daphne(env, tmp, extra_env={"BYOK_STATE_PREFIX": f"byok-sdk-live-{uuid.uuid4().hex[:8]}:"})
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
    with openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=20) as c:
        yield c


def _recorded(fake, model: str) -> dict:
    """The last request the fake upstream saw for `model`."""
    with fake.control() as c:  # (FakeProvider.requests() expects a wrapped list; the recorder answers a bare one)
        records = c.get("/_control/requests", params={"model": model}).json()
    assert records, f"no upstream request for {model}"
    return records[-1]


@pytest.mark.parametrize("name", list(KINDS))
def test_non_stream_each_kind(client, name):
    raw = client.chat.completions.with_raw_response.create(
        model=f"{name}/{KINDS[name][1]}",
        messages=[{"role": "user", "content": "Say something."}],
        temperature=0.2,
        top_p=0.9,
        max_tokens=50,
        stop=["\n\n\n"],
    )
    completion = raw.parse()
    assert raw.headers["x-byok-provider"] == name
    assert raw.headers["x-byok-attempts"] == "1"
    assert float(raw.headers["x-byok-failover-ms"]) == 0.0
    assert raw.headers["x-byok-request-id"] and raw.headers["x-byok-key-hint"].startswith(("sk-", "..."))
    assert completion.object == "chat.completion"
    assert completion.model == f"{name}/{KINDS[name][1]}"
    choice = completion.choices[0]
    assert choice.message.role == "assistant" and "quick brown fox" in choice.message.content
    assert choice.finish_reason == "stop"
    assert completion.usage.completion_tokens > 0 and completion.usage.total_tokens >= completion.usage.prompt_tokens
    if name == "deepseek":
        assert choice.message.model_extra.get("reasoning_content")


@pytest.mark.parametrize("name", list(KINDS))
def test_stream_with_usage_each_kind(client, name):
    stream = client.chat.completions.create(
        model=f"{name}/{KINDS[name][1]}",
        messages=[{"role": "user", "content": "Stream please."}],
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert "quick brown fox" in text
    finals = [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason]
    assert finals == ["stop"]
    assert chunks[-1].choices == [] and chunks[-1].usage.completion_tokens > 0
    assert all(c.object == "chat.completion.chunk" and c.id == chunks[0].id for c in chunks)
    if name == "deepseek":
        assert any((c.choices[0].delta.model_extra or {}).get("reasoning_content") for c in chunks if c.choices)


@pytest.mark.parametrize("name", list(KINDS))
def test_tool_calls_each_kind(client, name):
    model = f"{name}/{KINDS[name][1]}"
    ask = [{"role": "user", "content": "What is the weather in Paris?"}]
    completion = client.chat.completions.create(model=model, messages=ask, tools=[WEATHER_TOOL], tool_choice="auto")
    choice = completion.choices[0]
    assert choice.finish_reason == "tool_calls"
    (call,) = choice.message.tool_calls
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris"}
    assert call.id

    stream = client.chat.completions.create(model=model, messages=ask, tools=[WEATHER_TOOL], stream=True)
    calls: dict[int, dict] = {}
    finish = None
    for chunk in stream:
        for delta in chunk.choices[0].delta.tool_calls or []:
            entry = calls.setdefault(delta.index, {"id": None, "name": None, "arguments": ""})
            entry["id"] = delta.id or entry["id"]
            entry["name"] = (delta.function.name if delta.function else None) or entry["name"]
            entry["arguments"] += (delta.function.arguments or "") if delta.function else ""
        finish = chunk.choices[0].finish_reason or finish
    assert finish == "tool_calls"
    assert [(c["name"], json.loads(c["arguments"])) for c in calls.values()] == [("get_weather", {"city": "Paris"})]
    streamed_id = calls[min(calls)]["id"]
    assert streamed_id

    # The tool's result goes back with the history; the model answers in text.
    history = ask + [
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": streamed_id,
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city": "Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": streamed_id, "content": '{"temperature": 21}'},
    ]
    after = client.chat.completions.create(model=model, messages=history, tools=[WEATHER_TOOL])
    assert after.choices[0].finish_reason == "stop" and after.choices[0].message.content


@pytest.mark.parametrize("name", list(KINDS))
def test_system_prompt_and_history_reach_the_provider(live, client, name):
    _, fake, _ = live
    model = KINDS[name][1]
    completion = client.chat.completions.create(
        model=f"{name}/{model}",
        messages=[
            {"role": "system", "content": "You are SYSTEM-MARKER."},
            {"role": "user", "content": "first USER-ONE"},
            {"role": "assistant", "content": "reply ASSISTANT-ONE"},
            {"role": "user", "content": [{"type": "text", "text": "second USER-TWO"}]},
        ],
    )
    assert completion.choices[0].message.content
    sent = json.dumps(_recorded(fake, model)["body"])
    for marker in ("SYSTEM-MARKER", "USER-ONE", "ASSISTANT-ONE", "USER-TWO"):
        assert marker in sent


def test_models_list(client):
    ids = {m.id for m in client.models.list()}
    assert {f"{n}/{m}" for n, (_, m) in KINDS.items()} <= ids
    assert "gpt-x" in ids and "claude-x" in ids
    assert client.models.retrieve("anthropic/claude-x").owned_by == "anthropic"
    with pytest.raises(openai.NotFoundError):
        client.models.retrieve("nosuch/model")


def test_bare_model_uses_default_routing(client):
    raw = client.chat.completions.with_raw_response.create(model="gpt-x", messages=[{"role": "user", "content": "hi"}])
    assert raw.parse().choices[0].message.content
    assert raw.headers["x-byok-provider"]


def test_stream_is_real_first_byte_with_first_token(live):
    """Headers wait for the first upstream token (400 ms), then chunks arrive one by one (150 ms apart)."""
    server, _, token = live
    body = {"model": "paced/gpt-paced", "messages": [{"role": "user", "content": "hi"}], "stream": True}
    started = time.monotonic()
    with (
        httpx.Client(timeout=20) as c,
        c.stream(
            "POST", server.url + "/v1/chat/completions", json=body, headers={"Authorization": f"Bearer {token}"}
        ) as response,
    ):
        headers_at = time.monotonic() - started
        assert response.status_code == 200 and response.headers["content-type"].startswith("text/event-stream")
        assert response.headers["x-byok-provider"] == "paced"
        arrivals = []
        for line in response.iter_lines():
            if line.startswith("data: ") and '"content"' in line:
                arrivals.append(time.monotonic() - started)
    assert headers_at >= 0.35, "the response started before the first upstream token"
    assert len(arrivals) == 6
    assert arrivals[0] < arrivals[-1] - 0.5, "chunks were buffered instead of streamed"


def test_client_disconnect_cancels_the_upstream_request(live, client):
    _, fake, _ = live
    stream = client.chat.completions.create(
        model="slow/gpt-slow", messages=[{"role": "user", "content": "long"}], stream=True
    )
    received = 0
    for chunk in stream:
        received += bool(chunk.choices and chunk.choices[0].delta.content)
        if received >= 3:
            break
    stream.close()
    deadline = time.monotonic() + 5
    while time.monotonic() < deadline:
        record = _recorded(fake, "gpt-slow")
        if record["outcome"] != "open":
            break
        time.sleep(0.05)
    assert record["outcome"] == "cancelled"
    assert record["chunks_sent"] < 400


def test_sdk_typed_exceptions(live, client):
    server, _, _ = live
    ask = [{"role": "user", "content": "hi"}]
    with openai.OpenAI(base_url=server.url + "/v1", api_key="not-a-byok-token", max_retries=0) as bad:
        with pytest.raises(openai.AuthenticationError) as exc:
            bad.chat.completions.create(model="oai/gpt-x", messages=ask)
        assert exc.value.status_code == 401 and exc.value.body["code"] == "invalid_api_key"

    with pytest.raises(openai.RateLimitError) as exc:
        client.chat.completions.create(model="limited/gpt-limited", messages=ask)
    assert 1 <= int(exc.value.response.headers["retry-after"]) <= 30
    assert exc.value.body["code"] == "rate_limited"

    for stream in (False, True):
        with pytest.raises(openai.InternalServerError) as exc:
            client.chat.completions.create(model="down/gpt-down", messages=ask, stream=stream)
        assert exc.value.status_code == 502 and exc.value.body["code"] == "upstream_failed"

    with pytest.raises(openai.NotFoundError) as exc:
        client.chat.completions.create(model="gpt-x", messages=ask, extra_headers={"X-Byok-Provider": "nosuch"})
    assert exc.value.body["code"] == "provider_not_found"

    with pytest.raises(openai.BadRequestError) as exc:
        client.chat.completions.create(model="oai/gpt-x", messages=ask, n=2)
    assert exc.value.body["param"] == "n"


def test_failure_mid_stream_is_an_error_event(client):
    stream = client.chat.completions.create(
        model="midfail/gpt-midfail", messages=[{"role": "user", "content": "hi"}], stream=True
    )
    texts = []
    with pytest.raises(openai.APIError) as exc:
        for chunk in stream:
            texts.append(chunk.choices[0].delta.content or "")
    assert "".join(texts), "tokens arrived before the failure"
    assert exc.value.body["type"] in ("upstream_error", "server_error")


def test_canary_key_never_leaves(live, client):
    server, _, token = live
    auth = {"Authorization": f"Bearer {token}"}
    seen = []
    with httpx.Client(base_url=server.url, headers=auth, timeout=20) as c:
        ask = {"messages": [{"role": "user", "content": "hi"}]}
        for path, body in (
            ("/v1/chat/completions", {**ask, "model": "oai/gpt-x"}),
            ("/v1/chat/completions", {**ask, "model": "oai/gpt-x", "stream": True}),
            ("/v1/chat/completions", {**ask, "model": "gembad/gemini-bad"}),
            ("/api/chat", {**ask, "provider": "oai"}),
            ("/api/chat", {**ask, "provider": "gembad", "stream": True}),
        ):
            r = c.post(path, json=body)
            seen.append(r.text + json.dumps(dict(r.headers)))
        seen.append(c.get("/v1/models").text)
    assert any("oai" in s for s in seen)
    assert '"code":"upstream_failed"' in seen[2]  # the provider's 400 API_KEY_INVALID echoes the key
    log = server.log.read_text()
    for secret in (CANARY, GEMINI_CANARY):
        assert not any(secret in s for s in seen)
        assert secret not in log
