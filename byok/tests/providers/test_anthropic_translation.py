"""Anthropic translation both ways and across turns: thinking signatures, redacted thinking, prompt caching,
images, tool choice, thinking budgets, structured output, and what Anthropic would refuse (a 400 before sending).

Fixtures are in byok/tests/fixtures/anthropic/ (SOURCE.md says where each comes from).
"""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest

from byok.exceptions import BadRequestError
from byok.providers.anthropic import AnthropicAdapter
from byok.providers.anthropic_request import FORMAT_TOOL
from byok.providers.collect import collect
from byok.providers.types import (
    CacheControl,
    ChatRequest,
    ChatResponse,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Thinking,
    Tool,
    ToolCall,
)

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"
WEATHER = Tool(name="get_weather", parameters={"type": "object", "properties": {"location": {"type": "string"}}})
ASK = Message(role="user", content="What's the weather in San Francisco?")
adapter = AnthropicAdapter()


def body_of(**kwargs) -> dict:
    kwargs.setdefault("model", "claude-sonnet-4-20250514")
    kwargs.setdefault("messages", (ASK,))
    return adapter.build_request(ChatRequest(**kwargs), api_key="k").json


def streamed(name: str) -> ChatResponse:
    parser = adapter.stream_parser()
    body = (FIXTURES / name).read_bytes()
    events = [ev for i in range(0, len(body), 7) for ev in parser.feed(body[i : i + 7])] + parser.close()
    return collect(events, provider="anthropic")


def test_thinking_signature_survives_a_tool_turn_whole_answer():
    answer = adapter.parse_response((FIXTURES / "json_thinking_tool_use.body.json").read_bytes())
    signature = "WaUjzkypQ2mUEVM36O2TxuC06KN8xyfbJwyem2dw3URve/op91XWHOEBLLqIOMfFG/UvLEczmEsUjavL...."
    assert answer.thinking == (
        Thinking(text="The user wants the weather in San Francisco. I should call get_weather.", signature=signature),
    )
    result = Message(role="tool", tool_call_id="toolu_01A09q90qw90lq917835lq9", content="15 degrees")
    body = body_of(messages=(ASK, answer.to_message(), result), tools=(WEATHER,), reasoning_effort="low")
    turn = body["messages"][1]
    assert turn["role"] == "assistant"
    assert [b["type"] for b in turn["content"]] == ["thinking", "text", "tool_use"]  # thinking first, as required
    assert turn["content"][0] == {"type": "thinking", "thinking": answer.thinking[0].text, "signature": signature}
    assert turn["content"][2]["input"] == {"location": "San Francisco, CA", "unit": "celsius"}
    assert body["messages"][2] == {
        "role": "user",
        "content": [{"type": "tool_result", "tool_use_id": "toolu_01A09q90qw90lq917835lq9", "content": "15 degrees"}],
    }
    assert body["thinking"] == {"type": "enabled", "budget_tokens": 2048}


def test_thinking_signature_survives_a_streamed_turn():
    answer = streamed("stream_thinking.sse")
    assert (
        len(answer.thinking) == 1
        and answer.thinking[0].signature == "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds..."
    )
    body = body_of(messages=(ASK, answer.to_message(), Message(role="user", content="and 27 * 454?")))
    assert body["messages"][1]["content"][0] == {
        "type": "thinking",
        "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3",
        "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...",
    }


def test_redacted_thinking_goes_back_as_its_opaque_data():
    answer = adapter.parse_response((FIXTURES / "json_redacted_thinking_cache.body.json").read_bytes())
    assert answer.thinking[1].redacted and answer.thinking[1].redacted.startswith("EmwKAhgBEgy3va3pzix")
    assert answer.reasoning == "Let me analyze this step by step..."  # redacted data is never shown as reasoning
    body = body_of(messages=(ASK, answer.to_message(), Message(role="user", content="go on")))
    blocks = body["messages"][1]["content"]
    assert [b["type"] for b in blocks] == ["thinking", "redacted_thinking", "text"]
    assert blocks[1] == {"type": "redacted_thinking", "data": answer.thinking[1].redacted}


def test_redacted_thinking_streamed_and_cache_read_counted():
    answer = streamed("stream_redacted_thinking.sse")
    assert answer.thinking == (Thinking(redacted=answer.thinking[0].redacted),) and answer.thinking[0].redacted
    assert answer.text == "Done." and answer.reasoning is None
    assert answer.usage is not None
    assert (answer.usage.input_tokens, answer.usage.cached_input_tokens) == (30 + 1800, 1800)
    assert answer.usage.cache_creation_input_tokens == 0


def test_cache_writes_are_counted_by_ttl():
    answer = adapter.parse_response((FIXTURES / "json_redacted_thinking_cache.body.json").read_bytes())
    usage = answer.usage
    assert usage is not None
    assert (usage.input_tokens, usage.cached_input_tokens) == (21 + 1800, 0)
    assert (usage.cache_creation_input_tokens, usage.cache_creation_1h_input_tokens) == (1800, 1500)


