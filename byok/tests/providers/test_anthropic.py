"""The Anthropic adapter: corpus replays, request translation, errors, secrets.

Corpus cases (`byok/tests/fixtures/corpus/`) are named in each test; the extra
samples in `byok/tests/fixtures/anthropic/` say where they come from in their
SOURCE.md. Wire format: https://docs.anthropic.com/en/api/messages and
https://docs.anthropic.com/en/docs/build-with-claude/streaming.
"""

from __future__ import annotations

import json
import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
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
from byok.providers.anthropic import AnthropicAdapter, _seconds_until_next_month
from byok.providers.types import ChatRequest, Message, StreamEvent, Tool, ToolCall
from byok.tests.providers.replay import corpus_case, replay_json, replay_stream, split_at

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"
CANARY = "sk-ant-api03-canary-7f3c9e1d2b4a6c8e0f1a3b5c7d9e"
HI = (Message(role="user", content="hi"),)
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}}
STREAM_CASES = [
    "anthropic_stream_sdk_basic",
    "anthropic_stream_sdk_tool_use",
    "anthropic_stream_sdk_max_tokens_truncated_tool_json",
    "anthropic_stream_sdk_refusal",
]
# The gateway's side of each stop_reason the corpus shows (raw values are kept beside it).
NORMALISED = {"end_turn": "stop", "tool_use": "tool_calls", "max_tokens": "length", "refusal": "content_filter"}
ERRORS = {case["case"]: case for case in json.loads((FIXTURES / "errors.json").read_text())}
ERROR_CLASSES = {
    cls.__name__: cls
    for cls in (AuthError, BadRequestError, KeyQuotaError, NotFoundError, OverloadedError, RateLimitError, ServerError)
}


@pytest.fixture
def adapter() -> AnthropicAdapter:
    return AnthropicAdapter()


