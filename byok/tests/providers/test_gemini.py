"""The Gemini adapter: corpus replays, request translation, errors, secrets.

Corpus cases (`byok/tests/fixtures/corpus/`) are named in each test; the extra
samples in `byok/tests/fixtures/gemini/` say where they come from in their
SOURCE.md. Wire format: https://ai.google.dev/api/generate-content.
"""

from __future__ import annotations

import json
import random
import re
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import orjson
import pytest

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    MalformedResponseError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from byok.providers import get_adapter
from byok.providers.gemini import GeminiAdapter, seconds_until_pacific_midnight
from byok.providers.types import ChatRequest, Message, RateLimitInfo, StreamEvent, Tool, ToolCall
from byok.tests.providers.replay import corpus_case, replay_json, replay_stream, split_at

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "gemini"
CANARY = "AIzaSyCanary7f3c9e1d2b4a6c8e0f1a3b5c7d9"
HI = (Message(role="user", content="hi"),)
CITY_SCHEMA = {"type": "object", "properties": {"city": {"type": "string"}}, "additionalProperties": False}
STREAM_CASES = [
    "gemini_stream_basic_short",
    "gemini_stream_thinking_summary",
    "gemini_stream_thinking_function_call",
    "gemini_stream_cjk_multichunk",
    "gemini_stream_prompt_blocked",
]
JSON_CASES = ["gemini_json_basic", "gemini_json_parallel_function_calls"]
ERROR_CASES = [
    "gemini_error_429_retryinfo",
    "gemini_error_api_key_invalid",
    "gemini_error_model_not_found_404",
    "gemini_error_quota_exceeded_429",
    "gemini_error_service_disabled_403",
]
CORPUS_CLASSES = {"auth": AuthError, "rate_limit": RateLimitError, "not_found": NotFoundError}
ERRORS = {case["case"]: case for case in json.loads((FIXTURES / "errors.json").read_text())}
ERROR_CLASSES = {
    cls.__name__: cls for cls in (AuthError, BadRequestError, KeyQuotaError, NotFoundError, RateLimitError, ServerError)
}
# Gemini sends no tool call ids; byok makes one per call, unique to the response.
SYNTHETIC_ID = re.compile(r"^call_[0-9a-f]{12}_(\d+)$")


@pytest.fixture
def adapter() -> GeminiAdapter:
    return GeminiAdapter()


def request(**kwargs: Any) -> ChatRequest:
    kwargs.setdefault("model", "gemini-2.5-flash")
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
    out["calls"] = [out["calls"][i] for i in sorted(out["calls"])]
    return out


def assert_calls(calls: list[dict[str, Any]], expected: list[dict[str, Any]]) -> None:
    assert len(calls) == len(expected)
    prefixes = set()
    for index, (call, want) in enumerate(zip(calls, expected)):
        assert want["id"] is None  # what Gemini sent; the id below is byok's
        match = SYNTHETIC_ID.match(call["id"])
        assert match and int(match.group(1)) == index == want["index"]
        prefixes.add(call["id"].rsplit("_", 1)[0])
        assert call["name"] == want["name"]
        assert json.loads(call["raw"]) == want["arguments"]
    assert len(prefixes) <= 1


def assert_usage(usage, expected: dict[str, Any] | None) -> None:
    if expected is None:
        assert usage is None
        return
    assert (usage.input_tokens, usage.output_tokens, usage.total_tokens) == (
        expected["input_tokens"],
        expected["output_tokens"],
        expected["total_tokens"],
    )
    assert usage.reasoning_tokens == expected.get("reasoning_tokens")


def finish_of(expected: dict[str, Any]) -> list[tuple[str, str]]:
    if expected.get("prompt_block_reason"):
        return [("content_filter", expected["prompt_block_reason"])]
    raw = expected["finish_reason"]
    return [("tool_calls" if expected["tool_calls"] else {"STOP": "stop"}[raw], raw)]


# Corpus replays.


