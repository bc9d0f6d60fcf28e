"""The Responses renderer on event sequences recorded from real providers, judged by the `openai` SDK.

A corpus body is replayed through its adapter's stream parser (the events the handler passes on), then
rendered by `ResponsesStream`; every SSE event is validated against the SDK's own event types (strict
pydantic validation, not the lenient construct the SDK uses at run time) and fed through the SDK's
stream accumulator (`ResponseStreamState`, what `client.responses.stream` runs), whose final response
must hold exactly the text, reasoning and calls the provider sent.
"""

from __future__ import annotations

import json

import pytest
from openai import omit
from openai._models import validate_type
from openai.lib.streaming.responses._responses import ResponseStreamState
from openai.types.responses import Response, ResponseStreamEvent

from byok.api.render_responses import render_response, status_of, usage_dict
from byok.api.render_responses_stream import ResponsesStream
from byok.exceptions import AllProvidersFailedError, RateLimitedError
from byok.providers import get_adapter
from byok.providers.types import (
    ChatResponse,
    Message,
    StreamDone,
    StreamEvent,
    StreamFailed,
    StreamStarted,
    Thinking,
    ToolCall,
    Usage,
)
from byok.schemas.responses import parse_responses
from byok.tests.providers.replay import corpus_case

CASES = {  # corpus case -> adapter kind
    "openai_stream_text_usage_chunk": "openai",
    "openai_stream_parallel_tool_calls": "openai",
    "openai_stream_refusal": "openai",
    "openai_stream_finish_length": "openai",
    "deepseek_stream_reasoner_tool_call": "deepseek",
    "anthropic_stream_sdk_basic": "anthropic",
    "anthropic_stream_sdk_tool_use": "anthropic",
    "gemini_stream_thinking_function_call": "gemini",
}
STARTED = StreamStarted(provider="p", model="m", key_hint="sk-…abcd", attempts=[], request_id="req1", failover_ms=0.0)
ECHO = {"instructions": "Be brief.", "temperature": 0.5, "metadata": {"team": "a"}, "tool_choice": "auto"}


def recorded_events(case: str) -> list[StreamStarted | StreamEvent]:
    _, body = corpus_case(case)
    parser = get_adapter(CASES[case]).stream_parser()
    return [STARTED, *parser.feed(body), *parser.close()]


def done_for(events: list) -> StreamDone:
    usage = next((e.usage for e in reversed(events) if getattr(e, "kind", "") == "usage"), None) or Usage()
    finish = next((e.finish_reason for e in reversed(events) if getattr(e, "kind", "") == "finish"), "stop")
    return StreamDone(
        finish_reason=finish,
        raw_finish_reason=None,
        usage=usage,
        provider="p",
        model="m",
        key_hint="k",
        attempts=[],
        latency_ms=1.0,
        failover_ms=0.0,
        ttft_ms=1.0,
        request_id="req1",
    )


def sse(raw: bytes) -> list[dict]:
    """Each SSE block's data, after checking its `event:` line names the same type."""
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            data = json.loads(fields["data"])
            assert fields["event"] == data["type"]
            out.append(data)
    return out


def run_sdk(events: list[dict]) -> ResponseStreamState:
    """The SDK's own accumulator over the events, each strictly validated against the SDK's types first."""
    state = ResponseStreamState(input_tools=omit, text_format=omit)
    for data in events:
        state.handle_event(validate_type(type_=ResponseStreamEvent, value=data))  # type: ignore[arg-type]
    return state


def render_all(events: list, done: StreamDone) -> bytes:
    stream = ResponsesStream("resp_req1", 1700000000, "p/m", ECHO)
    return b"".join(stream.event(e) or b"" for e in events) + stream.done(done)


