"""`render_anthropic` on event sequences recorded from real providers, judged by the official anthropic SDK.

Each recorded body (shared corpus, `fixtures/anthropic`) goes through its adapter's stream parser
(the events the handler passes on), then through `MessageStreamWriter`; the bytes are decoded with
the SDK's SSE decoder and summed with the SDK's own `accumulate_event` (what `messages.stream()`
does). The result must be a valid stream (event order, balanced blocks) and must say what the
whole-answer renderer says for the same events, so streaming and non-streaming clients agree.
"""

from __future__ import annotations

import json

import pytest
from anthropic._streaming import SSEDecoder
from anthropic.lib.streaming._messages import accumulate_event
from anthropic.types import Message as SdkMessage
from anthropic.types.shared.error_response import ErrorResponse

from byok.api import render_anthropic as render
from byok.exceptions import (
    AllProvidersFailedError,
    BudgetExceededError,
    ClientError,
    NoUsableProviderError,
    OverloadedError,
    RateLimitedError,
    ServerError,
    UpstreamTimeout,
)
from byok.providers import get_adapter
from byok.providers.collect import collect
from byok.providers.types import (
    ChatResponse,
    StreamDone,
    StreamEvent,
    StreamFailed,
    StreamStarted,
    Thinking,
    ToolCall,
    Usage,
)
from byok.tests.providers.replay import CORPUS, corpus_case

CASES = {  # recorded body -> adapter kind
    "anthropic_stream_sdk_basic": "anthropic",
    "anthropic_stream_sdk_tool_use": "anthropic",
    "anthropic/stream_thinking.sse": "anthropic",
    "anthropic/stream_parallel_tools_unicode.sse": "anthropic",
    "deepseek_stream_reasoner_tool_call": "deepseek",
    "gemini_stream_thinking_function_call": "gemini",
    "openai_stream_parallel_tool_calls": "openai",
    "openai_stream_text_usage_chunk": "openai",
    "openai_stream_finish_length": "openai",
}
STARTED = StreamStarted(
    provider="p", model="m", key_hint="sk-…abcd", attempts=[{"provider": "p"}], request_id="req1", failover_ms=0.0
)


def body_of(case: str) -> bytes:
    if case.startswith("anthropic/"):
        return (CORPUS.parent / case).read_bytes()
    return corpus_case(case)[1]


def recorded(case: str) -> list[StreamEvent]:
    parser = get_adapter(CASES[case]).stream_parser()
    body = body_of(case)
    return [*parser.feed(body), *parser.close()]


def done_for(events: list[StreamEvent]) -> StreamDone:
    usage = next((e.usage for e in reversed(events) if e.kind == "usage" and e.usage), None) or Usage()
    finish = next((e for e in reversed(events) if e.kind == "finish"), None)
    return StreamDone(
        finish_reason=finish.finish_reason if finish and finish.finish_reason else "stop",
        raw_finish_reason=finish.raw_finish_reason if finish else None,
        usage=usage,
        provider="p",
        model="m",
        key_hint="sk-…abcd",
        attempts=[],
        latency_ms=1.0,
        failover_ms=0.0,
        ttft_ms=1.0,
        request_id="req1",
    )


def stream_bytes(events: list[StreamEvent], *, input_tokens: int = 7) -> bytes:
    writer = render.MessageStreamWriter("msg_req1", "p/m", input_tokens=input_tokens, request_id="req1")
    sequence: list[StreamStarted | StreamEvent] = [STARTED, *events]
    out = b"".join(writer.event(ev) or b"" for ev in sequence)
    return out + writer.done(done_for(events))


def sse(raw: bytes) -> list[tuple[str | None, dict]]:
    return [(e.event, json.loads(e.data)) for e in SSEDecoder().iter_bytes(iter([raw]))]