@pytest.mark.parametrize("mode", ["whole", "bytes", "awkward", "random"])
@pytest.mark.parametrize("case", STREAM_CASES)
async def test_it_reads_every_gemini_corpus_stream_as_its_sidecar_expects(adapter, case, mode):
    sidecar, body = corpus_case(case)
    expected = sidecar["expected"]
    _, events = await replay_stream(adapter, request(stream=True), body, pieces=piece_modes(body)[mode])
    got = collect(events)
    assert got["text"] == (expected["text"] or "")
    assert got["reasoning"] == expected["reasoning"]
    assert_calls(got["calls"], expected["tool_calls"])
    assert got["finish"] == finish_of(expected)
    assert_usage(got["usage"], expected["usage"])


@pytest.mark.parametrize("case", STREAM_CASES)
def test_it_marks_the_stream_finished_once_gemini_said_why_it_stopped(adapter, case):
    _, body = corpus_case(case)
    parser = adapter.stream_parser()
    assert not parser.finished
    parser.feed(body)
    parser.close()  # gemini_stream_prompt_blocked ends without the blank line that dispatches its event
    assert parser.finished


def test_it_keeps_reading_after_a_finish_reason_on_every_chunk(adapter):
    """gemini_stream_cjk_multichunk: older models repeat STOP on each chunk; stopping early loses text."""
    sidecar, body = corpus_case("gemini_stream_cjk_multichunk")
    events, _ = drive(adapter.stream_parser(), piece_modes(body)["bytes"])
    assert collect(events)["text"] == sidecar["expected"]["text"]
    assert [e.kind for e in events].count("finish") == 1


@pytest.mark.parametrize("mode", ["whole", "bytes", "awkward", "random"])
def test_it_raises_the_error_gemini_appends_mid_stream_after_the_text_before_it(adapter, mode):
    """gemini_stream_error_mid_stream: a bare JSON error object after two data events, under HTTP 200."""
    sidecar, body = corpus_case("gemini_stream_error_mid_stream")
    want = sidecar["expected"]["error"]
    events, error = drive(adapter.stream_parser(), piece_modes(body)[mode])
    assert collect(events)["text"] == sidecar["expected"]["text"]
    # The corpus leaves CANCELLED's retry policy to the gateway: byok treats it as a transient
    # server fault (Google ended the operation; our own cancellations never read a body).
    assert type(error) is ServerError and error.retryable
    assert (error.in_stream, error.status, error.provider_code, error.message) == (
        True,
        want["provider_error_code"],
        want["provider_error_status"],
        want["message"],
    )


async def test_it_raises_the_mid_stream_error_through_httpx(adapter):
    _, body = corpus_case("gemini_stream_error_mid_stream")
    with pytest.raises(ServerError) as caught:
        await replay_stream(adapter, request(stream=True), body)
    assert caught.value.in_stream


@pytest.mark.parametrize("case", JSON_CASES)
async def test_it_reads_every_gemini_corpus_answer_as_its_sidecar_expects(adapter, case):
    sidecar, body = corpus_case(case)
    expected = sidecar["expected"]
    _, answer = await replay_json(adapter, request(), body)
    assert (answer.text or "") == expected["text"]
    assert answer.reasoning == expected["reasoning"]
    calls = [{"id": c.id, "name": c.name, "raw": c.arguments} for c in answer.tool_calls]
    assert_calls(calls, expected["tool_calls"])
    assert [(answer.finish_reason, answer.raw_finish_reason)] == finish_of(expected)
    assert_usage(answer.usage, expected["usage"])
    assert answer.provider == "gemini"


def test_it_keeps_the_argument_order_gemini_sent(adapter):
    _, body = corpus_case("gemini_json_parallel_function_calls")
    assert [c.arguments for c in adapter.parse_response(body).tool_calls] == [
        '{"y":1,"x":2}',
        '{"y":3,"x":4}',
        '{"y":5,"x":6}',
    ]


def test_it_gives_each_answer_its_own_tool_call_ids(adapter):
    _, body = corpus_case("gemini_json_parallel_function_calls")
    first, second = adapter.parse_response(body), adapter.parse_response(body)
    assert not {c.id for c in first.tool_calls} & {c.id for c in second.tool_calls}
    assert all(len(c.id) <= 40 for c in first.tool_calls)  # OpenAI's limit on tool call ids