@pytest.mark.parametrize("case", list(CASES))
def test_recorded_stream_renders_what_the_sdk_accumulates(case):
    events = recorded_events(case)
    done = done_for(events)
    rendered = sse(render_all(events, done))
    assert [e["sequence_number"] for e in rendered] == list(range(len(rendered)))
    assert [e["type"] for e in rendered[:2]] == ["response.created", "response.in_progress"]
    final = run_sdk(rendered)._completed_response if rendered[-1]["type"] == "response.completed" else None

    text = "".join(e.text or "" for e in events if getattr(e, "kind", "") == "text_delta")
    reasoning = "".join(e.text or "" for e in events if getattr(e, "kind", "") == "reasoning_delta")
    refusal = "".join(e.text or "" for e in events if getattr(e, "kind", "") == "refusal_delta")
    calls: dict[int, list] = {}
    for e in events:
        if getattr(e, "kind", "") == "tool_call_start":
            calls[e.index or 0] = [e.name, ""]
        elif getattr(e, "kind", "") == "tool_call_delta":
            calls[e.index or 0][1] += e.arguments or ""

    response = Response.model_validate(rendered[-1]["response"], strict=True)
    status, _ = status_of("tool_calls" if calls and done.finish_reason == "stop" else done.finish_reason)
    assert response.status == status and rendered[-1]["type"] == f"response.{status}"
    if final is not None:
        response = final  # the SDK's accumulated answer: what responses.stream().get_final_response() returns
    assert response.output_text == text
    shown = "".join(s.text for o in response.output if o.type == "reasoning" for s in o.summary)
    assert shown == reasoning
    refused = "".join(
        c.refusal for o in response.output if o.type == "message" for c in o.content if c.type == "refusal"
    )
    assert refused == refusal
    got = [[o.name, o.arguments] for o in response.output if o.type == "function_call"]
    assert got == [calls[i] for i in sorted(calls)]
    assert all(o.call_id for o in response.output if o.type == "function_call")
    assert response.usage.output_tokens == done.usage.output_tokens
    assert response.instructions == "Be brief." and response.metadata == {"team": "a"}


def test_finish_length_is_incomplete_with_its_reason():
    events = recorded_events("openai_stream_finish_length")
    rendered = sse(render_all(events, done_for(events)))
    last = rendered[-1]
    assert last["type"] == "response.incomplete"
    assert last["response"]["incomplete_details"] == {"reason": "max_output_tokens"}
    assert last["response"]["output"][-1]["status"] == "incomplete"


def test_items_close_in_order_and_content_events_name_their_item():
    events = recorded_events("deepseek_stream_reasoner_tool_call")
    rendered = sse(render_all(events, done_for(events)))
    open_items: set[int] = set()
    for e in rendered:
        if e["type"] == "response.output_item.added":
            open_items.add(e["output_index"])
        elif e["type"] == "response.output_item.done":
            open_items.remove(e["output_index"])
        elif "output_index" in e:
            assert e["output_index"] in open_items, e["type"]
    assert not open_items
    kinds = [e["item"]["type"] for e in rendered if e["type"] == "response.output_item.added"]
    assert kinds[0] == "reasoning" and "function_call" in kinds


def test_a_failure_after_the_start_ends_with_response_failed_then_an_error_the_sdk_raises_on():
    stream = ResponsesStream("resp_req9", 1, "p/m", {})
    out = stream.event(STARTED) + stream.event(StreamEvent(kind="text_delta", text="half"))
    error = AllProvidersFailedError("Every provider failed.", attempts=[])
    rendered = sse(out + stream.failed(StreamFailed(error=error, partial=True, request_id="req9")))
    failed, last = rendered[-2], rendered[-1]
    assert failed["type"] == "response.failed" and failed["response"]["status"] == "failed"
    assert failed["response"]["error"] == {"code": "server_error", "message": error.message}
    assert failed["response"]["output"][0]["status"] == "incomplete"
    assert failed["response"]["output"][0]["content"][0]["text"] == "half"
    assert last["type"] == "error" and last["code"] == error.code and last["error"]["code"] == error.code
    run_sdk(rendered[:-1])  # every event before the error is one the SDK accepts
    validate_type(type_=ResponseStreamEvent, value=last)