def accumulated(raw: bytes, *, docs_example: bool = False) -> SdkMessage:
    """What the anthropic SDK's `messages.stream()` makes of these bytes (its `get_final_message()`).

    `docs_example`: a documentation example that leaves usage out (the SDK needs it): put zeros in.
    """
    snapshot = None
    bufs: dict[int, bytes] = {}
    for name, data in sse(raw):
        assert name == data["type"]  # the SSE event name is the payload's type, as Anthropic sends it
        if name == "ping":
            continue
        if docs_example and name == "message_start":
            data["message"].setdefault("usage", {"input_tokens": 0, "output_tokens": 0})
        if docs_example and name == "message_delta":
            data.setdefault("usage", {"output_tokens": 0})
        snapshot = accumulate_event(event=data, current_snapshot=snapshot, json_bufs=bufs)  # type: ignore[arg-type]
    assert snapshot is not None
    return SdkMessage.model_validate(snapshot.to_dict())


def blocks(message: SdkMessage) -> list[dict]:
    return [b.to_dict() for b in message.content]


@pytest.mark.parametrize("case", sorted(CASES))
def test_a_recorded_stream_is_a_valid_anthropic_stream(case):
    events = [(name, data) for name, data in sse(stream_bytes(recorded(case)))]
    names = [name for name, _ in events]
    assert names[0] == "message_start" and names[1] == "ping"
    assert names[-2:] == ["message_delta", "message_stop"]
    open_index = None
    next_index = 0
    for name, data in events:
        if name == "content_block_start":
            assert open_index is None, "a block starts before the previous one stopped"
            assert data["index"] == next_index
            open_index, next_index = data["index"], next_index + 1
        elif name == "content_block_delta":
            assert data["index"] == open_index or data["delta"]["type"] == "input_json_delta"
        elif name == "content_block_stop":
            assert data["index"] == open_index
            open_index = None
    assert open_index is None


@pytest.mark.parametrize("case", sorted(CASES))
def test_streaming_and_whole_answers_say_the_same(case):
    events = recorded(case)
    streamed = accumulated(stream_bytes(events))
    whole = SdkMessage.model_validate(
        render.render_message(collect(events, provider="p"), message_id="msg_req1", model="p/m")
    )
    assert blocks(streamed) == blocks(whole)
    assert streamed.stop_reason == whole.stop_reason
    assert streamed.usage.output_tokens == whole.usage.output_tokens
    if any(e.kind == "usage" for e in events):  # else the stream tells byok's estimate, the whole answer 0
        assert streamed.usage.input_tokens == whole.usage.input_tokens


@pytest.mark.parametrize(
    "case",
    ["anthropic_stream_sdk_tool_use", "anthropic/stream_thinking.sse", "anthropic/stream_parallel_tools_unicode.sse"],
)
def test_an_anthropic_upstream_comes_back_as_it_was_sent(case):
    """Claude behind byok: the SDK sees the blocks Anthropic sent (thinking, text, tool input)."""
    original = accumulated(body_of(case), docs_example=True)
    relayed = accumulated(stream_bytes(recorded(case)))
    assert [b.type for b in relayed.content] == [b.type for b in original.content]
    for mine, theirs in zip(relayed.content, original.content):
        if theirs.type == "text":
            assert mine.text == theirs.text
        elif theirs.type == "tool_use":
            assert (mine.id, mine.name, mine.input) == (theirs.id, theirs.name, theirs.input)
        elif theirs.type == "thinking":
            assert mine.thinking == theirs.thinking
    assert relayed.stop_reason == original.stop_reason
    if original.usage.input_tokens:  # the docs example counts nothing; the others' counts come back as sent
        for field in ("input_tokens", "output_tokens", "cache_read_input_tokens", "cache_creation_input_tokens"):
            assert (getattr(relayed.usage, field) or 0) == (getattr(original.usage, field) or 0), field


def test_thinking_signatures_and_redacted_thinking_are_streamed_for_the_next_turn():
    events = [
        StreamEvent(kind="reasoning_delta", text="Let me "),
        StreamEvent(kind="reasoning_delta", text="think."),
        StreamEvent(kind="thinking_signature", signature="EqQBsig=="),
        StreamEvent(kind="redacted_thinking", signature="opaque-data"),
        StreamEvent(kind="text_delta", text="It is sunny."),
        StreamEvent(kind="tool_call_start", index=0, tool_call_id="toolu_1", name="get_weather"),
        StreamEvent(kind="tool_call_delta", index=0, arguments='{"city":'),
        StreamEvent(kind="tool_call_delta", index=0, arguments=' "Paris"}'),
        StreamEvent(kind="finish", finish_reason="tool_calls", raw_finish_reason="tool_use"),
    ]
    message = accumulated(stream_bytes(events))
    assert blocks(message) == [
        {"type": "thinking", "thinking": "Let me think.", "signature": "EqQBsig=="},
        {"type": "redacted_thinking", "data": "opaque-data"},
        {"type": "text", "text": "It is sunny."},
        {"type": "tool_use", "id": "toolu_1", "name": "get_weather", "input": {"city": "Paris"}},
    ]
    assert message.stop_reason == "tool_use"
    whole = render.render_message(collect(events, provider="p"), message_id="msg_req1", model="p/m")
    assert whole["content"] == blocks(message)