def request(**kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", "claude-sonnet-4-20250514")
    kwargs.setdefault("messages", HI)
    return ChatRequest(**kwargs)


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


def piece_modes(body: bytes) -> dict[str, list[bytes]]:
    """The body whole, byte by byte, cut inside every UTF-8 character and CRLF pair, and at random."""
    awkward = [i for i in range(1, len(body)) if 0x80 <= body[i] < 0xC0 or body[i - 1 : i + 1] == b"\r\n"]
    rng = random.Random(len(body))
    cuts, at = [], 0
    while at < len(body):
        at += rng.randint(1, 9)
        cuts.append(at)
    return {
        "whole": [body],
        "bytes": [body[i : i + 1] for i in range(len(body))],
        "awkward": split_at(body, awkward),
        "random": split_at(body, cuts),
    }


def drive(parser, pieces: list[bytes]) -> tuple[list[StreamEvent], ProviderError | None]:
    """Feed a parser as the handler does, keeping the events seen before an error."""
    events: list[StreamEvent] = []
    try:
        for piece in pieces:
            events += parser.feed(piece)
        events += parser.close()
    except ProviderError as exc:
        return events, exc
    return events, None


def collect(events: list[StreamEvent]) -> dict[str, Any]:
    """What a client assembles from the events."""
    out: dict[str, Any] = {"text": "", "reasoning": None, "calls": {}, "usage": None}
    out["finish"] = [(e.finish_reason, e.raw_finish_reason) for e in events if e.kind == "finish"]
    out["meta"] = [(e.response_id, e.model) for e in events if e.kind == "meta"]
    for e in events:
        if e.kind == "text_delta":
            out["text"] += e.text
        elif e.kind == "reasoning_delta":
            out["reasoning"] = (out["reasoning"] or "") + (e.text or "")
        elif e.kind == "tool_call_start":
            assert e.index not in out["calls"], "one start per tool call"
            out["calls"][e.index] = {"id": e.tool_call_id, "name": e.name, "raw": ""}
        elif e.kind == "tool_call_delta":
            out["calls"][e.index]["raw"] += e.arguments
        elif e.kind == "usage":
            out["usage"] = e.usage
    assert list(out["calls"]) == list(range(len(out["calls"]))), "tool calls are numbered 0, 1, 2…"
    out["calls"] = [out["calls"][i] for i in sorted(out["calls"])]
    return out


# Corpus replays.


@pytest.mark.parametrize("mode", ["whole", "bytes", "awkward", "random"])
@pytest.mark.parametrize("case", STREAM_CASES)
async def test_it_reads_every_anthropic_corpus_stream_as_its_sidecar_expects(adapter, case, mode):
    sidecar, body = corpus_case(case)
    expected = sidecar["expected"]
    _, events = await replay_stream(adapter, request(stream=True), body, pieces=piece_modes(body)[mode])
    got = collect(events)
    assert got["text"] == (expected["text"] or "")
    assert got["reasoning"] == expected["reasoning"]
    assert len(got["calls"]) == len(expected["tool_calls"])
    for call, want in zip(got["calls"], expected["tool_calls"]):
        assert (call["id"], call["name"], call["raw"]) == (want["id"], want["name"], want["arguments_raw"])
        if want["arguments_valid_json"]:
            assert json.loads(call["raw"]) == want["arguments"]
        else:  # truncated by max_tokens: passed on as sent, never repaired or invented
            with pytest.raises(ValueError):
                json.loads(call["raw"])
    raw = expected["finish_reason"]
    assert got["finish"] == [(NORMALISED[raw], raw)]
    usage, want_usage = got["usage"], expected["usage"]
    assert (usage.input_tokens, usage.output_tokens) == (want_usage["input_tokens"], want_usage["output_tokens"])
    assert usage.total_tokens == want_usage["input_tokens"] + want_usage["output_tokens"]
    assert usage.cached_input_tokens == want_usage.get("cache_read_input_tokens")
    message_id = body.split(b'"id":"')[1].split(b'"')[0].decode()
    assert got["meta"] == [(message_id, sidecar["request"]["body_summary"].get("model"))]


@pytest.mark.parametrize("case", STREAM_CASES)
def test_it_marks_the_stream_finished_at_message_stop(adapter, case):
    sidecar, body = corpus_case(case)
    parser = adapter.stream_parser()
    parser.feed(body[: body.rindex(b"event: message_stop")])
    assert not parser.finished
    parser.feed(body[body.rindex(b"event: message_stop") :])
    parser.close()  # the corpus bodies end without the final blank line: close() completes the event
    assert parser.finished is sidecar["expected"]["message_stop_seen"]


def test_it_gives_a_tool_use_block_without_input_deltas_empty_arguments(adapter):
    body = fixture("stream_parallel_tools_unicode.sse")
    events, error = drive(adapter.stream_parser(), piece_modes(body)["bytes"])
    got = collect(events)
    assert error is None
    assert got["text"] == "Je vérifie la météo à Zürich ☀️ et l'heure à 東京."
    assert [(c["id"], c["name"], c["raw"]) for c in got["calls"]] == [
        ("toolu_01T1x1fJ34qAmk2tNTrN7Up6", "get_weather", '{"location": "Zürich"}'),
        ("toolu_01CZuJ5rD1cW8bX9dqVtH2uL", "get_time", "{}"),
    ]
    assert got["finish"] == [("tool_calls", "tool_use")]


def test_it_counts_prompt_cache_reads_and_writes_as_input(adapter):
    events, _ = drive(adapter.stream_parser(), [fixture("stream_parallel_tools_unicode.sse")])
    usage = collect(events)["usage"]
    assert (usage.input_tokens, usage.cached_input_tokens, usage.output_tokens) == (472 + 100 + 2000, 2000, 89)
    assert usage.total_tokens == 472 + 100 + 2000 + 89


@pytest.mark.parametrize("mode", ["whole", "bytes", "random"])
def test_it_streams_thinking_as_reasoning_and_drops_the_signature(adapter, mode):
    body = fixture("stream_thinking.sse")
    events, error = drive(adapter.stream_parser(), piece_modes(body)[mode])
    got = collect(events)
    assert error is None
    assert got["reasoning"] == "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3"
    assert got["text"] == "27 * 453 = 12,231"
    assert got["finish"] == [("stop", "end_turn")]
    assert got["usage"] is None  # this docs example carries no usage
    assert not any("EqQBCgIYAhIM" in (e.text or "") for e in events)


def test_it_ignores_ping_events(adapter):
    events, _ = drive(adapter.stream_parser(), [b'event: ping\ndata: {"type": "ping"}\n\n'])
    assert events == []


# Errors inside a stream.


@pytest.mark.parametrize("mode", ["whole", "bytes", "random"])
def test_it_raises_overloaded_error_mid_stream_after_the_text_before_it(adapter, mode):
    body = fixture("stream_overloaded_mid_stream.sse")
    events, error = drive(adapter.stream_parser(), piece_modes(body)[mode])
    assert collect(events)["text"] == "Hello!"
    assert isinstance(error, OverloadedError)
    assert (error.in_stream, error.retryable) == (True, True)
    assert (error.provider_code, error.message) == ("overloaded_error", "Overloaded")


async def test_it_raises_the_in_stream_error_through_httpx(adapter):
    with pytest.raises(OverloadedError) as caught:
        await replay_stream(adapter, request(stream=True), fixture("stream_overloaded_mid_stream.sse"))
    assert caught.value.in_stream


def test_it_keeps_raising_a_deferred_error_on_later_calls(adapter):
    parser = adapter.stream_parser()
    assert collect(parser.feed(fixture("stream_overloaded_mid_stream.sse")))["text"] == "Hello!"
    for call in (lambda: parser.feed(b"event: ping\n"), parser.close):
        with pytest.raises(OverloadedError):
            call()


def test_it_passes_on_tool_input_sent_whole_in_content_block_start(adapter):
    start = {
        "type": "content_block_start",
        "index": 0,
        "content_block": {"type": "tool_use", "id": "toolu_9", "name": "f", "input": {"a": 1}},
    }
    stop = b'data: {"type":"content_block_stop","index":0}\n\n'
    body = b"event: content_block_start\ndata: " + orjson.dumps(start) + b"\n\n" + stop
    events, _ = drive(adapter.stream_parser(), [body])
    assert collect(events)["calls"] == [{"id": "toolu_9", "name": "f", "raw": '{"a":1}'}]


def test_it_raises_an_error_event_before_any_output_at_once(adapter):
    parser = adapter.stream_parser()
    with pytest.raises(OverloadedError):
        parser.feed(fixture("stream_error_before_output.sse"))


@pytest.mark.parametrize(
    ("etype", "cls"),
    [
        ("rate_limit_error", RateLimitError),
        ("api_error", ServerError),
        ("authentication_error", AuthError),
        ("permission_error", AuthError),
        ("billing_error", KeyQuotaError),
        ("invalid_request_error", BadRequestError),
        ("not_found_error", NotFoundError),
        ("some_future_error", ServerError),
    ],
)
def test_it_classifies_in_stream_error_types(adapter, etype, cls):
    body = orjson.dumps({"type": "error", "error": {"type": etype, "message": "boom"}})
    with pytest.raises(cls) as caught:
        adapter.stream_parser().feed(b"event: error\ndata: " + body + b"\n\n")
    assert type(caught.value) is cls and caught.value.in_stream


def test_it_raises_malformed_response_error_for_a_non_json_event(adapter):
    parser = adapter.stream_parser()
    with pytest.raises(MalformedResponseError) as caught:
        parser.feed(b'event: content_block_delta\ndata: {"type": "content_block_delta", "index": 0, "delta\n\n')
    assert caught.value.in_stream and caught.value.retryable


def test_it_raises_malformed_response_error_for_a_non_json_body(adapter):
    with pytest.raises(MalformedResponseError):
        adapter.parse_response(b"<html>502 Bad Gateway</html>")


def test_it_still_finishes_when_the_body_ends_before_message_stop(adapter):
    body = fixture("stream_thinking.sse")
    parser = adapter.stream_parser()
    events, _ = drive(parser, [body[: body.index(b"event: message_stop")]])
    assert collect(events)["finish"] == [("stop", "end_turn")]
    assert not parser.finished  # the handler can still tell the stream was cut short


# Whole responses.


async def test_it_parses_a_whole_text_answer(adapter):
    _, answer = await replay_json(adapter, request(), fixture("json_text.body.json"))
    assert answer.text == "Hi! My name is Claude."
    assert (answer.finish_reason, answer.raw_finish_reason) == ("stop", "end_turn")
    assert (answer.usage.input_tokens, answer.usage.output_tokens, answer.usage.total_tokens) == (2095, 503, 2598)
    assert (answer.provider, answer.model) == ("anthropic", "claude-3-7-sonnet-20250219")
    assert answer.response_id == "msg_013Zva2CMHLNnXjNJJKqJ2EF"


async def test_it_parses_thinking_and_tool_use_blocks(adapter):
    _, answer = await replay_json(adapter, request(), fixture("json_thinking_tool_use.body.json"))
    assert answer.reasoning.startswith("The user wants the weather")
    assert answer.text == "I'll check the current weather in San Francisco for you."
    assert answer.tool_calls == (
        ToolCall(
            id="toolu_01A09q90qw90lq917835lq9",
            name="get_weather",
            arguments='{"location":"San Francisco, CA","unit":"celsius"}',
        ),
    )
    assert (answer.finish_reason, answer.raw_finish_reason) == ("tool_calls", "tool_use")
    assert (answer.usage.input_tokens, answer.usage.cached_input_tokens) == (384 + 1024, 1024)


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("end_turn", "stop"),
        ("stop_sequence", "stop"),
        ("max_tokens", "length"),
        ("tool_use", "tool_calls"),
        ("refusal", "content_filter"),
        ("pause_turn", "stop"),
        (None, "stop"),
    ],
)
def test_it_maps_each_stop_reason(adapter, raw, finish):
    body = orjson.dumps({"id": "msg_1", "type": "message", "content": [], "stop_reason": raw, "usage": {}})
    answer = adapter.parse_response(body)
    assert (answer.finish_reason, answer.raw_finish_reason, answer.text) == (finish, raw, None)