@pytest.mark.parametrize("case", ERROR_CASES)
@pytest.mark.parametrize("streaming", [False, True])
async def test_it_classifies_every_gemini_corpus_error_as_its_sidecar_expects(adapter, case, streaming):
    sidecar, body = corpus_case(case)
    want = sidecar["expected"]["error"]
    replay = replay_stream if streaming else replay_json
    with pytest.raises(ProviderError) as caught:
        await replay(adapter, request(stream=streaming), body, status=sidecar["http_status"])
    error = caught.value
    assert type(error) is CORPUS_CLASSES[want["class"]]
    assert (error.error_class, error.retryable) == (want["class"], want["retryable"])
    assert error.retry_after == want["retry_after_seconds"]
    assert (error.provider, error.status) == ("gemini", sidecar["http_status"])
    assert error.provider_code == want["provider_error_status"]
    if "message" in want:
        assert error.message == want["message"]
    assert "key1234" not in error.message  # the test key DebugInfo echoes stays out


def test_it_maps_api_key_invalid_to_auth_error(adapter):
    """gemini_error_api_key_invalid: a bad key is HTTP 400, told apart by ErrorInfo.reason."""
    _, body = corpus_case("gemini_error_api_key_invalid")
    assert type(adapter.classify_error(400, {}, body)) is AuthError


def test_it_takes_the_retry_delay_from_retry_info(adapter):
    """gemini_error_429_retryinfo: retryDelay "34.4s" in the body, no header."""
    _, body = corpus_case("gemini_error_429_retryinfo")
    assert adapter.classify_error(429, {"Retry-After": "3"}, body).retry_after == 34.4


# More streams and answers.


def test_it_raises_an_error_sent_as_a_data_event_after_the_text_before_it(adapter):
    events, error = drive(adapter.stream_parser(), piece_modes(fixture("stream_error_in_data.sse"))["bytes"])
    assert collect(events)["text"] == "Once upon a time"
    assert type(error) is ServerError and error.in_stream and error.status == 503


@pytest.mark.parametrize(
    ("name", "text", "finish", "usage"),
    [
        ("stream_max_tokens.sse", "The quick brown fox jumps over", ("length", "MAX_TOKENS"), (9, 8, 17, 4)),
        ("stream_safety.sse", "Here is how", ("content_filter", "SAFETY"), (12, 3, 15, None)),
        ("stream_malformed_function_call.sse", "", ("error", "MALFORMED_FUNCTION_CALL"), (40, 0, 40, None)),
    ],
)
def test_it_maps_the_finish_reason_of_a_stream(adapter, name, text, finish, usage):
    events, error = drive(adapter.stream_parser(), piece_modes(fixture(name))["random"])
    got = collect(events)
    assert error is None
    assert (got["text"], got["finish"]) == (text, [finish])
    u = got["usage"]
    assert (u.input_tokens, u.output_tokens, u.total_tokens, u.cached_input_tokens) == usage


@pytest.mark.parametrize("mode", ["whole", "bytes", "awkward"])
def test_it_streams_parallel_function_calls_with_unicode_arguments(adapter, mode):
    events, _ = drive(adapter.stream_parser(), piece_modes(fixture("stream_parallel_calls.sse"))[mode])
    got = collect(events)
    assert got["text"] == "Checking both cities."
    assert [(c["name"], json.loads(c["raw"])) for c in got["calls"]] == [
        ("get_weather", {"city": "Zürich"}),
        ("get_weather", {"city": "東京"}),
    ]
    assert got["finish"] == [("tool_calls", "STOP")]


@pytest.mark.parametrize(
    ("raw", "finish"),
    [
        ("STOP", "stop"),
        ("MAX_TOKENS", "length"),
        ("SAFETY", "content_filter"),
        ("RECITATION", "content_filter"),
        ("BLOCKLIST", "content_filter"),
        ("PROHIBITED_CONTENT", "content_filter"),
        ("SPII", "content_filter"),
        ("IMAGE_SAFETY", "content_filter"),
        ("MALFORMED_FUNCTION_CALL", "error"),
        ("OTHER", "error"),
        ("A_REASON_ADDED_LATER", "stop"),
    ],
)
def test_it_maps_each_finish_reason(adapter, raw, finish):
    body = orjson.dumps({"candidates": [{"content": {"parts": [{"text": "x"}], "role": "model"}, "finishReason": raw}]})
    answer = adapter.parse_response(body)
    assert (answer.finish_reason, answer.raw_finish_reason) == (finish, raw)