def test_message_start_carries_the_upstream_input_count_or_byoks_estimate():
    counted = [
        StreamEvent(kind="usage", usage=Usage(input_tokens=40, output_tokens=1)),
        StreamEvent(kind="text_delta", text="hi"),
    ]
    start = sse(stream_bytes(counted, input_tokens=7))[0][1]
    assert start["message"]["usage"]["input_tokens"] == 40
    start = sse(stream_bytes([StreamEvent(kind="text_delta", text="hi")], input_tokens=7))[0][1]
    assert start["message"]["usage"] == {"input_tokens": 7, "output_tokens": 0}


def test_usage_takes_cache_reads_and_writes_out_of_input_tokens():
    usage = Usage(input_tokens=1000, output_tokens=5, cached_input_tokens=600, cache_creation_input_tokens=300)
    assert render.usage_dict(usage) == {
        "input_tokens": 100,
        "output_tokens": 5,
        "cache_creation_input_tokens": 300,
        "cache_read_input_tokens": 600,
    }
    events = [StreamEvent(kind="text_delta", text="hi"), StreamEvent(kind="usage", usage=usage)]
    final = accumulated(stream_bytes(events))
    assert (final.usage.input_tokens, final.usage.cache_read_input_tokens) == (100, 600)
    assert final.usage.cache_creation_input_tokens == 300


def test_an_empty_answer_is_still_a_whole_stream():
    message = accumulated(stream_bytes([]))
    assert message.content == [] and message.stop_reason == "end_turn"


@pytest.mark.parametrize(
    ("reason", "raw", "tools", "expected"),
    [
        ("stop", None, False, "end_turn"),
        ("stop", None, True, "tool_use"),
        ("stop", "stop_sequence", False, "stop_sequence"),
        ("length", "MAX_TOKENS", False, "max_tokens"),
        ("tool_calls", "tool_calls", True, "tool_use"),
        ("content_filter", "SAFETY", False, "refusal"),
        ("error", "insufficient_system_resource", False, "max_tokens"),
        ("stop", "pause_turn", False, "pause_turn"),
    ],
)
def test_stop_reasons(reason, raw, tools, expected):
    assert render.stop_reason(reason, raw, tool_calls=tools) == expected


def test_the_stop_sequence_that_ended_an_anthropic_answer_is_told_streaming_and_whole():
    events = [
        StreamEvent(kind="text_delta", text="1, 2"),
        StreamEvent(kind="finish", finish_reason="stop", raw_finish_reason="stop_sequence", stop_sequence=", 3"),
    ]
    raw = stream_bytes(events)
    [delta] = [data["delta"] for name, data in sse(raw) if name == "message_delta"]
    assert delta == {"stop_reason": "stop_sequence", "stop_sequence": ", 3"}
    streamed = accumulated(raw)
    whole = SdkMessage.model_validate(
        render.render_message(collect(events, provider="p"), message_id="msg_req1", model="p/m")
    )
    for message in (streamed, whole):
        assert (message.stop_reason, message.stop_sequence) == ("stop_sequence", ", 3")


def test_a_provider_that_does_not_name_the_stop_sequence_ends_its_turn():
    events = [
        StreamEvent(kind="text_delta", text="1, 2"),
        StreamEvent(kind="finish", finish_reason="stop", raw_finish_reason="stop"),
    ]
    streamed = accumulated(stream_bytes(events))
    whole = render.render_message(collect(events, provider="p"), message_id="msg_req1", model="p/m")
    assert (streamed.stop_reason, streamed.stop_sequence) == ("end_turn", None)
    assert (whole["stop_reason"], whole["stop_sequence"]) == ("end_turn", None)