def test_unsigned_reasoning_from_another_provider_is_left_out():
    turn = Message(role="assistant", content="42", thinking=(Thinking(text="deepseek reasoning"),))
    body = body_of(messages=(ASK, turn, Message(role="user", content="why?")))
    assert body["messages"][1]["content"] == [{"type": "text", "text": "42"}]


def test_cache_control_is_passed_through_on_system_parts_tools_and_tool_results():
    ephemeral, hour = CacheControl(), CacheControl(ttl="1h")
    system = Message(role="system", parts=(TextPart(text="rules"), TextPart(text="big doc", cache_control=hour)))
    user = Message(role="user", parts=(TextPart(text="question", cache_control=ephemeral),))
    call = Message(role="assistant", tool_calls=(ToolCall(id="t1", name="get_weather", arguments="{}"),))
    result = Message(role="tool", tool_call_id="t1", parts=(TextPart(text="sunny", cache_control=ephemeral),))
    tool = Tool(name="get_weather", cache_control=ephemeral)
    body = body_of(messages=(system, user, call, result), tools=(tool,))
    assert body["system"] == [
        {"type": "text", "text": "rules"},
        {"type": "text", "text": "big doc", "cache_control": {"type": "ephemeral", "ttl": "1h"}},
    ]
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "question", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["messages"][2]["content"][0]["content"] == [
        {"type": "text", "text": "sunny", "cache_control": {"type": "ephemeral"}}
    ]
    assert body["tools"][0]["cache_control"] == {"type": "ephemeral"}


def test_plain_system_stays_a_string():
    body = body_of(messages=(Message(role="system", content="be brief"), ASK))
    assert body["system"] == "be brief"


def test_images_become_image_blocks():
    parts = (
        TextPart(text="What is in these?"),
        ImagePart(url="https://upload.wikimedia.org/cat.jpg"),
        ImagePart.from_url("data:image/png;base64,iVBORw0KGgo="),
    )
    body = body_of(messages=(Message(role="user", parts=parts),))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is in these?"},
        {"type": "image", "source": {"type": "url", "url": "https://upload.wikimedia.org/cat.jpg"}},
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
    ]


@pytest.mark.parametrize(
    ("message", "needle"),
    [
        (Message(role="user", parts=(ImagePart(data="AAAA", media_type="image/tiff"),)), "image/tiff"),
        (Message(role="user", parts=(ImagePart(url="ftp://x/y.png"),)), "http(s)"),
        (Message(role="system", parts=(ImagePart(url="https://x/y.png"),)), "system prompt"),
        (Message(role="assistant", parts=(ImagePart(url="https://x/y.png"),)), "assistant turns"),
    ],
)
def test_images_anthropic_cannot_take_are_refused(message, needle):
    with pytest.raises(BadRequestError, match="" if needle is None else needle.replace("(", r"\(").replace(")", r"\)")):
        body_of(messages=(message, ASK))


def test_tool_result_errors_and_images():
    call = Message(role="assistant", tool_calls=(ToolCall(id="t1", name="shot", arguments="{}"),))
    result = Message(
        role="tool", tool_call_id="t1", is_error=True, parts=(TextPart(text="failed"), ImagePart(url="https://x/e.png"))
    )
    body = body_of(messages=(ASK, call, result, Message(role="user", content="retry")))
    assert body["messages"][2] == {
        "role": "user",
        "content": [
            {
                "type": "tool_result",
                "tool_use_id": "t1",
                "content": [
                    {"type": "text", "text": "failed"},
                    {"type": "image", "source": {"type": "url", "url": "https://x/e.png"}},
                ],
                "is_error": True,
            },
            {"type": "text", "text": "retry"},
        ],
    }