def test_it_reports_a_blocked_prompt_as_content_filter_in_a_whole_answer(adapter):
    body = orjson.dumps(
        {
            "promptFeedback": {"blockReason": "PROHIBITED_CONTENT"},
            "usageMetadata": {"promptTokenCount": 8, "totalTokenCount": 8},
        }
    )
    answer = adapter.parse_response(body)
    assert answer.text is None
    assert (answer.finish_reason, answer.raw_finish_reason) == ("content_filter", "PROHIBITED_CONTENT")
    assert answer.usage.input_tokens == 8


def test_it_reads_thought_parts_and_thought_tokens_in_a_whole_answer(adapter):
    parts = [{"text": "hmm", "thought": True}, {"text": "42"}]
    body = orjson.dumps(
        {
            "candidates": [{"content": {"parts": parts}, "finishReason": "STOP"}],
            "usageMetadata": {
                "promptTokenCount": 3,
                "candidatesTokenCount": 1,
                "thoughtsTokenCount": 5,
                "cachedContentTokenCount": 2,
                "totalTokenCount": 9,
            },
            "modelVersion": "gemini-2.5-pro",
            "responseId": "r-1",
        }
    )
    answer = adapter.parse_response(body)
    assert (answer.reasoning, answer.text, answer.model, answer.response_id) == ("hmm", "42", "gemini-2.5-pro", "r-1")
    assert (answer.usage.reasoning_tokens, answer.usage.cached_input_tokens, answer.usage.total_tokens) == (5, 2, 9)


def test_it_raises_malformed_response_error_for_unreadable_data(adapter):
    with pytest.raises(MalformedResponseError):
        adapter.parse_response(b"<html>502</html>")
    with pytest.raises(MalformedResponseError) as caught:
        adapter.stream_parser().feed(b'data: {"candidates": [\r\n\r\n')
    assert caught.value.in_stream
    parser = adapter.stream_parser()
    parser.feed(b'data: {"candidates": []}\n\n{\n  "error": {\n')
    with pytest.raises(MalformedResponseError):
        parser.close()


def test_it_ignores_stray_lines_that_are_not_json(adapter):
    chunk = b'data: {"candidates": [{"content": {"parts": [{"text": "ok"}]}, "finishReason": "STOP"}]}\n\n'
    events, error = drive(adapter.stream_parser(), [chunk + b"not json\n"])
    assert error is None and collect(events)["text"] == "ok"


def test_it_classifies_a_body_that_is_not_json_by_status(adapter):
    error = adapter.classify_error(502, {"retry-after": "4"}, b"<html>502 Bad Gateway</html>")
    assert (type(error), error.retry_after, error.message) == (ServerError, 4.0, "Gemini answered HTTP 502.")


def test_it_raises_an_error_returned_with_status_200_in_a_whole_answer(adapter):
    body = orjson.dumps({"error": {"code": 429, "message": "slow down", "status": "RESOURCE_EXHAUSTED"}})
    with pytest.raises(RateLimitError) as caught:
        adapter.parse_response(body)
    assert not caught.value.in_stream


# The outgoing request.


@pytest.mark.parametrize(
    ("stream", "url"),
    [
        (False, "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:generateContent"),
        (
            True,
            "https://generativelanguage.googleapis.com/v1beta/models/gemini-2.5-flash:streamGenerateContent?alt=sse",
        ),
    ],
)
async def test_it_sends_the_key_only_in_the_header(adapter, stream, url):
    _, body = corpus_case("gemini_stream_basic_short" if stream else "gemini_json_basic")
    replay = replay_stream if stream else replay_json
    sent, _ = await replay(adapter, request(stream=stream), body, api_key=CANARY)
    assert str(sent.url) == url
    assert sent.headers["x-goog-api-key"] == CANARY
    assert sent.headers["content-type"] == "application/json"
    assert CANARY not in str(sent.url) and "key=" not in urlsplit(str(sent.url)).query
    assert "authorization" not in sent.headers and CANARY not in sent.content.decode()