# The outgoing request.


async def test_it_posts_to_messages_with_the_key_and_version_headers(adapter):
    sent, _ = await replay_json(adapter, request(), fixture("json_text.body.json"), api_key=CANARY)
    assert (sent.method, str(sent.url)) == ("POST", "https://api.anthropic.com/v1/messages")
    assert sent.headers["x-api-key"] == CANARY
    assert sent.headers["anthropic-version"] == "2023-06-01"
    assert sent.headers["content-type"] == "application/json"
    assert "authorization" not in sent.headers
    assert CANARY not in str(sent.url) and CANARY not in sent.content.decode()


def test_it_uses_a_configured_base_url(adapter):
    up = adapter.build_request(request(), api_key="k", base_url="https://proxy.example/anthropic/")
    assert up.url == "https://proxy.example/anthropic/v1/messages"


async def test_it_translates_a_multi_turn_tool_conversation(adapter):
    req = request(
        stream=True,
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather and time in Paris?"),
            Message(role="system", content="Use metric units."),
            Message(
                role="assistant",
                content="Checking.",
                tool_calls=(
                    ToolCall(id="toolu_1", name="get_weather", arguments='{"city": "Paris"}'),
                    ToolCall(id="toolu_2", name="get_time", arguments=""),
                ),
            ),
            Message(role="tool", tool_call_id="toolu_1", content='{"temp_c": 21}'),
            Message(role="tool", tool_call_id="toolu_2", content="14:05"),
            Message(role="user", content="And tomorrow?"),
            Message(role="user", content="Thanks."),
        ),
        tools=(Tool(name="get_weather", description="Weather now", parameters=CITY_SCHEMA), Tool(name="get_time")),
        tool_choice="auto",
        temperature=0.2,
        top_p=0.9,
        max_tokens=300,
        stop=("END",),
    )
    sent, _ = await replay_stream(adapter, req, fixture("stream_thinking.sse"))
    body = json.loads(sent.content)
    assert body == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": 300,
        "system": "Be brief.\n\nUse metric units.",
        "messages": [
            {"role": "user", "content": [{"type": "text", "text": "Weather and time in Paris?"}]},
            {
                "role": "assistant",
                "content": [
                    {"type": "text", "text": "Checking."},
                    {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
                    {"type": "tool_use", "id": "toolu_2", "name": "get_time", "input": {}},
                ],
            },
            {
                "role": "user",
                "content": [  # tool results merged with the user turns that follow
                    {"type": "tool_result", "tool_use_id": "toolu_1", "content": '{"temp_c": 21}'},
                    {"type": "tool_result", "tool_use_id": "toolu_2", "content": "14:05"},
                    {"type": "text", "text": "And tomorrow?"},
                    {"type": "text", "text": "Thanks."},
                ],
            },
        ],
        "tools": [
            {"name": "get_weather", "description": "Weather now", "input_schema": CITY_SCHEMA},
            {"name": "get_time", "input_schema": {"type": "object", "properties": {}}},
        ],
        "tool_choice": {"type": "auto"},
        "temperature": 0.2,
        "top_p": 0.9,
        "stop_sequences": ["END"],
        "stream": True,
    }