def test_rate_limited_failure_says_rate_limit_exceeded():
    stream = ResponsesStream("resp_x", 1, "p/m", {})
    rendered = sse(stream.error(RateLimitedError("Slow down.", retry_after=3)))
    assert [e["type"] for e in rendered] == ["response.created", "response.in_progress", "response.failed", "error"]
    assert rendered[2]["response"]["error"]["code"] == "rate_limit_exceeded"
    assert rendered[3]["error"]["type"] == "rate_limit_error"


def test_empty_deltas_and_unknown_call_fragments_render_nothing():
    stream = ResponsesStream("resp_x", 1, "p/m", {})
    stream.event(STARTED)
    assert stream.event(StreamEvent(kind="text_delta", text="")) is None
    assert stream.event(StreamEvent(kind="tool_call_delta", index=5, arguments="{}")) is None
    assert stream.event(StreamEvent(kind="usage", usage=Usage(input_tokens=1))) is None


def test_whole_answer_is_a_response_the_sdk_validates():
    answer = ChatResponse(
        text="Sunny.",
        reasoning="Look it up.",
        tool_calls=(
            ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
            ToolCall(id=None, name="f"),
        ),
        finish_reason="stop",
        usage=Usage(input_tokens=10, output_tokens=5, total_tokens=15, cached_input_tokens=4, reasoning_tokens=2),
    )
    body = render_response(answer, response_id="resp_abc", created_at=5, model="p/m", echo=ECHO)
    response = Response.model_validate(body, strict=True)
    assert response.id == "resp_abc" and response.object == "response" and response.status == "completed"
    assert [o.type for o in response.output] == ["reasoning", "message", "function_call", "function_call"]
    assert response.output_text == "Sunny."
    assert response.output[2].call_id == "call_1" and response.output[3].call_id  # a missing id is made up
    assert response.usage.input_tokens_details.cached_tokens == 4
    assert response.usage.output_tokens_details.reasoning_tokens == 2
    assert response.temperature == 0.5 and response.tool_choice == "auto" and body["store"] is False


def test_whole_answer_cut_short_and_refused():
    cut = ChatResponse(text="The quick", finish_reason="length", usage=Usage(input_tokens=1, output_tokens=2))
    body = render_response(cut, response_id="resp_a", created_at=5, model="p/m", echo={})
    assert body["status"] == "incomplete" and body["incomplete_details"] == {"reason": "max_output_tokens"}
    assert body["output"][0]["status"] == "incomplete"
    refused = ChatResponse(text=None, refusal="I can't.", finish_reason="stop")
    body = render_response(refused, response_id="resp_b", created_at=5, model="p/m", echo={})
    assert body["output"][0]["content"] == [{"type": "refusal", "refusal": "I can't."}]
    Response.model_validate(body, strict=True)


def test_usage_totals_when_the_provider_gives_none():
    assert usage_dict(Usage(input_tokens=3, output_tokens=4))["total_tokens"] == 7
    assert usage_dict(None)["input_tokens_details"] == {"cached_tokens": 0, "cache_write_tokens": 0}
    cached = usage_dict(Usage(input_tokens=100, cached_input_tokens=60, cache_creation_input_tokens=30))
    assert cached["input_tokens_details"] == {"cached_tokens": 60, "cache_write_tokens": 30}


def _turn_back(output: list) -> Message:
    """Send an answer's output items back as the next request's input; the assistant turn byok rebuilds."""
    items = [{"role": "user", "content": "Weather?"}, *output]
    calls = [o for o in output if o["type"] == "function_call"]
    items += [{"type": "function_call_output", "call_id": c["call_id"], "output": "sunny"} for c in calls]
    parsed = parse_responses({"model": "m", "input": items, "tools": [{"type": "function", "name": "get_weather"}]})
    return next(m for m in parsed.request.messages if m.role == "assistant")