def test_it_accepts_a_model_named_with_its_models_prefix_and_a_configured_base(adapter):
    req = request(model="models/gemini-2.0-flash")
    up = adapter.build_request(req, api_key="k", base_url="https://gw.example/v1beta/")
    assert up.url == "https://gw.example/v1beta/models/gemini-2.0-flash:generateContent"


async def test_it_translates_a_multi_turn_tool_conversation(adapter):
    req = request(
        stream=True,
        messages=(
            Message(role="system", content="Be brief."),
            Message(role="user", content="Weather in Paris and Tokyo?"),
            Message(role="system", content="Use metric units."),
            Message(
                role="assistant",
                content="Checking.",
                tool_calls=(
                    ToolCall(id="call_a", name="get_weather", arguments='{"city": "Paris"}'),
                    ToolCall(id="call_b", name="get_weather", arguments='{"city": "東京"}'),
                ),
            ),
            Message(role="tool", tool_call_id="call_a", content='{"temp_c": 21}'),
            Message(role="tool", tool_call_id="call_b", name="get_weather", content="cloudy"),
            Message(role="assistant", content="Paris 21°C, Tokyo cloudy."),
            Message(role="user", content="Thanks."),
        ),
        tools=(Tool(name="get_weather", description="Weather now", parameters=CITY_SCHEMA),),
        tool_choice="get_weather",
        temperature=0.3,
        top_p=0.8,
        max_tokens=256,
        stop=("END", "STOP"),
    )
    _, body = corpus_case("gemini_stream_basic_short")
    sent, _ = await replay_stream(adapter, req, body)
    assert json.loads(sent.content) == {
        "contents": [
            {"role": "user", "parts": [{"text": "Weather in Paris and Tokyo?"}]},
            {
                "role": "model",
                "parts": [
                    {"text": "Checking."},
                    {"functionCall": {"name": "get_weather", "args": {"city": "Paris"}}},
                    {"functionCall": {"name": "get_weather", "args": {"city": "東京"}}},
                ],
            },
            {
                "role": "user",
                "parts": [  # both results in one turn, names found by call id or given
                    {"functionResponse": {"name": "get_weather", "response": {"temp_c": 21}}},
                    {"functionResponse": {"name": "get_weather", "response": {"result": "cloudy"}}},
                ],
            },
            {"role": "model", "parts": [{"text": "Paris 21°C, Tokyo cloudy."}]},
            {"role": "user", "parts": [{"text": "Thanks."}]},
        ],
        "systemInstruction": {"parts": [{"text": "Be brief.\n\nUse metric units."}]},
        "tools": [
            {
                "functionDeclarations": [
                    {
                        "name": "get_weather",
                        "description": "Weather now",
                        "parametersJsonSchema": CITY_SCHEMA,
                    }
                ]
            }
        ],
        "toolConfig": {"functionCallingConfig": {"mode": "ANY", "allowedFunctionNames": ["get_weather"]}},
        "generationConfig": {"temperature": 0.3, "topP": 0.8, "maxOutputTokens": 256, "stopSequences": ["END", "STOP"]},
    }


def test_it_leaves_out_what_is_unset(adapter):
    body = adapter.build_request(request(), api_key="k").json
    assert body == {"contents": [{"role": "user", "parts": [{"text": "hi"}]}]}
    assert adapter.requires_max_tokens is False


@pytest.mark.parametrize(("choice", "mode"), [("auto", "AUTO"), ("none", "NONE"), ("required", "ANY")])
def test_it_maps_tool_choice(adapter, choice, mode):
    req = request(tools=(Tool(name="f"),), tool_choice=choice)
    assert adapter.build_request(req, api_key="k").json["toolConfig"] == {"functionCallingConfig": {"mode": mode}}


def test_it_refuses_a_tool_result_whose_function_it_cannot_name(adapter):
    req = request(messages=(*HI, Message(role="tool", tool_call_id="unknown", content="x")))
    with pytest.raises(BadRequestError):
        adapter.build_request(req, api_key="k")