def test_it_fills_in_the_default_max_tokens_and_leaves_out_what_is_unset(adapter):
    body = adapter.build_request(request(), api_key="k").json
    assert adapter.requires_max_tokens is True
    assert body == {
        "model": "claude-sonnet-4-20250514",
        "max_tokens": adapter.default_max_tokens,
        "messages": [{"role": "user", "content": [{"type": "text", "text": "hi"}]}],
    }


@pytest.mark.parametrize(
    ("choice", "wire"),
    [
        ("auto", {"type": "auto"}),
        ("required", {"type": "any"}),
        ("none", {"type": "none"}),
        ("get_weather", {"type": "tool", "name": "get_weather"}),
    ],
)
def test_it_maps_tool_choice(adapter, choice, wire):
    req = request(tools=(Tool(name="get_weather"),), tool_choice=choice)
    assert adapter.build_request(req, api_key="k").json["tool_choice"] == wire


def test_it_refuses_history_whose_tool_arguments_are_not_a_json_object(adapter):
    broken = ToolCall(id="t", name="f", arguments='{"a": ')
    req = request(messages=(*HI, Message(role="assistant", tool_calls=(broken,))))
    with pytest.raises(BadRequestError):
        adapter.build_request(req, api_key="k")


# Errors before the stream.


def _headers(raw: dict[str, str]) -> dict[str, str]:
    """Turn RESET_IN_<n>S placeholders into RFC 3339 times n seconds from now."""
    out = {}
    for name, value in raw.items():
        if value.startswith("RESET_IN_"):
            when = datetime.now(UTC) + timedelta(seconds=int(value[9:-1]))
            value = when.isoformat().replace("+00:00", "Z")
        out[name] = value
    return out


