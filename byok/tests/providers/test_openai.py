"""The OpenAI and openai_compatible adapters: corpus replays, request translation, errors, secrets.

Corpus cases are named in each test; error bodies follow the shape documented at
https://platform.openai.com/docs/guides/error-codes (`{"error": {message, type, param, code}}`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from typing import Any

import orjson
import pytest

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from byok.providers import get_adapter
from byok.providers.openai import OpenAIAdapter, OpenAICompatibleAdapter
from byok.providers.types import ChatRequest, Message, StreamEvent, Tool, ToolCall
from byok.tests.providers.replay import corpus_case, replay_json, replay_stream
from byok.tests.providers.stream_checks import (
    assert_stream_matches,
    assert_usage,
    chunk,
    collect,
    feed_all,
    random_pieces,
)

CANARY = "sk-canary-7f3c9e1d2b4a6c8e0f1a3b5c"
HI = (Message(role="user", content="hi"),)

OPENAI_STREAM_CASES = [
    "openai_stream_text_usage_chunk",
    "openai_stream_tool_call_fragments",
    "openai_stream_parallel_tool_calls",
    "openai_stream_finish_length",
    "openai_stream_unicode_json_mode",
    "openai_stream_refusal",
    "openai_stream_n3_interleaved_choices",
]
OPENAI_JSON_CASES = ["openai_json_text", "openai_json_parallel_tool_calls"]


# Helpers shared with test_deepseek.py.


def completion(message: dict[str, Any], finish: str | None = "stop", **extra: Any) -> bytes:
    choice = {"index": 0, "message": {"role": "assistant", **message}, "finish_reason": finish}
    return orjson.dumps(
        {"id": "chatcmpl-2", "object": "chat.completion", "model": "gpt-4o", "choices": [choice], **extra}
    )


def error_body(message: str, type_: str | None = None, code: str | None = None) -> bytes:
    return orjson.dumps({"error": {"message": message, "type": type_, "param": None, "code": code}})


@pytest.fixture
def adapter() -> OpenAIAdapter:
    found = get_adapter("openai")
    assert isinstance(found, OpenAIAdapter)
    return found


# The corpus.


@pytest.mark.parametrize("case", OPENAI_STREAM_CASES)
@pytest.mark.parametrize("split", ["whole", "seed1", "seed2", "seed3", "bytewise"])
async def test_it_reads_every_recorded_openai_stream(adapter, case, split):
    sidecar, body = corpus_case(case)
    pieces = {"whole": [body], "bytewise": random_pieces(body, 0, max_size=1)}.get(split) or random_pieces(
        body, int(split[-1])
    )
    req = ChatRequest(model="gpt-4o-2024-08-06", messages=HI, stream=True)
    _, events = await replay_stream(adapter, req, body, pieces=pieces)
    expected = sidecar["expected"]
    # n=3 (openai_stream_n3_interleaved_choices): byok reads choice 0 only; usage covers all three.
    assert_stream_matches(events, expected, choice=expected["choices"][0] if "choices" in expected else None)
    assert events[0] == StreamEvent(kind="meta", response_id=events[0].response_id, model="gpt-4o-2024-08-06")
    assert events[0].response_id.startswith("chatcmpl-")


@pytest.mark.parametrize("case", OPENAI_JSON_CASES)
async def test_it_reads_every_recorded_openai_answer(adapter, case):
    sidecar, body = corpus_case(case)
    _, answer = await replay_json(adapter, ChatRequest(model="gpt-4o-2024-08-06", messages=HI), body)
    expected = sidecar["expected"]
    assert answer.text == expected["text"]
    assert answer.refusal == expected["refusal"]
    assert answer.reasoning is None
    assert [(c.id, c.name, c.arguments) for c in answer.tool_calls] == [
        (c["id"], c["name"], c["arguments_raw"]) for c in expected["tool_calls"]
    ]
    assert (answer.finish_reason, answer.raw_finish_reason) == (expected["finish_reason"], expected["finish_reason"])
    assert_usage(answer.usage, expected["usage"])
    assert (
        answer.provider == "openai"
        and answer.model == "gpt-4o-2024-08-06"
        and answer.response_id.startswith("chatcmpl-")
    )


async def test_it_sets_finished_only_on_the_done_sentinel(adapter):
    _, body = corpus_case("openai_stream_text_usage_chunk")
    parser = adapter.stream_parser()
    parser.feed(body[: body.index(b"data: [DONE]")])
    assert not parser.finished
    parser.feed(b"data: [DONE]\n\n")
    assert parser.finished
    assert parser.feed(chunk({"content": "after the end"})) == []


# The outgoing request.


async def test_it_posts_to_chat_completions_with_a_bearer_key(adapter):
    sent, _ = await replay_json(
        adapter, ChatRequest(model="gpt-4o", messages=HI), completion({"content": "x"}), api_key=CANARY
    )
    assert sent.method == "POST"
    assert str(sent.url) == "https://api.openai.com/v1/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"
    assert sent.headers["content-type"] == "application/json"


def test_it_uses_a_configured_base_url_without_doubling_slashes(adapter):
    up = adapter.build_request(
        ChatRequest(model="m", messages=HI), api_key=CANARY, base_url="https://proxy.example/v1/"
    )
    assert up.url == "https://proxy.example/v1/chat/completions"


async def test_it_sends_only_the_parameters_that_are_set(adapter):
    sent, _ = await replay_json(adapter, ChatRequest(model="gpt-4o", messages=HI), completion({"content": "x"}))
    assert json.loads(sent.content) == {"model": "gpt-4o", "messages": [{"role": "user", "content": "hi"}]}


async def test_it_translates_sampling_parameters(adapter):
    req = ChatRequest(model="gpt-4o", messages=HI, temperature=0.2, top_p=0.9, max_tokens=256, stop=("END", "##"))
    sent, _ = await replay_json(adapter, req, completion({"content": "x"}))
    body = json.loads(sent.content)
    assert body["temperature"] == 0.2 and body["top_p"] == 0.9 and body["stop"] == ["END", "##"]
    # OpenAI's current name; reasoning models refuse the deprecated max_tokens.
    assert body["max_completion_tokens"] == 256 and "max_tokens" not in body


def test_it_keeps_zero_valued_parameters(adapter):
    body = adapter.build_request(ChatRequest(model="m", messages=HI, temperature=0.0, top_p=0.0), api_key=CANARY).json
    assert body["temperature"] == 0.0 and body["top_p"] == 0.0


async def test_it_asks_for_usage_when_streaming(adapter):
    _, body = corpus_case("openai_stream_finish_length")
    sent, _ = await replay_stream(adapter, ChatRequest(model="gpt-4o", messages=HI, stream=True), body)
    sent_body = json.loads(sent.content)
    assert sent_body["stream"] is True and sent_body["stream_options"] == {"include_usage": True}


async def test_it_translates_the_system_prompt_and_a_multi_turn_history(adapter):
    messages = (
        Message(role="system", content="Be brief."),
        Message(role="user", content="Hello"),
        Message(role="assistant", content="Hi! How can I help?"),
        Message(role="user", content="Tell me a joke"),
    )
    sent, _ = await replay_json(adapter, ChatRequest(model="gpt-4o", messages=messages), completion({"content": "x"}))
    assert json.loads(sent.content)["messages"] == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hello"},
        {"role": "assistant", "content": "Hi! How can I help?"},
        {"role": "user", "content": "Tell me a joke"},
    ]


async def test_it_translates_tools_tool_calls_and_tool_results(adapter):
    weather = Tool(
        name="get_weather",
        description="Weather for a city",
        parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
    )
    messages = (
        Message(role="user", content="Weather in Paris and Rome?"),
        Message(
            role="assistant",
            tool_calls=(
                ToolCall(id="call_a", name="get_weather", arguments='{"city":"Paris"}'),
                ToolCall(id="call_b", name="get_weather", arguments='{"city":"Rome"}'),
            ),
        ),
        Message(role="tool", tool_call_id="call_a", name="get_weather", content="18°C"),
        Message(role="tool", tool_call_id="call_b", name="get_weather", content="24°C"),
    )
    req = ChatRequest(model="gpt-4o", messages=messages, tools=(weather,), tool_choice="auto")
    sent, _ = await replay_json(adapter, req, completion({"content": "x"}))
    body = json.loads(sent.content)
    assert body["tools"] == [
        {
            "type": "function",
            "function": {"name": "get_weather", "description": "Weather for a city", "parameters": weather.parameters},
        }
    ]
    assert body["tool_choice"] == "auto"
    assert body["messages"][1] == {
        "role": "assistant",
        "content": None,
        "tool_calls": [
            {"id": "call_a", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'}},
            {"id": "call_b", "type": "function", "function": {"name": "get_weather", "arguments": '{"city":"Rome"}'}},
        ],
    }
    assert body["messages"][2:] == [
        {"role": "tool", "tool_call_id": "call_a", "content": "18°C"},
        {"role": "tool", "tool_call_id": "call_b", "content": "24°C"},
    ]


def test_it_invents_call_ids_for_history_from_providers_without_them(adapter):
    # Gemini history carries no call ids; OpenAI insists that every tool result names one.
    messages = (
        Message(role="user", content="q"),
        Message(role="assistant", tool_calls=(ToolCall(id=None, name="a"), ToolCall(id=None, name="b"))),
        Message(role="tool", name="b", content="B"),
        Message(role="tool", name="a", content="A"),
    )
    sent = adapter.build_request(ChatRequest(model="m", messages=messages), api_key=CANARY).json["messages"]
    ids = {c["function"]["name"]: c["id"] for c in sent[1]["tool_calls"]}
    assert ids["a"] and ids["b"] and ids["a"] != ids["b"]
    assert [(m["tool_call_id"], m["content"]) for m in sent[2:]] == [(ids["b"], "B"), (ids["a"], "A")]


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ("get_weather", {"type": "function", "function": {"name": "get_weather"}}),
    ],
)
def test_it_translates_tool_choice(adapter, choice, wire):
    req = ChatRequest(model="m", messages=HI, tools=(Tool(name="get_weather"),), tool_choice=choice)
    assert adapter.build_request(req, api_key=CANARY).json["tool_choice"] == wire


def test_openai_compatible_needs_a_configured_base_url():
    compatible = get_adapter("openai_compatible")
    assert isinstance(compatible, OpenAICompatibleAdapter)
    with pytest.raises(ValueError, match="base URL"):
        compatible.build_request(ChatRequest(model="m", messages=HI), api_key=CANARY)
    up = compatible.build_request(
        ChatRequest(model="llama3", messages=HI, max_tokens=64), api_key=CANARY, base_url="http://localhost:8001/v1"
    )
    assert up.url == "http://localhost:8001/v1/chat/completions"
    assert up.json["max_tokens"] == 64 and "max_completion_tokens" not in up.json


def test_openai_compatible_reads_reasoning_content_from_servers_that_stream_it():
    events = feed_all(
        get_adapter("openai_compatible"), chunk({"reasoning_content": "hmm"}), chunk({"content": "ok"}, "stop")
    )
    assert [(e.kind, e.text) for e in events if e.text] == [("reasoning_delta", "hmm"), ("text_delta", "ok")]


# Finish reasons.


@pytest.mark.parametrize(
    ("raw", "normalised"),
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("function_call", "tool_calls"),
        ("content_filter", "content_filter"),
        ("something_new", "stop"),
    ],
)
def test_it_maps_each_finish_reason_and_keeps_the_raw_one(adapter, raw, normalised):
    answer = adapter.parse_response(completion({"content": "x"}, finish=raw))
    assert (answer.finish_reason, answer.raw_finish_reason) == (normalised, raw)
    finish = [e for e in feed_all(adapter, chunk({"content": "x"}), chunk(finish=raw)) if e.kind == "finish"]
    assert [(e.finish_reason, e.raw_finish_reason) for e in finish] == [(normalised, raw)]


# Stream details.


def test_it_starts_a_tool_call_and_streams_its_arguments_when_all_arrive_in_one_fragment(adapter):
    call = {"index": 0, "id": "call_1", "type": "function", "function": {"name": "f", "arguments": '{"a":1}'}}
    events = feed_all(adapter, chunk({"tool_calls": [call]}), chunk(finish="tool_calls"))
    assert events[1:3] == [
        StreamEvent(kind="tool_call_start", index=0, tool_call_id="call_1", name="f"),
        StreamEvent(kind="tool_call_delta", index=0, arguments='{"a":1}'),
    ]


def test_it_reads_the_legacy_function_call_as_a_tool_call(adapter):
    answer = adapter.parse_response(
        completion({"content": None, "function_call": {"name": "f", "arguments": "{}"}}, "function_call")
    )
    assert answer.tool_calls == (ToolCall(id=None, name="f", arguments="{}"),) and answer.finish_reason == "tool_calls"
    events = feed_all(
        adapter, chunk({"function_call": {"name": "f", "arguments": ""}}), chunk({"function_call": {"arguments": "{}"}})
    )
    assert collect(events)["tool_calls"] == [{"index": 0, "id": None, "name": "f", "arguments_raw": "{}"}]


def test_it_reads_a_refusal_in_a_full_answer(adapter):
    answer = adapter.parse_response(completion({"content": None, "refusal": "I can't help with that."}))
    assert answer.refusal == "I can't help with that." and answer.text is None


def test_it_reassembles_unicode_split_across_chunks(adapter):
    body = chunk({"content": "18°C — 晴れ 🌤"}) + chunk(finish="stop") + b"data: [DONE]\n\n"
    for cut in range(1, len(body)):
        assert collect(feed_all(adapter, body[:cut], body[cut:]))["text"] == "18°C — 晴れ 🌤", cut


def test_it_emits_one_finish_even_when_a_server_repeats_it(adapter):
    usage = {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4}
    events = feed_all(adapter, chunk({"content": "x"}, "stop"), chunk(finish="stop", usage=usage))
    assert [e.kind for e in events] == ["meta", "text_delta", "finish", "usage"]


def test_it_emits_nothing_for_empty_deltas_and_null_usage(adapter):
    events = feed_all(adapter, chunk({"role": "assistant", "content": "", "refusal": None}, usage=None))
    assert [e.kind for e in events] == ["meta"]


def test_it_raises_a_classified_error_sent_mid_stream(adapter):
    parser = adapter.stream_parser()
    assert collect(parser.feed(chunk({"content": "Hel"})))["text"] == "Hel"
    bad = {"error": {"message": "The server had an error while processing your request.", "type": "server_error"}}
    with pytest.raises(ServerError) as caught:
        parser.feed(b"data: " + orjson.dumps(bad) + b"\n\n")
    assert caught.value.in_stream and caught.value.retryable and caught.value.provider_code == "server_error"
    assert "server had an error" in caught.value.message


@pytest.mark.parametrize(
    ("error", "cls"),
    [
        ({"message": "quota", "type": "insufficient_quota", "code": "insufficient_quota"}, KeyQuotaError),
        ({"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}, RateLimitError),
        ({"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}, AuthError),
        ({"message": "too long", "type": "invalid_request_error", "code": "context_length_exceeded"}, BadRequestError),
        ({"message": "vLLM style", "type": "BadRequestError", "code": 400}, BadRequestError),
        ({"message": "whatever"}, ServerError),
    ],
)
def test_it_classifies_in_stream_errors_by_their_type_and_code(adapter, error, cls):
    with pytest.raises(cls) as caught:
        feed_all(adapter, chunk({"content": "a"}), b"data: " + orjson.dumps({"error": error}) + b"\n\n")
    assert type(caught.value) is cls and caught.value.in_stream


@pytest.mark.parametrize(
    "data", [b"data: {not json\n\n", b'data: {"id": "x", "choices": [\n\n', b"data: [1, 2]\n\n", b"data: \xff\n\n"]
)
def test_it_raises_malformed_response_for_unreadable_chunks(adapter, data):
    with pytest.raises(MalformedResponseError) as caught:
        feed_all(adapter, chunk({"content": "a"}), data)
    assert caught.value.in_stream and caught.value.retryable


@pytest.mark.parametrize(
    "body", [b"", b"<html>502</html>", b"[]", b'{"id": "x", "choices": []}', b'{"choices": [null]}']
)
def test_it_raises_malformed_response_for_unreadable_answers(adapter, body):
    with pytest.raises(MalformedResponseError):
        adapter.parse_response(body)


def test_it_raises_the_error_in_a_200_answer_that_holds_one(adapter):
    with pytest.raises(RateLimitError):
        adapter.parse_response(error_body("Rate limit reached", "requests", "rate_limit_exceeded"))


def test_a_stream_without_done_is_not_finished_but_keeps_its_events(adapter):
    parser = adapter.stream_parser()
    events = parser.feed(chunk({"content": "partial"})) + parser.close()
    assert collect(events)["text"] == "partial" and not parser.finished


# Errors over HTTP.


async def http_error(adapter, status: int, body: bytes, headers: dict[str, str] | None = None) -> ProviderError:
    with pytest.raises(ProviderError) as caught:
        await replay_json(
            adapter, ChatRequest(model="gpt-4o", messages=HI), body, status=status, headers=headers, api_key=CANARY
        )
    return caught.value


@pytest.mark.parametrize("status", [401, 403])
async def test_it_maps_rejected_keys_to_auth_error(adapter, status):
    body = error_body(
        "Incorrect API key provided: sk-canar***************1a3b.", "invalid_request_error", "invalid_api_key"
    )
    err = await http_error(adapter, status, body)
    assert type(err) is AuthError and not err.retryable and err.status == status
    assert err.message.startswith("Incorrect API key provided") and err.provider_code == "invalid_api_key"


@pytest.mark.parametrize("code", ["insufficient_quota", "credit_balance_exhausted", "project_spend_limit_exceeded"])
async def test_it_maps_insufficient_quota_to_key_quota_error(adapter, code):
    body = error_body(
        "You exceeded your current quota, please check your plan and billing details.", "insufficient_quota", code
    )
    err = await http_error(adapter, 429, body, {"retry-after": "20"})
    assert type(err) is KeyQuotaError and not err.retryable and "exceeded your current quota" in err.message


RATE_LIMITED = error_body(
    "Rate limit reached for gpt-4o on requests per min (RPM): Limit 3.", "requests", "rate_limit_exceeded"
)


async def test_it_maps_429_to_rate_limit_error_with_retry_after_seconds(adapter):
    err = await http_error(adapter, 429, RATE_LIMITED, {"Retry-After": "20"})
    assert type(err) is RateLimitError and err.retryable and err.retry_after == 20.0
    assert err.message.startswith("Rate limit reached") and err.provider_code == "rate_limit_exceeded"


async def test_it_reads_retry_after_as_an_http_date(adapter):
    when = format_datetime(datetime.now(UTC) + timedelta(seconds=90), usegmt=True)
    err = await http_error(adapter, 429, RATE_LIMITED, {"retry-after": when})
    assert 85 <= err.retry_after <= 90


async def test_it_prefers_retry_after_ms(adapter):
    err = await http_error(adapter, 429, RATE_LIMITED, {"retry-after-ms": "1500", "retry-after": "2"})
    assert err.retry_after == 1.5


async def test_it_falls_back_to_the_reset_of_the_exhausted_limit(adapter):
    headers = {
        "x-ratelimit-remaining-requests": "59",
        "x-ratelimit-remaining-tokens": "0",
        "x-ratelimit-reset-requests": "1s",
        "x-ratelimit-reset-tokens": "6m0s",
    }
    assert (await http_error(adapter, 429, RATE_LIMITED, headers)).retry_after == 360.0
    headers["x-ratelimit-remaining-tokens"], headers["x-ratelimit-remaining-requests"] = "900", "0"
    assert (await http_error(adapter, 429, RATE_LIMITED, headers)).retry_after == 1.0


async def test_it_takes_the_later_reset_when_it_cannot_tell_which_limit_was_hit(adapter):
    headers = {"x-ratelimit-reset-requests": "20ms", "x-ratelimit-reset-tokens": "1m30s"}
    assert (await http_error(adapter, 429, RATE_LIMITED, headers)).retry_after == 90.0
    assert (await http_error(adapter, 429, RATE_LIMITED)).retry_after is None


@pytest.mark.parametrize("status", [500, 502, 503, 504])
async def test_it_maps_5xx_to_a_retryable_server_error(adapter, status):
    err = await http_error(adapter, status, error_body("The server had an error.", "server_error"))
    assert (
        type(err) is ServerError
        and err.retryable
        and err.status == status
        and err.message == "The server had an error."
    )


async def test_it_maps_529_to_overloaded(adapter):
    assert type(await http_error(adapter, 529, b"")) is OverloadedError


@pytest.mark.parametrize(
    ("status", "cls", "message", "code"),
    [
        (400, BadRequestError, "Invalid value for 'temperature': expected at most 2.", "invalid_value"),
        (404, NotFoundError, "The model `gpt-9` does not exist or you do not have access to it.", "model_not_found"),
        (413, BadRequestError, "Request too large.", None),
        (422, BadRequestError, "Unprocessable entity.", None),
    ],
)
async def test_it_passes_client_errors_on_with_the_providers_message(adapter, status, cls, message, code):
    err = await http_error(adapter, status, error_body(message, "invalid_request_error", code))
    assert type(err) is cls and not err.retryable
    assert err.message == message and err.status_code == status
    assert err.provider_code == (code or "invalid_request_error")


@pytest.mark.parametrize(
    ("status", "cls"), [(401, AuthError), (429, RateLimitError), (502, ServerError), (404, NotFoundError)]
)
async def test_it_classifies_unparseable_error_bodies_by_status(adapter, status, cls):
    err = await http_error(adapter, status, b"<html><body>Bad gateway</body></html>")
    assert type(err) is cls and "<html>" not in err.message and str(status) in err.message


async def test_it_keeps_a_short_plain_text_error_body(adapter):
    assert (await http_error(adapter, 400, b"model is required")).message == "model is required"


# Rate-limit headers.


def test_it_reads_the_rate_limit_headers(adapter):
    info = adapter.parse_rate_limits(
        {
            "X-RateLimit-Remaining-Requests": "59",
            "x-ratelimit-remaining-tokens": "149984",
            "x-ratelimit-reset-requests": "1s",
            "x-ratelimit-reset-tokens": "6m0s",
        }
    )
    assert (info.remaining_requests, info.remaining_tokens, info.reset_requests_s, info.reset_tokens_s) == (
        59,
        149984,
        1.0,
        360.0,
    )
    assert adapter.parse_rate_limits({}).remaining_requests is None


# Secrets.


async def test_the_key_never_appears_in_an_error_message_or_repr(adapter):
    up = adapter.build_request(ChatRequest(model="m", messages=HI), api_key=CANARY)
    assert CANARY in up.headers["Authorization"]
    seen = [repr(up), str(up), repr(adapter), repr(adapter.stream_parser())]
    # Even a body that echoes the key (a misbehaving proxy) must not carry it into the error.
    echo = error_body(f"Incorrect API key provided: {CANARY}", "invalid_request_error", "invalid_api_key")
    for status in (400, 401, 403, 404, 422, 429, 500, 503):
        err = await http_error(adapter, status, echo, {"x-echo": CANARY})
        seen += [str(err), repr(err), err.message, json.dumps(err.to_dict())]
    with pytest.raises(ProviderError) as caught:
        feed_all(adapter, b"data: " + echo + b"\n\n")
    seen += [str(caught.value), repr(caught.value)]
    for text in seen:
        assert CANARY not in text
