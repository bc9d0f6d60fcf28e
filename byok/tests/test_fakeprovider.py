"""The fake provider server, driven as a real subprocess over HTTP.

The server (devtools/fakeprovider) stands in for OpenAI, DeepSeek, Anthropic and
Gemini in end-to-end tests and benchmarks; these tests check that what it
sends is well formed in each format, that its knobs and faults do what they
say, and that its recorder never keeps a raw key.
"""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import quote

import httpx
import pytest

from byok.providers.sse import SSEDecoder, SSEEvent
from byok.tests.live import python_command
from devtools.fakeprovider import gemini_format
from devtools.fakeprovider.answer import filler_text

ROOT = Path(__file__).resolve().parents[2]
CORPUS = Path(__file__).resolve().parent / "fixtures" / "corpus"
TOOLS_OPENAI = [
    {
        "type": "function",
        "function": {
            "name": "get_weather",
            "parameters": {"type": "object", "properties": {"city": {"type": "string"}, "days": {"type": "integer"}}},
        },
    }
]
TOOLS_ANTHROPIC = [
    {"name": "get_weather", "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}}}
]
TOOLS_GEMINI = [
    {
        "functionDeclarations": [
            {"name": "get_weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}}}
        ]
    }
]


@pytest.fixture(scope="module")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    log = tmp_path_factory.mktemp("fakeprovider") / "stderr.log"
    with log.open("w") as err:  # a file, not a pipe nobody reads, which could fill and block the server
        proc = subprocess.Popen(
            python_command("-m", "devtools.fakeprovider", "--port", "0"),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()  # exactly one line, once it listens
        assert line.startswith("FAKEPROVIDER_LISTENING http://127.0.0.1:"), (line, log.read_text())
        yield line.split()[1]
    finally:
        proc.terminate()  # SIGTERM: the server stops cleanly
        try:
            assert proc.wait(timeout=5) == 0
        finally:
            if proc.poll() is None:
                proc.kill()
                proc.wait()
    assert "Traceback" not in log.read_text(), log.read_text()


@pytest.fixture
def http(server: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=server, timeout=5) as client:
        yield client
    httpx.post(f"{server}/_control/reset")


def new_key(prefix: str = "sk-test-") -> str:
    return prefix + uuid.uuid4().hex


def fp(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()[:12]


def events(body: bytes) -> list[SSEEvent]:
    decoder = SSEDecoder()
    return decoder.feed(body) + decoder.close()


def datas(body: bytes) -> list[Any]:
    return [json.loads(e.data) for e in events(body) if e.data != "[DONE]"]


def openai_req(content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"model": "gpt-4o", "messages": [{"role": "user", "content": content}], **extra}


def anthropic_req(content: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 1024,
        "messages": [{"role": "user", "content": content}],
        **extra,
    }


def gemini_req(text: str = "hello there", **extra: Any) -> dict[str, Any]:
    return {"contents": [{"role": "user", "parts": [{"text": text}]}], **extra}


def auth(provider: str, key: str) -> dict[str, str]:
    if provider == "anthropic":
        return {"x-api-key": key, "anthropic-version": "2023-06-01"}
    if provider == "gemini":
        return {"x-goog-api-key": key}
    return {"Authorization": f"Bearer {key}"}


PATHS = {
    "openai": "/v1/chat/completions",
    "deepseek": "/deepseek/chat/completions",
    "anthropic": "/v1/messages",
    "gemini": "/v1beta/models/gemini-2.5-flash:generateContent",
}
STREAM_PATHS = {**PATHS, "gemini": "/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse"}


def request_for(provider: str, stream: bool, **extra: Any) -> dict[str, Any]:
    if provider == "gemini":
        return gemini_req(**extra)
    body = anthropic_req(**extra) if provider == "anthropic" else openai_req(**extra)
    if provider == "deepseek":
        body["model"] = "deepseek-chat"
    if stream:
        body["stream"] = True
    return body


def records(http: httpx.Client, key: str) -> list[dict[str, Any]]:
    return http.get("/_control/requests", params={"key_fp": fp(key)}).json()


def wait_outcome(http: httpx.Client, key: str, outcome: str) -> dict[str, Any]:
    for _ in range(100):  # up to 2 s
        found = records(http, key)
        if found and found[-1]["outcome"] == outcome:
            return found[-1]
        time.sleep(0.02)
    raise AssertionError(f"no {outcome} record: {records(http, key)}")


# --- start-up -------------------------------------------------------------------


def test_refuses_non_loopback_host() -> None:
    done = subprocess.run(
        [sys.executable, "-m", "devtools.fakeprovider", "--host", "0.0.0.0", "--port", "0"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2
    assert "loopback" in done.stderr
    done = subprocess.run(
        [sys.executable, "-m", "devtools.fakeprovider", "--config", '{"chunks": "many"}'],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=20,
    )
    assert done.returncode == 2 and "chunks" in done.stderr


# --- the four formats, non-stream and stream ---------------------------------


def test_openai_json_and_stream_with_usage(http: httpx.Client) -> None:
    key = new_key()
    r = http.post(
        "/v1/chat/completions", headers={**auth("openai", key), "x-fake-chunks": "5"}, json=openai_req("one two three")
    )
    assert r.status_code == 200
    body = r.json()
    assert body["object"] == "chat.completion"
    assert body["choices"][0]["message"]["content"] == filler_text(5)
    assert body["choices"][0]["finish_reason"] == "stop"
    assert body["usage"] == {**body["usage"], "prompt_tokens": 3, "completion_tokens": 5, "total_tokens": 8}

    r = http.post(
        "/openai/v1/chat/completions",
        headers={**auth("openai", key), "x-fake-chunks": "4"},
        json=openai_req(stream=True, stream_options={"include_usage": True}),
    )
    assert r.headers["content-type"].startswith("text/event-stream")
    evs = events(r.content)
    assert evs[-1].data == "[DONE]"
    chunks = datas(r.content)
    assert all(c["object"] == "chat.completion.chunk" for c in chunks)
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks if c["choices"])
    assert text == filler_text(4)
    assert [c["choices"][0]["finish_reason"] for c in chunks if c["choices"]][-1] == "stop"
    assert chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == 4


def test_openai_sdk_text_stream_tools_and_errors(server: str) -> None:
    openai = pytest.importorskip("openai")
    client = openai.OpenAI(base_url=f"{server}/v1", api_key=new_key(), max_retries=0)
    reply = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "What's the weather?"}], tools=TOOLS_OPENAI
    )
    call = reply.choices[0].message.tool_calls[0]
    assert reply.choices[0].finish_reason == "tool_calls"
    assert call.function.name == "get_weather" and json.loads(call.function.arguments) == {"city": "Paris", "days": 1}

    stream = client.chat.completions.create(
        model="gpt-4o", messages=[{"role": "user", "content": "hi"}], stream=True, extra_headers={"x-fake-chunks": "3"}
    )
    assert "".join(c.choices[0].delta.content or "" for c in stream if c.choices) == filler_text(3)

    with client.chat.completions.stream(
        model="gpt-4o", messages=[{"role": "user", "content": "weather in Oslo"}], tools=TOOLS_OPENAI
    ) as events_:
        final = events_.get_final_completion()
    assert json.loads(final.choices[0].message.tool_calls[0].function.arguments)["city"] == "Paris"

    with pytest.raises(openai.RateLimitError) as caught:
        client.chat.completions.create(
            model="gpt-4o",
            messages=[{"role": "user", "content": "hi"}],
            extra_headers={"x-fake-fault": "insufficient_quota"},
        )
    assert caught.value.code == "insufficient_quota"
    with pytest.raises(openai.APIError, match="server had an error"):
        list(
            client.chat.completions.create(
                model="gpt-4o",
                messages=[{"role": "user", "content": "hi"}],
                stream=True,
                extra_headers={"x-fake-fault": "stream_error"},
            )
        )
    assert [m.id for m in client.models.list()][0] == "gpt-4o"


def test_deepseek_reasoner_stream_has_reasoning_and_keepalives(http: httpx.Client) -> None:
    key = new_key()
    body = {**openai_req(stream=True), "model": "deepseek-reasoner"}
    r = http.post(
        "/deepseek/v1/chat/completions",
        json=body,
        headers={**auth("deepseek", key), "x-fake-chunks": "8", "x-fake-reasoning-chunks": "2"},
    )
    assert b"\n: keep-alive\n" in r.content
    chunks = datas(r.content)
    reasoning = "".join(c["choices"][0]["delta"].get("reasoning_content") or "" for c in chunks)
    text = "".join(c["choices"][0]["delta"].get("content") or "" for c in chunks)
    assert reasoning == "Let me " and text == filler_text(8)
    assert all("usage" in c for c in chunks)
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop"
    assert chunks[-1]["usage"]["completion_tokens_details"]["reasoning_tokens"] == 2

    r = http.post("/deepseek/chat/completions", json={**body, "stream": False}, headers=auth("deepseek", key))
    message = r.json()["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me think " and message["content"] == filler_text(8)


def test_anthropic_json_and_stream_event_order(http: httpx.Client) -> None:
    key = new_key("sk-ant-")
    r = http.post("/v1/messages", json=anthropic_req(), headers={**auth("anthropic", key), "x-fake-chunks": "3"})
    body = r.json()
    assert body["type"] == "message" and body["content"] == [{"type": "text", "text": filler_text(3)}]
    assert body["stop_reason"] == "end_turn" and body["usage"]["output_tokens"] == 3

    r = http.post(
        "/anthropic/v1/messages",
        json=anthropic_req(stream=True),
        headers={**auth("anthropic", key), "x-fake-chunks": "3"},
    )
    evs = events(r.content)
    names = [e.event for e in evs]
    assert names == [
        "message_start",
        "content_block_start",
        "ping",
        "content_block_delta",
        "content_block_delta",
        "content_block_delta",
        "content_block_stop",
        "message_delta",
        "message_stop",
    ]
    assert all(json.loads(e.data)["type"] == e.event for e in evs)
    assert "".join(json.loads(e.data)["delta"]["text"] for e in evs if e.event == "content_block_delta") == filler_text(
        3
    )
    assert json.loads(evs[-2].data)["usage"]["output_tokens"] == 3


def test_anthropic_tool_use_streams_argument_fragments(http: httpx.Client) -> None:
    r = http.post(
        "/v1/messages",
        json=anthropic_req("Is there weather in Rome?", stream=True, tools=TOOLS_ANTHROPIC),
        headers=auth("anthropic", new_key("sk-ant-")),
    )
    evs = [json.loads(e.data) for e in events(r.content)]
    start = next(e for e in evs if e["type"] == "content_block_start")
    assert start["content_block"]["type"] == "tool_use" and start["content_block"]["name"] == "get_weather"
    fragments = [e["delta"]["partial_json"] for e in evs if e["type"] == "content_block_delta"]
    assert len(fragments) > 1 and json.loads("".join(fragments)) == {"city": "Paris"}
    assert evs[-2]["delta"]["stop_reason"] == "tool_use"


def test_gemini_json_stream_and_function_call(http: httpx.Client) -> None:
    key = new_key("AIza")
    r = http.post(
        "/v1beta/models/gemini-2.5-flash:generateContent",
        json=gemini_req(),
        headers={**auth("gemini", key), "x-fake-chunks": "3"},
    )
    body = r.json()
    assert body["candidates"][0]["content"]["parts"] == [{"text": filler_text(3)}]
    assert body["candidates"][0]["finishReason"] == "STOP" and body["modelVersion"] == "gemini-2.5-flash"
    assert body["usageMetadata"]["candidatesTokenCount"] == 3

    r = http.post(
        "/gemini/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        json=gemini_req(),
        headers={**auth("gemini", key), "x-fake-chunks": "3"},
    )
    assert b"\r\n\r\n" in r.content
    chunks = datas(r.content)
    text = "".join(p.get("text", "") for c in chunks for p in c["candidates"][0]["content"]["parts"])
    assert text == filler_text(3) and chunks[-1]["candidates"][0]["finishReason"] == "STOP"

    r = http.post(
        f"/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse&key={key}",
        json=gemini_req("weather please", tools=TOOLS_GEMINI),
    )
    parts = [p for c in datas(r.content) for p in c["candidates"][0]["content"]["parts"]]
    assert {
        "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
        "thoughtSignature": gemini_format.SIGNATURE,
    } in parts
    assert key not in json.dumps(records(http, key))

    # Without alt=sse the REST API streams one JSON array.
    r = http.post(
        "/v1beta/models/gemini-2.5-flash:streamGenerateContent",
        json=gemini_req(),
        headers={**auth("gemini", key), "x-fake-chunks": "2"},
    )
    items = r.json()
    assert len(items) == 3 and items[-1]["candidates"][0]["finishReason"] == "STOP"


def test_max_tokens_truncates_with_length_finish(http: httpx.Client) -> None:
    r = http.post("/v1/chat/completions", json=openai_req(max_tokens=2), headers=auth("openai", new_key()))
    assert r.json()["choices"][0]["finish_reason"] == "length"
    assert r.json()["choices"][0]["message"]["content"] == filler_text(2)


# --- knobs ------------------------------------------------------------------------


def test_chunk_count_size_and_delays(http: httpx.Client) -> None:
    key = new_key()
    headers = {
        **auth("openai", key),
        "x-fake-chunks": "5",
        "x-fake-chunk-size": "3",
        "x-fake-first-delay-ms": "150",
        "x-fake-delay-ms": "40",
    }
    started = time.monotonic()
    with http.stream("POST", "/v1/chat/completions", json=openai_req(stream=True), headers=headers) as r:
        decoder, arrivals = SSEDecoder(), []
        for piece in r.iter_raw():
            for ev in decoder.feed(piece):
                if ev.data != "[DONE]" and json.loads(ev.data)["choices"][0]["delta"].get("content"):
                    arrivals.append((time.monotonic() - started, json.loads(ev.data)["choices"][0]["delta"]["content"]))
    assert [text for _, text in arrivals] == ["The", " qu", "ick", " br", "own"]
    assert arrivals[0][0] >= 0.15  # time to first token
    assert arrivals[-1][0] - arrivals[0][0] >= 4 * 0.04 * 0.9  # paced between chunks
    assert records(http, key)[-1]["chunks_sent"] == 5


@pytest.mark.parametrize(
    ("provider", "fault", "status", "check"),
    [
        ("openai", "401", 401, lambda b, h: b["error"]["code"] == "invalid_api_key"),
        ("openai", "403", 403, lambda b, h: b["error"]["type"] == "request_forbidden"),
        (
            "openai",
            "429",
            429,
            lambda b, h: (
                b["error"]["code"] == "rate_limit_exceeded"
                and h["retry-after"] == "3"
                and h["x-ratelimit-remaining-requests"] == "0"
                and h["x-ratelimit-reset-requests"] == "3s"
            ),
        ),
        (
            "openai",
            "insufficient_quota",
            429,
            lambda b, h: b["error"]["code"] == "insufficient_quota" and "retry-after" not in h,
        ),
        ("openai", "500", 500, lambda b, h: b["error"]["type"] == "server_error"),
        ("openai", "502", 502, lambda b, h: b["error"]["code"] == 502),
        ("openai", "503", 503, lambda b, h: b["error"]["type"] == "server_error"),
        ("deepseek", "402", 402, lambda b, h: b["error"]["message"] == "Insufficient Balance"),
        ("deepseek", "503", 503, lambda b, h: b["error"]["message"] == "Server Overloaded"),
        ("anthropic", "529", 529, lambda b, h: b["type"] == "error" and b["error"]["type"] == "overloaded_error"),
        (
            "anthropic",
            "429",
            429,
            lambda b, h: (
                b["error"]["type"] == "rate_limit_error"
                and h["retry-after"] == "3"
                and h["anthropic-ratelimit-requests-remaining"] == "0"
                and "anthropic-ratelimit-tokens-reset" in h
            ),
        ),
        ("anthropic", "401", 401, lambda b, h: b["error"]["type"] == "authentication_error"),
        ("anthropic", "500", 500, lambda b, h: b["error"]["type"] == "api_error"),
        (
            "gemini",
            "429",
            429,
            lambda b, h: (
                b["error"]["status"] == "RESOURCE_EXHAUSTED"
                and any(d.get("retryDelay") == "3s" for d in b["error"]["details"])
            ),
        ),
        ("gemini", "gemini_key_invalid", 400, lambda b, h: b["error"]["details"][0]["reason"] == "API_KEY_INVALID"),
        ("gemini", "403", 403, lambda b, h: b["error"]["status"] == "PERMISSION_DENIED"),
        ("gemini", "503", 503, lambda b, h: b["error"]["status"] == "UNAVAILABLE"),
    ],
)
def test_status_faults_have_provider_shapes(
    http: httpx.Client, provider: str, fault: str, status: int, check: Any
) -> None:
    key = new_key()
    for stream in (False, True):  # an HTTP error comes before any stream
        r = http.post(
            STREAM_PATHS[provider] if stream else PATHS[provider],
            json=request_for(provider, stream),
            headers={**auth(provider, key), "x-fake-fault": fault, "x-fake-retry-after": "3"},
        )
        assert r.status_code == status
        assert check(r.json(), r.headers), r.text
    assert records(http, key)[-1]["outcome"] == "fault" and records(http, key)[-1]["fault"] == fault


@pytest.mark.parametrize("provider", ["openai", "deepseek", "anthropic"])
def test_invalid_key_gets_401(http: httpx.Client, provider: str) -> None:
    r = http.post(PATHS[provider], json=request_for(provider, False), headers=auth(provider, "sk-invalid-0000000000"))
    assert r.status_code == 401


def test_gemini_invalid_key_matches_corpus_shape(http: httpx.Client) -> None:
    r = http.post(PATHS["gemini"], json=gemini_req(), headers=auth("gemini", "AIza-invalid-key-000"))
    corpus = json.loads((CORPUS / "gemini_error_api_key_invalid.body.json").read_text())
    assert r.status_code == 400
    got = r.json()["error"]
    assert {k: got[k] for k in ("code", "message", "status")} == {
        k: corpus["error"][k] for k in ("code", "message", "status")
    }
    assert [d["@type"] for d in got["details"]] == [d["@type"] for d in corpus["error"]["details"]]


@pytest.mark.parametrize(
    ("provider", "check"),
    [
        ("openai", lambda evs: json.loads(evs[-1].data)["error"]["type"] == "server_error"),
        (
            "anthropic",
            lambda evs: evs[-1].event == "error" and json.loads(evs[-1].data)["error"]["type"] == "overloaded_error",
        ),
        ("gemini", lambda evs: json.loads(evs[-1].data)["error"]["status"] == "UNAVAILABLE"),
    ],
)
def test_stream_error_after_k_chunks(http: httpx.Client, provider: str, check: Any) -> None:
    r = http.post(
        STREAM_PATHS[provider],
        json=request_for(provider, True),
        headers={
            **auth(provider, new_key()),
            "x-fake-chunks": "6",
            "x-fake-fault": "stream_error",
            "x-fake-fault-after": "2",
        },
    )
    assert r.status_code == 200
    evs = events(r.content)
    assert check(evs)
    assert b"[DONE]" not in r.content and b"message_stop" not in r.content
    text = r.content.decode()
    assert "quick" in text and "brown" not in text  # exactly two content chunks went out


def test_drop_closes_mid_stream(http: httpx.Client) -> None:
    key = new_key()
    received = b""
    with pytest.raises(httpx.RemoteProtocolError):
        with http.stream(
            "POST",
            "/v1/chat/completions",
            json=openai_req(stream=True),
            headers={**auth("openai", key), "x-fake-chunks": "6", "x-fake-fault": "drop", "x-fake-fault-after": "3"},
        ) as r:
            for piece in r.iter_raw():
                received += piece
    assert received.count(b'"content":"') == 4  # the role chunk and three content chunks
    rec = records(http, key)[-1]
    assert (rec["outcome"], rec["fault"], rec["chunks_sent"]) == ("fault", "drop", 3)
    with pytest.raises(httpx.RemoteProtocolError):  # non-stream: closed before any response
        http.post("/v1/chat/completions", json=openai_req(), headers={**auth("openai", key), "x-fake-fault": "drop"})


def test_stall_hangs_until_client_leaves(http: httpx.Client) -> None:
    key = new_key("sk-ant-")
    received = b""
    with pytest.raises(httpx.ReadTimeout):
        with http.stream(
            "POST",
            "/v1/messages",
            json=anthropic_req(stream=True),
            timeout=httpx.Timeout(5, read=0.4),
            headers={
                **auth("anthropic", key),
                "x-fake-chunks": "5",
                "x-fake-fault": "stall",
                "x-fake-fault-after": "1",
            },
        ) as r:
            for piece in r.iter_raw():
                received += piece
    assert received.count(b"text_delta") == 1
    rec = wait_outcome(http, key, "cancelled")
    assert rec["fault"] == "stall" and rec["disconnected"] is True


def test_malformed_and_slow(http: httpx.Client) -> None:
    key = new_key()
    r = http.post(
        "/v1/chat/completions",
        json=openai_req(stream=True),
        headers={**auth("openai", key), "x-fake-chunks": "4", "x-fake-fault": "malformed"},
    )
    bad = []
    for ev in events(r.content):
        try:
            json.loads(ev.data)
        except ValueError:
            bad.append(ev.data)
    assert len(bad) == 2 and bad[-1] == "[DONE]"  # one unparseable data line besides [DONE]
    r = http.post(
        "/v1/chat/completions", json=openai_req(), headers={**auth("openai", key), "x-fake-fault": "malformed"}
    )
    with pytest.raises(ValueError):
        r.json()
    started = time.monotonic()
    r = http.post(
        "/v1/chat/completions",
        json=openai_req(),
        headers={**auth("openai", key), "x-fake-fault": "slow", "x-fake-slow-ms": "250"},
    )
    assert r.status_code == 200 and time.monotonic() - started >= 0.25


def test_fault_rate_is_reproducible_with_a_seed(http: httpx.Client) -> None:
    def run() -> list[int]:
        http.post("/_control/reset")
        headers = {
            **auth("openai", "sk-test-seeded-key"),
            "x-fake-fault": "503",
            "x-fake-fault-rate": "0.5",
            "x-fake-seed": "s1",
            "x-fake-chunks": "1",
        }
        return [http.post("/v1/chat/completions", json=openai_req(), headers=headers).status_code for _ in range(20)]

    first = run()
    assert first == run()
    assert 3 <= first.count(503) <= 17 and set(first) == {200, 503}


def test_fault_first_then_recovers(http: httpx.Client) -> None:
    key = new_key()
    headers = {**auth("openai", key), "x-fake-fault": "429", "x-fake-fault-first": "2"}
    got = [http.post("/v1/chat/completions", json=openai_req(), headers=headers).status_code for _ in range(4)]
    assert got == [429, 429, 200, 200]


def test_cfg_path_prefix(http: httpx.Client) -> None:
    key = new_key()
    r = http.post("/cfg/chunks=2;chunk_size=4/v1/chat/completions", json=openai_req(), headers=auth("openai", key))
    assert r.json()["choices"][0]["message"]["content"] == filler_text(2, 4)
    segment = quote(json.dumps({"fault": "529"}), safe="")
    r = http.post(f"/cfg/{segment}/anthropic/v1/messages", json=anthropic_req(), headers=auth("anthropic", key))
    assert r.status_code == 529
    r = http.post(
        "/cfg/chunks=3;fault=500;fault_rate=0/deepseek/v1/chat/completions",
        json={**openai_req(), "model": "deepseek-chat"},
        headers=auth("deepseek", key),
    )
    assert r.status_code == 200
    r = http.post("/cfg/chunks=x/v1/chat/completions", json=openai_req(), headers=auth("openai", key))
    assert r.status_code == 400 and "chunks" in r.json()["error"]["message"]
    assert records(http, key)[0]["cfg"] == "chunks=2;chunk_size=4"


def test_control_config_defaults_and_key_overrides(http: httpx.Client) -> None:
    a, b = new_key(), new_key()
    assert http.post("/_control/config", json={"chunks": 2, "keys": {a[-6:]: {"fault": "503"}}}).status_code == 200
    r = http.post("/v1/chat/completions", json=openai_req(), headers=auth("openai", b))
    assert r.json()["choices"][0]["message"]["content"] == filler_text(2)
    assert http.post("/v1/chat/completions", json=openai_req(), headers=auth("openai", a)).status_code == 503
    http.post("/_control/config", json={"keys": {fp(b): {"chunks": 1}}})  # by fingerprint
    r = http.post("/v1/chat/completions", json=openai_req(), headers=auth("openai", b))
    assert r.json()["choices"][0]["message"]["content"] == filler_text(1)
    http.post("/_control/config", json={})
    r = http.post("/v1/chat/completions", json=openai_req(), headers=auth("openai", a))
    assert r.json()["choices"][0]["message"]["content"] == filler_text(8)
    assert http.post("/_control/config", json={"chunks": -1}).status_code == 400


def test_faults_chosen_by_key_suffix(http: httpx.Client) -> None:
    assert http.post(PATHS["openai"], json=openai_req(), headers=auth("openai", "sk-test-abc-r429")).status_code == 429
    r = http.post(
        STREAM_PATHS["anthropic"],
        json=anthropic_req(stream=True),
        headers=auth("anthropic", "sk-ant-test-fault-stream_error"),
    )
    assert r.status_code == 200 and events(r.content)[-1].event == "error"


def test_auth_is_required(http: httpx.Client) -> None:
    assert http.post(PATHS["openai"], json=openai_req()).status_code == 401
    assert http.post(PATHS["anthropic"], json=anthropic_req()).status_code == 401
    assert http.post(PATHS["gemini"], json=gemini_req()).status_code == 403
    r = http.post(PATHS["anthropic"], json=anthropic_req(), headers={"x-api-key": new_key()})
    assert r.status_code == 400 and "anthropic-version" in r.json()["error"]["message"]
    r = http.post(PATHS["anthropic"], json={"model": "m", "messages": []}, headers=auth("anthropic", new_key()))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"


# --- recorder -----------------------------------------------------------------------


def test_recorder_fingerprints_credentials(http: httpx.Client) -> None:
    keys = {p: new_key("AIza" if p == "gemini" else "sk-test-") for p in PATHS}
    for provider, key in keys.items():
        http.post(
            PATHS[provider],
            json=request_for(provider, False),
            headers={**auth(provider, key), "x-custom": f"copy {key}"},
        )
    http.post(f"{PATHS['gemini']}?key={keys['gemini']}", json=gemini_req())
    dump = http.get("/_control/requests").text
    for key in keys.values():
        assert key not in dump
    rec = records(http, keys["openai"])[-1]
    assert rec["headers"]["authorization"] == f"Bearer fp:{fp(keys['openai'])}"
    assert rec["headers"]["x-custom"] == f"copy fp:{fp(keys['openai'])}"
    assert rec["body"]["messages"][0]["content"] == "hello there"
    assert (rec["provider"], rec["model"], rec["outcome"], rec["status"]) == ("openai", "gpt-4o", "completed", 200)
    assert records(http, keys["anthropic"])[-1]["headers"]["x-api-key"] == f"fp:{fp(keys['anthropic'])}"
    gem = records(http, keys["gemini"])
    assert gem[-1]["query"] == f"key=fp%3A{fp(keys['gemini'])}" and gem[0]["model"] == "gemini-2.5-flash"
    assert http.delete("/_control/requests").json()["cleared"] >= 5
    assert http.get("/_control/requests").json() == []


def test_client_disconnect_is_recorded_as_cancelled(http: httpx.Client) -> None:
    key = new_key()
    with http.stream(
        "POST",
        "/v1/chat/completions",
        json=openai_req(stream=True),
        headers={**auth("openai", key), "x-fake-chunks": "200", "x-fake-delay-ms": "20"},
    ) as r:
        for piece in r.iter_raw():
            if b"quick" in piece:
                assert http.get("/_control/stats").json()["open_streams"] >= 1
                break  # leaving iter_raw early closes the connection
    rec = wait_outcome(http, key, "cancelled")
    assert rec["disconnected"] and 1 <= rec["chunks_sent"] < 200
    stats = http.get("/_control/stats").json()
    assert stats["open_streams"] == 0 and stats["by_provider_outcome"]["openai"]["cancelled"] >= 1


# --- replay and models -------------------------------------------------------


def test_replay_corpus_case_byte_for_byte(http: httpx.Client) -> None:
    r = http.post(
        "/cfg/replay=anthropic_stream_sdk_basic/v1/messages",
        json=anthropic_req(stream=True),
        headers=auth("anthropic", new_key()),
    )
    assert r.status_code == 200 and r.content == (CORPUS / "anthropic_stream_sdk_basic.sse").read_bytes()
    r = http.post(
        PATHS["gemini"],
        json=gemini_req(),
        headers={**auth("gemini", new_key("AIza")), "x-fake-replay": "gemini_error_429_retryinfo"},
    )
    assert r.status_code == 429 and r.content == (CORPUS / "gemini_error_429_retryinfo.body.json").read_bytes()
    r = http.post(PATHS["openai"], json=openai_req(), headers={**auth("openai", new_key()), "x-fake-replay": "../x"})
    assert r.status_code == 400


def test_model_lists(http: httpx.Client) -> None:
    assert http.get("/v1/models", headers=auth("openai", new_key())).json()["object"] == "list"
    assert http.get("/v1/models", headers=auth("anthropic", new_key())).json()["data"][0]["type"] == "model"
    assert (
        http.get("/v1beta/models", headers=auth("gemini", new_key())).json()["models"][0]["name"].startswith("models/")
    )
    assert http.get("/v1/models").status_code == 401
    key = new_key()
    assert http.post("/nowhere/chat", json={}, headers=auth("openai", key)).status_code == 404
    assert records(http, key)[-1]["outcome"] == "rejected"  # a wrong base URL shows up in the recorder


async def test_start_server_in_process() -> None:
    from devtools.fakeprovider import start_server

    with pytest.raises(ValueError, match="loopback"):
        await start_server("0.0.0.0", 0)
    runner, url = await start_server("127.0.0.1", 0, {"chunks": 2, "echo": False})
    try:
        async with httpx.AsyncClient(base_url=url) as client:
            r = await client.post(
                "/v1/chat/completions",
                json=openai_req("say this back"),
                headers={**auth("openai", new_key()), "x-fake-echo": "1", "x-fake-chunk-size": "4"},
            )
            assert r.json()["choices"][0]["message"]["content"] == "say this back"
            assert r.json()["usage"]["completion_tokens"] == 4  # "say ", "this", " bac", "k"
            r = await client.post("/v1/chat/completions", json=openai_req(), headers=auth("openai", new_key()))
            assert r.json()["choices"][0]["message"]["content"] == filler_text(2)
    finally:
        await runner.cleanup()


# --- odds and ends: the less travelled paths -------------------------------------


def test_reasoning_in_anthropic_and_gemini(http: httpx.Client) -> None:
    key = new_key("sk-ant-")
    thinking = {"type": "enabled", "budget_tokens": 2048}
    r = http.post(
        "/v1/messages",
        json=anthropic_req(stream=True, thinking=thinking),
        headers={**auth("anthropic", key), "x-fake-chunks": "2", "x-fake-reasoning-chunks": "2"},
    )
    deltas = [json.loads(e.data)["delta"] for e in events(r.content) if e.event == "content_block_delta"]
    assert [d["type"] for d in deltas] == [
        "thinking_delta",
        "thinking_delta",
        "signature_delta",
        "text_delta",
        "text_delta",
    ]
    body = http.post("/v1/messages", json=anthropic_req(thinking=thinking), headers=auth("anthropic", key)).json()
    assert [b["type"] for b in body["content"]] == ["thinking", "text"]

    config = {"thinkingConfig": {"includeThoughts": True}, "maxOutputTokens": 3}
    body = http.post(
        PATHS["gemini"], json=gemini_req(generationConfig=config), headers=auth("gemini", new_key())
    ).json()
    assert body["candidates"][0]["content"]["parts"][0]["thought"] is True
    assert body["candidates"][0]["finishReason"] == "MAX_TOKENS" and body["usageMetadata"]["thoughtsTokenCount"] == 3


def test_tool_arguments_follow_the_schema(http: httpx.Client) -> None:
    params = {
        "type": "object",
        "properties": {
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"]},
            "n": {"type": "number"},
            "ok": {"type": "boolean"},
            "tags": {"type": "array"},
            "opts": {"type": "object"},
            "any": {},
        },
    }
    tools = [{"type": "function", "function": {"name": "f", "parameters": params}}]
    r = http.post(
        PATHS["openai"], json=openai_req(tools=tools), headers={**auth("openai", new_key()), "x-fake-tool-call": "1"}
    )
    args = json.loads(r.json()["choices"][0]["message"]["tool_calls"][0]["function"]["arguments"])
    assert args == {"unit": "celsius", "n": 1, "ok": True, "tags": [], "opts": {}, "any": "Paris"}


def test_other_paths_and_bodies(http: httpx.Client) -> None:
    key = new_key()
    assert http.post("/compat/v1/chat/completions", json=openai_req(), headers=auth("openai", key)).status_code == 200
    assert http.post("/proxy/v1/messages", json=anthropic_req(), headers=auth("anthropic", key)).status_code == 200
    assert http.post("/cfg/chunks=2", json={}).status_code == 404
    r = http.post(PATHS["openai"], content=b"{not json", headers=auth("openai", key))
    assert r.status_code == 400 and r.json()["error"]["type"] == "invalid_request_error"
    big = "word " * 60_000  # over the recorder's 256 KB body limit
    assert http.post(PATHS["openai"], json=openai_req(big), headers=auth("openai", key)).status_code == 200
    assert records(http, key)[-1]["body"] == {
        "_fakeprovider_truncated": True,
        "bytes": len(json.dumps(openai_req(big), separators=(",", ":")).encode()),
    }
    assert http.get("/anthropic/v1/models", headers=auth("anthropic", "sk-ant-r429")).status_code == 429
    assert http.get("/_control/health").json() == {"ok": True}


def test_rate_limit_headers_on_success(http: httpx.Client) -> None:
    r = http.post(
        PATHS["openai"], json=openai_req(), headers={**auth("openai", new_key()), "x-fake-remaining-requests": "5"}
    )
    assert r.headers["x-ratelimit-remaining-requests"] == "5"
    r = http.post(
        STREAM_PATHS["anthropic"],
        json=anthropic_req(stream=True),
        headers={**auth("anthropic", new_key()), "x-fake-remaining-requests": "0"},
    )
    assert r.headers["anthropic-ratelimit-requests-remaining"] == "0"


def test_deepseek_blank_lines_while_waiting_and_late_stream_faults(http: httpx.Client) -> None:
    r = http.post(
        PATHS["deepseek"],
        json={**openai_req(), "model": "deepseek-chat"},
        headers={**auth("deepseek", new_key()), "x-fake-first-delay-ms": "50"},
    )
    assert r.content.startswith(b"\n") and r.json()["object"] == "chat.completion"
    r = http.post(
        STREAM_PATHS["openai"],
        json=openai_req(stream=True),
        headers={
            **auth("openai", new_key()),
            "x-fake-chunks": "2",
            "x-fake-fault": "stream_error",
            "x-fake-fault-after": "9",
        },
    )
    assert filler_text(2) == "".join(c["choices"][0]["delta"].get("content") or "" for c in datas(r.content)[:-1])
    assert "error" in datas(r.content)[-1]


def test_non_stream_stall_until_client_leaves(http: httpx.Client) -> None:
    key = new_key()
    with pytest.raises(httpx.ReadTimeout):
        http.post(
            PATHS["openai"],
            json=openai_req(),
            timeout=httpx.Timeout(5, read=0.3),
            headers={**auth("openai", key), "x-fake-fault": "stall"},
        )
    assert wait_outcome(http, key, "cancelled")["fault"] == "stall"


def test_replay_in_paced_pieces(http: httpx.Client) -> None:
    headers = {
        **auth("gemini", new_key()),
        "x-fake-replay": "gemini_stream_cjk_multichunk",
        "x-fake-chunk-size": "7",
        "x-fake-delay-ms": "1",
    }
    r = http.post(STREAM_PATHS["gemini"], json=gemini_req(), headers=headers)
    assert r.content == (CORPUS / "gemini_stream_cjk_multichunk.sse").read_bytes()


@pytest.mark.parametrize(
    "bad",
    [
        {"x-fake-nonsense": "1"},
        {"x-fake-tool-call": "maybe"},
        {"x-fake-fault": "explode"},
        {"x-fake-fault-rate": "2"},
    ],
)
def test_bad_settings_are_refused(http: httpx.Client, bad: dict[str, str]) -> None:
    if "x-fake-nonsense" in bad:  # unknown headers are simply not settings; unknown /cfg/ names are errors
        assert (
            http.post(
                "/cfg/nonsense=1/v1/chat/completions", json=openai_req(), headers=auth("openai", new_key())
            ).status_code
            == 400
        )
        return
    r = http.post(PATHS["openai"], json=openai_req(), headers={**auth("openai", new_key()), **bad})
    assert r.status_code == 400 and r.json()["error"]["type"] == "fake_config"


def test_bad_cfg_segments_and_control_bodies(http: httpx.Client) -> None:
    key = new_key()
    for segment in (quote("{nope", safe=""), quote("[1]", safe=""), "chunks", ";;chunks=1;;"):
        r = http.post(f"/cfg/{segment}/v1/chat/completions", json=openai_req(), headers=auth("openai", key))
        assert r.status_code == (200 if segment == ";;chunks=1;;" else 400)
    assert http.post("/_control/config", content=b"[1]").status_code == 400
    assert http.post("/_control/config", json={"keys": {"abc": 1}}).status_code == 400
    assert http.post("/_control/config", content=b"{bad").status_code == 400
    assert http.get("/_control/config").json()["defaults"] == {}


# --- byok's own adapters cannot tell the fake from the real thing -------------------

ADAPTER_BASES = {
    "openai": "/v1",
    "deepseek": "/deepseek",
    "anthropic": "/anthropic",
    "gemini": "/gemini/v1beta",
    "openai_compatible": "/cfg/chunks=3/compat/v1",
}
ADAPTER_MODELS = {
    "openai": "gpt-4o",
    "deepseek": "deepseek-reasoner",
    "anthropic": "claude-sonnet-4-20250514",
    "gemini": "gemini-2.5-flash",
    "openai_compatible": "llama-3",
}


@pytest.mark.parametrize("kind", list(ADAPTER_BASES))
def test_byok_adapters_read_the_fake(http: httpx.Client, server: str, kind: str) -> None:
    from byok.exceptions import AuthError, RateLimitError
    from byok.providers import get_adapter
    from byok.providers.types import ChatRequest, Message, Tool

    adapter, base = get_adapter(kind), server + ADAPTER_BASES[kind]
    tool = Tool(name="get_weather", parameters={"type": "object", "properties": {"city": {"type": "string"}}})
    for tools, stream in (((), True), ((tool,), True), ((tool,), False)):
        req = ChatRequest(
            model=ADAPTER_MODELS[kind],
            messages=(Message(role="user", content="weather in Oslo?"),),
            tools=tools,
            stream=stream,
            max_tokens=100,
        )
        up = adapter.build_request(req, api_key=new_key(), base_url=base)
        r = http.request(up.method, up.url, headers=up.headers, json=up.json)
        assert r.status_code == 200, r.text
        if not stream:
            answer = adapter.parse_response(r.content)
            assert answer.finish_reason == "tool_calls" and answer.tool_calls[0].name == "get_weather"
            continue
        parser = adapter.stream_parser()
        evs = [e for piece in (r.content[i : i + 7] for i in range(0, len(r.content), 7)) for e in parser.feed(piece)]
        evs += parser.close()
        assert parser.finished
        finish = [e.finish_reason for e in evs if e.kind == "finish"][-1]
        if tools:
            args = "".join(e.arguments or "" for e in evs if e.kind == "tool_call_delta")
            assert finish == "tool_calls" and json.loads(args) == {"city": "Paris"}
        else:
            text = "".join(e.text or "" for e in evs if e.kind == "text_delta")
            assert finish == "stop" and text == filler_text(3 if kind == "openai_compatible" else 8)
    for fault, error in (("429", RateLimitError), ("401", AuthError)):
        req = ChatRequest(model=ADAPTER_MODELS[kind], messages=(Message(role="user", content="hi"),), max_tokens=10)
        up = adapter.build_request(req, api_key=new_key(), base_url=base)
        r = http.request(up.method, up.url, headers={**up.headers, "x-fake-fault": fault}, json=up.json)
        assert isinstance(adapter.classify_error(r.status_code, r.headers, r.content), error)