@pytest.mark.parametrize("case", list(ERRORS))
@pytest.mark.parametrize("streaming", [False, True])
async def test_it_classifies_each_documented_error(adapter, case, streaming):
    spec = ERRORS[case]
    body = spec["body"] if isinstance(spec["body"], str) else json.dumps(spec["body"])
    replay = replay_stream if streaming else replay_json
    with pytest.raises(ProviderError) as caught:
        await replay(
            adapter, request(stream=streaming), body.encode(), status=spec["status"], headers=_headers(spec["headers"])
        )
    error, want = caught.value, spec["expected"]
    assert type(error) is ERROR_CLASSES[want["class"]]
    assert (error.retryable, error.status) == (want["retryable"], spec["status"])
    assert (error.provider, error.in_stream) == ("anthropic", False)
    if want["retry_after"] == "next_month_utc":
        assert error.retry_after == pytest.approx(_seconds_until_next_month(), abs=5)
    elif want["retry_after"] is None:
        assert error.retry_after is None
    else:
        assert error.retry_after == pytest.approx(want["retry_after"], abs=2)
    if "message" in want:
        assert error.message == want["message"]
    if want["class"] in ("BadRequestError", "NotFoundError"):
        assert error.status_code == spec["status"]  # passed on to the caller as the provider said


def test_it_counts_the_spend_limit_wait_to_the_first_of_next_month():
    dec_31 = datetime(2025, 12, 31, 23, 0, tzinfo=UTC)
    assert _seconds_until_next_month(dec_31) == 3600
    assert _seconds_until_next_month(datetime(2026, 2, 27, tzinfo=UTC)) == 2 * 86400