def test_a_whole_answer_is_an_sdk_message():
    response = ChatResponse(
        text="Paris.",
        reasoning="hm",
        thinking=(Thinking(text="hm", signature="sig"),),
        tool_calls=(ToolCall(id=None, name="f", arguments="not json"),),
        finish_reason="tool_calls",
        usage=Usage(input_tokens=3, output_tokens=2),
    )
    body = render.render_message(response, message_id="msg_abc123456789xyz", model="p/m")
    message = SdkMessage.model_validate(body)
    assert message.id == "msg_abc123456789xyz" and message.model == "p/m" and message.role == "assistant"
    assert [b.type for b in message.content] == ["thinking", "text", "tool_use"]
    assert body["content"][2]["id"].startswith("toolu_") and body["content"][2]["input"] == {}
    assert message.stop_reason == "tool_use" and message.usage.input_tokens == 3


def test_reasoning_without_blocks_becomes_one_unsigned_thinking_block():
    body = render.render_message(ChatResponse(text="x", reasoning="because"), message_id="msg_1", model="m")
    assert body["content"][0] == {"type": "thinking", "thinking": "because", "signature": ""}


# -- errors ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("exc", "status", "kind", "retry_after"),
    [
        (ClientError("bad", status=400), 400, "invalid_request_error", None),
        (ClientError("no model", status=404), 404, "not_found_error", None),
        (RateLimitedError(retry_after=2.5), 429, "rate_limit_error", "3"),
        (BudgetExceededError(retry_after=7200), 429, "rate_limit_error", "7200"),
        (AllProvidersFailedError(attempts=[]), 502, "api_error", None),
        (AllProvidersFailedError(attempts=[], timeout=True), 504, "timeout_error", None),
        (NoUsableProviderError(), 503, "overloaded_error", None),
        (OverloadedError("busy"), 529, "overloaded_error", None),
        (ServerError("boom"), 502, "api_error", None),
        (UpstreamTimeout(), 504, "timeout_error", None),
    ],
)
def test_errors_have_anthropics_shape_types_and_retry_headers(exc, status, kind, retry_after):
    got_status, body, headers = render.error_response(exc, "req9")
    assert got_status == status
    parsed = ErrorResponse.model_validate(body)
    assert parsed.type == "error" and parsed.error.type == kind and parsed.request_id == "req9"
    assert headers.get("Retry-After") == retry_after
    assert headers["x-should-retry"] == (
        "true" if exc.retryable and (retry_after is None or int(retry_after) <= 60) else "false"
    )


def test_a_failure_after_the_stream_started_is_an_error_event():
    writer = render.MessageStreamWriter("msg_1", "m", request_id="req1")
    head = writer.event(StreamEvent(kind="text_delta", text="Hel")) or b""
    tail = writer.failed(StreamFailed(error=OverloadedError("Overloaded"), partial=True, request_id="req1"))
    ((name, data),) = sse(tail)
    assert name == "error"
    assert ErrorResponse.model_validate(data).error.type == "overloaded_error"
    assert sse(head)[0][0] == "message_start"
    ((name, data),) = sse(writer.error(ServerError("broke")))
    assert data["error"] == {"type": "api_error", "message": "broke"}


def test_models_in_anthropics_page_shape():
    page = render.model_page([render.model_info("openai/gpt-x", "openai"), render.model_info("gpt-x", "openai")])
    assert page["first_id"] == "openai/gpt-x" and page["last_id"] == "gpt-x" and page["has_more"] is False
    assert page["data"][0]["type"] == "model" and page["data"][0]["created_at"].endswith("Z")
    assert render.model_page([]) == {"data": [], "has_more": False, "first_id": None, "last_id": None}


def test_a_keepalive_is_a_ping_after_message_start():
    writer = render.MessageStreamWriter("msg_1", "m", input_tokens=3)
    first = sse(writer.keepalive())
    assert [name for name, _ in first] == ["message_start", "ping"]
    assert writer.keepalive() == render.PING
    later = sse(writer.event(StreamEvent(kind="text_delta", text="Hi")) or b"")
    assert [name for name, _ in later] == ["content_block_start", "content_block_delta"]