def test_anthropic_thinking_signatures_stream_out_and_come_back_on_the_next_turn():
    events = [
        STARTED,
        StreamEvent(kind="reasoning_delta", text="First "),
        StreamEvent(kind="reasoning_delta", text="thought."),
        StreamEvent(kind="thinking_signature", signature="sig-1"),
        StreamEvent(kind="redacted_thinking", signature="opaque-data"),
        StreamEvent(kind="text_delta", text="Checking."),
        StreamEvent(kind="tool_call_start", index=1, tool_call_id="toolu_1", name="get_weather"),
        StreamEvent(kind="tool_call_delta", index=1, arguments='{"city":"Paris"}'),
    ]
    rendered = sse(render_all(events, done_for([StreamEvent(kind="finish", finish_reason="tool_calls")])))
    final = run_sdk(rendered)._completed_response
    assert final is not None and [o.type for o in final.output] == ["reasoning", "message", "function_call"]
    assert final.output[0].summary[0].text == "First thought." and final.output[0].encrypted_content
    turn = _turn_back(rendered[-1]["response"]["output"])
    assert turn.thinking == (Thinking(text="First thought.", signature="sig-1"), Thinking(redacted="opaque-data"))
    assert turn.content == "Checking." and turn.tool_calls[0].id == "toolu_1"


def test_gemini_thought_signatures_ride_a_reasoning_item_before_their_call():
    events = [
        STARTED,
        StreamEvent(kind="reasoning_delta", text="Thinking."),
        StreamEvent(kind="tool_call_start", index=0, tool_call_id=None, name="get_weather", signature="gem-sig"),
        StreamEvent(kind="tool_call_delta", index=0, arguments="{}"),
    ]
    rendered = sse(render_all(events, done_for([])))
    output = rendered[-1]["response"]["output"]
    assert [o["type"] for o in output] == ["reasoning", "reasoning", "function_call"]
    assert "encrypted_content" not in output[0]  # unsigned reasoning text needs no carry
    assert output[1]["summary"] == [] and output[1]["encrypted_content"]
    run_sdk(rendered)
    turn = _turn_back(output)
    assert turn.thinking == (Thinking(text="Thinking."),)
    assert turn.tool_calls[0].thought_signature == "gem-sig" and turn.tool_calls[0].id == output[2]["call_id"]


def test_whole_answers_carry_signatures_too():
    answer = ChatResponse(
        text=None,
        reasoning="Hmm.",
        thinking=(Thinking(text="Hmm.", signature="sig-9"),),
        tool_calls=(ToolCall(id=None, name="get_weather", arguments="{}", thought_signature="gem-9"),),
        finish_reason="tool_calls",
    )
    body = render_response(answer, response_id="resp_abc", created_at=5, model="p/m", echo={})
    Response.model_validate(body, strict=True)
    turn = _turn_back(body["output"])
    assert turn.thinking == (Thinking(text="Hmm.", signature="sig-9"),)
    assert turn.tool_calls[0].thought_signature == "gem-9"


def test_text_then_refusal_are_two_parts_of_one_message_and_late_call_fragments_still_count():
    events = [
        STARTED,
        StreamEvent(kind="text_delta", text="Sure, "),
        StreamEvent(kind="refusal_delta", text="no."),
        StreamEvent(kind="tool_call_start", index=0, tool_call_id="c0", name="f"),
        StreamEvent(kind="tool_call_start", index=1, tool_call_id="c1", name="g"),
        StreamEvent(kind="tool_call_delta", index=0, arguments="{}"),  # after its call was closed
    ]
    rendered = sse(render_all(events, done_for([])))
    final = run_sdk(rendered)._completed_response
    assert final is not None
    message = final.output[0]
    assert [c.type for c in message.content] == ["output_text", "refusal"] and final.output_text == "Sure, "
    assert [o.arguments for o in final.output[1:]] == ["{}", ""]
    assert not [e for e in rendered if e["type"] == "response.function_call_arguments.delta"]


def test_a_failure_while_thinking_keeps_the_thought_so_far():
    stream = ResponsesStream("resp_t", 1, "p/m", {})
    out = stream.event(STARTED) + stream.event(StreamEvent(kind="reasoning_delta", text="Half a thought"))
    rendered = sse(out + stream.error(AllProvidersFailedError("gone", attempts=[])))
    item = rendered[-2]["response"]["output"][0]
    assert item["type"] == "reasoning" and item["summary"] == [{"type": "summary_text", "text": "Half a thought"}]