@pytest.mark.parametrize(
    ("choice", "parallel", "wire"),
    [
        (None, None, None),
        (None, False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", None, {"type": "auto"}),
        ("auto", False, {"type": "auto", "disable_parallel_tool_use": True}),
        ("auto", True, {"type": "auto"}),
        ("required", False, {"type": "any", "disable_parallel_tool_use": True}),
        ("none", False, {"type": "none"}),
        ("get_weather", False, {"type": "tool", "name": "get_weather", "disable_parallel_tool_use": True}),
    ],
)
def test_tool_choice_and_parallel_tool_calls(choice, parallel, wire):
    body = body_of(tools=(WEATHER,), tool_choice=choice, parallel_tool_calls=parallel)
    assert body.get("tool_choice") == wire


@pytest.mark.parametrize(
    ("effort", "budget", "max_tokens"),
    [
        ("minimal", 1024, 1024 + 4096),
        ("low", 2048, 2048 + 4096),
        ("medium", 8192, 8192 + 4096),
        ("high", 24576, 24576 + 4096),
    ],
)
def test_reasoning_effort_becomes_a_thinking_budget_below_max_tokens(effort, budget, max_tokens):
    body = body_of(reasoning_effort=effort)
    assert body["thinking"] == {"type": "enabled", "budget_tokens": budget}
    assert body["max_tokens"] == max_tokens


def test_thinking_budget_is_kept_below_a_given_max_tokens():
    body = body_of(reasoning_effort="high", max_tokens=5000)
    assert (body["thinking"]["budget_tokens"], body["max_tokens"]) == (4999, 5000)
    body = body_of(thinking_budget=3000, max_tokens=16000)
    assert body["thinking"]["budget_tokens"] == 3000
    assert "thinking" not in body_of(reasoning_effort="none")
    assert "thinking" not in body_of(thinking_budget=0)


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n": 2}, "'n'"),
        ({"logprobs": True}, "'logprobs'"),
        ({"top_logprobs": 3}, "'logprobs'"),
        ({"reasoning_effort": "low", "max_tokens": 1000}, "'max_tokens'"),
        ({"thinking_budget": 500}, "at least 1024"),
        ({"reasoning_effort": "low", "temperature": 0.2}, "'temperature'"),
        ({"reasoning_effort": "low", "top_k": 5}, "'top_k'"),
        ({"reasoning_effort": "low", "top_p": 0.5}, "'top_p'"),
        ({"reasoning_effort": "low", "tools": (WEATHER,), "tool_choice": "required"}, "'tool_choice'"),
        ({"reasoning_effort": "low", "model": "claude-3-5-sonnet-20241022"}, "'reasoning_effort'"),
        (
            {
                "reasoning_effort": "low",
                "model": "claude-3-7-sonnet-20250219",
                "response_format": ResponseFormat(type="json_object"),
            },
            "'response_format'",
        ),
    ],
)
def test_what_anthropic_would_refuse_is_a_400_before_sending(kwargs, needle):
    with pytest.raises(BadRequestError, match=needle) as info:
        body_of(**kwargs)
    assert info.value.status_code == 400 and info.value.provider == "anthropic"


def test_sampling_top_k_metadata_and_betas():
    req = ChatRequest(
        model="claude-sonnet-4-20250514",
        messages=(ASK,),
        top_k=40,
        temperature=0.3,
        user="user-123",
        metadata={"team": "x"},
        betas=("interleaved-thinking-2025-05-14", "context-1m-2025-08-07"),
    )
    up = adapter.build_request(req, api_key="k")
    assert (up.json["top_k"], up.json["temperature"], up.json["metadata"]) == (40, 0.3, {"user_id": "user-123"})
    assert up.headers["anthropic-beta"] == "interleaved-thinking-2025-05-14,context-1m-2025-08-07"
    assert "anthropic-beta" not in adapter.build_request(ChatRequest(model="m", messages=(ASK,)), api_key="k").headers


SCHEMA = {
    "type": "object",
    "properties": {"city": {"type": "string"}},
    "required": ["city"],
    "additionalProperties": False,
}


def test_json_schema_uses_structured_outputs_where_the_model_has_them():
    fmt = ResponseFormat(type="json_schema", name="place", schema=SCHEMA, strict=True)
    body = body_of(model="claude-sonnet-4-5-20250929", response_format=fmt)
    assert body["output_config"] == {"format": {"type": "json_schema", "schema": SCHEMA}}
    assert "tools" not in body and "tool_choice" not in body


@pytest.mark.parametrize(
    ("fmt", "schema"),
    [
        (ResponseFormat(type="json_schema", name="place", schema=SCHEMA), SCHEMA),
        (ResponseFormat(type="json_object"), {"type": "object"}),
    ],
)
def test_older_models_get_a_forced_tool_for_response_format(fmt, schema):
    body = body_of(model="claude-3-5-haiku-20241022", response_format=fmt)
    assert body["tools"][-1]["name"] == FORMAT_TOOL and body["tools"][-1]["input_schema"] == schema
    assert body["tool_choice"] == {"type": "tool", "name": FORMAT_TOOL}
    assert "output_config" not in body
    with_tools = body_of(
        model="claude-3-5-haiku-20241022", response_format=fmt, tools=(WEATHER,), parallel_tool_calls=False
    )
    assert [t["name"] for t in with_tools["tools"]] == ["get_weather", FORMAT_TOOL]
    assert with_tools["tool_choice"] == {"type": "any", "disable_parallel_tool_use": True}


def test_the_forced_format_tool_comes_back_as_text():
    body = {
        "id": "msg_1",
        "type": "message",
        "model": "claude-3-5-haiku-20241022",
        "content": [{"type": "tool_use", "id": "toolu_1", "name": FORMAT_TOOL, "input": {"city": "Paris"}}],
        "stop_reason": "tool_use",
        "usage": {"input_tokens": 5, "output_tokens": 7},
    }
    answer = adapter.parse_response(orjson.dumps(body))
    assert orjson.loads(answer.text or "") == {"city": "Paris"}
    assert (answer.tool_calls, answer.finish_reason, answer.raw_finish_reason) == ((), "stop", "tool_use")


def test_the_forced_format_tool_streams_as_text():
    answer = streamed("stream_format_tool.sse")
    assert orjson.loads(answer.text or "") == {"city": "Paris"}
    assert (answer.tool_calls, answer.finish_reason) == ((), "stop")