def test_it_reads_the_rate_limit_headers(adapter):
    soon = (datetime.now(UTC) + timedelta(seconds=40)).isoformat().replace("+00:00", "Z")
    info = adapter.parse_rate_limits(
        {
            "Anthropic-RateLimit-Requests-Remaining": "49",
            "anthropic-ratelimit-requests-reset": soon,
            "anthropic-ratelimit-tokens-remaining": "7000",
            "anthropic-ratelimit-tokens-reset": "not a time",
        }
    )
    assert (info.remaining_requests, info.remaining_tokens, info.reset_tokens_s) == (49, 7000, None)
    assert info.reset_requests_s == pytest.approx(40, abs=2)
    assert adapter.parse_rate_limits({}) == type(info)()


# Secrets.


def test_it_never_puts_the_key_in_an_error_message_or_repr(adapter):
    up = adapter.build_request(request(), api_key=CANARY)
    assert CANARY not in repr(up) and CANARY not in up.url
    echoed = orjson.dumps({"type": "error", "error": {"type": "authentication_error", "message": f"bad key {CANARY}"}})
    in_stream = orjson.dumps({"type": "error", "error": {"type": "api_error", "message": CANARY}})
    stream_echo = b"event: error\ndata: " + in_stream + b"\n\n"
    errors = [adapter.classify_error(status, {"x-api-key": CANARY}, echoed) for status in (400, 401, 429, 500, 529)]
    with pytest.raises(ProviderError) as caught:
        adapter.stream_parser().feed(stream_echo)
    for error in [*errors, caught.value]:
        assert CANARY not in str(error) and CANARY not in repr(error) and CANARY not in json.dumps(error.to_dict())


def test_it_is_the_registered_anthropic_adapter():
    assert isinstance(get_adapter("anthropic"), AnthropicAdapter)
    assert get_adapter("anthropic").kind == "anthropic"


# Stop sequences: Anthropic names the one that matched (message `stop_sequence`, or message_delta's
# `delta.stop_sequence` in a stream; https://docs.anthropic.com/en/api/messages#response-stop-sequence).

STOP_SEQUENCE_STREAM = b"".join(
    b"event: " + name.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"
    for name, data in [
        ("message_start", {"type": "message_start", "message": {"id": "msg_1", "model": "claude", "usage": {}}}),
        ("content_block_start", {"type": "content_block_start", "index": 0, "content_block": {"type": "text"}}),
        (
            "content_block_delta",
            {"type": "content_block_delta", "index": 0, "delta": {"type": "text_delta", "text": "1, 2"}},
        ),
        ("content_block_stop", {"type": "content_block_stop", "index": 0}),
        (
            "message_delta",
            {
                "type": "message_delta",
                "delta": {"stop_reason": "stop_sequence", "stop_sequence": ", 3"},
                "usage": {"output_tokens": 4},
            },
        ),
        ("message_stop", {"type": "message_stop"}),
    ]
)


@pytest.mark.parametrize("mode", ["whole", "bytewise"])
def test_a_stream_says_which_stop_sequence_ended_it(adapter, mode):
    parser = adapter.stream_parser()
    chunks = [STOP_SEQUENCE_STREAM] if mode == "whole" else [bytes([b]) for b in STOP_SEQUENCE_STREAM]
    events = [ev for chunk in chunks for ev in parser.feed(chunk)] + parser.close()
    [finish] = [ev for ev in events if ev.kind == "finish"]
    assert (finish.finish_reason, finish.raw_finish_reason, finish.stop_sequence) == ("stop", "stop_sequence", ", 3")


def test_a_whole_answer_says_which_stop_sequence_ended_it(adapter):
    body = {"id": "msg_1", "type": "message", "content": [{"type": "text", "text": "1, 2"}], "usage": {}}
    answer = adapter.parse_response(orjson.dumps({**body, "stop_reason": "stop_sequence", "stop_sequence": ", 3"}))
    assert (answer.finish_reason, answer.raw_finish_reason, answer.stop_sequence) == ("stop", "stop_sequence", ", 3")
    answer = adapter.parse_response(orjson.dumps({**body, "stop_reason": "end_turn", "stop_sequence": None}))
    assert answer.stop_sequence is None