def test_it_refuses_history_whose_tool_arguments_are_not_a_json_object(adapter):
    req = request(messages=(*HI, Message(role="assistant", tool_calls=(ToolCall(id="t", name="f", arguments="[1]"),))))
    with pytest.raises(BadRequestError):
        adapter.build_request(req, api_key="k")


# Errors before the stream.


@pytest.mark.parametrize("case", list(ERRORS))
@pytest.mark.parametrize("streaming", [False, True])
async def test_it_classifies_each_documented_error(adapter, case, streaming):
    spec = ERRORS[case]
    replay = replay_stream if streaming else replay_json
    with pytest.raises(ProviderError) as caught:
        body = json.dumps(spec["body"]).encode()
        await replay(adapter, request(stream=streaming), body, status=spec["status"], headers=spec["headers"])
    error, want = caught.value, spec["expected"]
    assert type(error) is ERROR_CLASSES[want["class"]]
    assert (error.retryable, error.status) == (want["retryable"], spec["status"])
    assert (error.provider, error.in_stream) == ("gemini", False)
    if want["retry_after"] == "pacific_midnight":
        assert error.retry_after == pytest.approx(seconds_until_pacific_midnight(), abs=5)
    else:
        assert error.retry_after == want["retry_after"]
    if "message" in want:
        assert error.message == want["message"]
        assert error.status_code == spec["status"]  # a client error is passed on as the provider said


def test_it_parks_a_key_whose_account_needs_billing(adapter):
    body = orjson.dumps(
        {"error": {"code": 402, "message": "Billing account required.", "status": "FAILED_PRECONDITION"}}
    )
    error = adapter.classify_error(402, {}, body)
    assert type(error) is KeyQuotaError and error.retry_after is None


def test_it_parks_a_key_whose_daily_quota_is_spent_until_midnight_pacific(adapter):
    body = json.dumps(ERRORS["gemini_error_429_per_day_quota"]["body"]).encode()
    error = adapter.classify_error(429, {}, body)
    assert type(error) is KeyQuotaError and not error.retryable
    assert 0 < error.retry_after <= 25 * 3600


@pytest.mark.parametrize(
    ("now", "seconds"),
    [
        (datetime(2025, 7, 1, 6, 59, tzinfo=UTC), 60),  # 23:59 PDT
        (datetime(2025, 1, 15, 8, 0, tzinfo=UTC), 24 * 3600),  # 00:00 PST
        (datetime(2025, 3, 9, 8, 0, tzinfo=UTC), 23 * 3600),  # spring forward
        (datetime(2025, 11, 2, 7, 0, tzinfo=UTC), 25 * 3600),  # fall back
    ],
)
def test_it_counts_to_the_next_midnight_in_pacific_time(now, seconds):
    assert seconds_until_pacific_midnight(now) == seconds


def test_it_reports_no_rate_limit_headers(adapter):
    assert adapter.parse_rate_limits({"x-ratelimit-remaining-requests": "5"}) == RateLimitInfo()


# Secrets.


def test_it_never_puts_the_key_in_an_error_message_or_repr(adapter):
    up = adapter.build_request(request(stream=True), api_key=CANARY)
    assert CANARY not in repr(up) and CANARY not in up.url
    debug = {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": CANARY}
    echoed = orjson.dumps(
        {
            "error": {
                "code": 400,
                "message": f"API key not valid: {CANARY}",
                "status": "INVALID_ARGUMENT",
                "details": [debug],
            }
        }
    )
    errors = [adapter.classify_error(status, {"x-goog-api-key": CANARY}, echoed) for status in (400, 403, 429, 500)]
    with pytest.raises(ProviderError) as caught:
        adapter.stream_parser().feed(b"data: " + echoed + b"\r\n\r\n")
    for error in [*errors, caught.value]:
        assert CANARY not in str(error) and CANARY not in repr(error) and CANARY not in json.dumps(error.to_dict())


def test_it_is_the_registered_gemini_adapter():
    assert isinstance(get_adapter("gemini"), GeminiAdapter)
    assert get_adapter("gemini").kind == "gemini"
