"""Gemini translation both ways and across turns: thoughtSignature on function calls, images, structured output,
thinking by model family, and what Gemini cannot do (a 400 before sending).

The signed function call is the corpus case `gemini_stream_thinking_function_call`, taken verbatim from
Google's Firebase AI SDK test data (its .json names the repository, path and commit).
"""

from __future__ import annotations

import orjson
import pytest

from byok.exceptions import BadRequestError
from byok.providers.collect import collect
from byok.providers.gemini import GeminiAdapter
from byok.providers.gemini_request import SKIP_SIGNATURE
from byok.providers.types import (
    CacheControl,
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Tool,
    ToolCall,
)
from byok.tests.providers.replay import corpus_case

adapter = GeminiAdapter()
ASK = Message(role="user", content="How many days until New Year's Eve?")
NOW = Tool(name="now", description="The current time")


def body_of(**kwargs) -> dict:
    kwargs.setdefault("model", "gemini-2.5-flash")
    kwargs.setdefault("messages", (ASK,))
    return adapter.build_request(ChatRequest(**kwargs), api_key="k").json


def test_thought_signature_of_a_streamed_call_goes_back_on_the_same_call():
    _, body = corpus_case("gemini_stream_thinking_function_call")
    parser = adapter.stream_parser()
    events = [ev for i in range(0, len(body), 11) for ev in parser.feed(body[i : i + 11])] + parser.close()
    answer = collect(events, provider="gemini")
    (call,) = answer.tool_calls
    assert call.name == "now" and call.thought_signature and call.thought_signature.startswith("CiIBVKhc7vB+vaaq6rA/")
    assert call.thought_signature in body.decode()  # byte for byte what Gemini sent
    result = Message(role="tool", tool_call_id=call.id, content='{"now": "2026-12-01T03:00:00Z"}')
    sent = body_of(messages=(ASK, answer.to_message(), result), tools=(NOW,))
    model_turn = sent["contents"][1]
    assert model_turn["role"] == "model"
    assert model_turn["parts"][-1] == {
        "functionCall": {"name": "now", "args": {}},
        "thoughtSignature": call.thought_signature,
    }
    assert sent["contents"][2] == {
        "role": "user",
        "parts": [{"functionResponse": {"name": "now", "response": {"now": "2026-12-01T03:00:00Z"}}}],
    }
    assert all("thought" not in part for turn in sent["contents"] for part in turn["parts"])  # summaries stay out


def test_thought_signature_in_a_whole_answer():
    # Shape of the parallel-call example in https://ai.google.dev/gemini-api/docs/thought-signatures:
    # only the first functionCall part of a step carries the signature.
    response = {
        "candidates": [
            {
                "content": {
                    "role": "model",
                    "parts": [
                        {
                            "functionCall": {"name": "get_weather", "args": {"city": "Paris"}},
                            "thoughtSignature": "<Sig_A>",
                        },
                        {"functionCall": {"name": "get_weather", "args": {"city": "London"}}},
                    ],
                },
                "finishReason": "STOP",
            }
        ],
        "modelVersion": "gemini-3-pro-preview",
    }
    answer = adapter.parse_response(orjson.dumps(response))
    assert [c.thought_signature for c in answer.tool_calls] == ["<Sig_A>", None]
    assert answer.finish_reason == "tool_calls"
    sent = body_of(model="gemini-3-pro-preview", messages=(ASK, answer.to_message()))
    parts = sent["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == "<Sig_A>" and "thoughtSignature" not in parts[1]  # order and gaps kept


def test_gemini_3_history_without_signatures_gets_the_documented_placeholder():
    calls = (ToolCall(id="a", name="now", arguments="{}"), ToolCall(id="b", name="now", arguments="{}"))
    turn = Message(role="assistant", tool_calls=calls)
    parts = body_of(model="gemini-3-flash-preview", messages=(ASK, turn))["contents"][1]["parts"]
    assert parts[0]["thoughtSignature"] == SKIP_SIGNATURE and "thoughtSignature" not in parts[1]
    parts = body_of(model="gemini-2.5-flash", messages=(ASK, turn))["contents"][1]["parts"]
    assert all("thoughtSignature" not in p for p in parts)  # 2.5 does not check


def test_images_become_inline_data_and_file_data():
    parts = (
        TextPart(text="Compare"),
        ImagePart.from_url("data:image/jpeg;base64,/9j/4AAQSkZJRg=="),
        ImagePart(url="https://generativelanguage.googleapis.com/v1beta/files/abc-123", media_type="image/png"),
        ImagePart(url="gs://bucket/cat.webp"),
    )
    sent = body_of(messages=(Message(role="user", parts=parts),))
    assert sent["contents"][0]["parts"] == [
        {"text": "Compare"},
        {"inlineData": {"mimeType": "image/jpeg", "data": "/9j/4AAQSkZJRg=="}},
        {
            "fileData": {
                "mimeType": "image/png",
                "fileUri": "https://generativelanguage.googleapis.com/v1beta/files/abc-123",
            }
        },
        {"fileData": {"mimeType": "image/webp", "fileUri": "gs://bucket/cat.webp"}},
    ]


@pytest.mark.parametrize(
    ("part", "needle"),
    [
        (ImagePart(url="https://example.com/cat.png"), "BYOK_FETCH_IMAGE_URLS"),
        (ImagePart(url="https://generativelanguage.googleapis.com/v1beta/files/noext"), "media type"),
        (ImagePart(data="AAAA"), "media type"),
    ],
)
def test_images_gemini_cannot_read_are_refused(part, needle):
    with pytest.raises(BadRequestError, match=needle):
        body_of(messages=(Message(role="user", parts=(part,)),))


SCHEMA = {"type": "object", "properties": {"days": {"type": "integer"}}, "required": ["days"]}


@pytest.mark.parametrize(
    ("fmt", "config"),
    [
        (ResponseFormat(type="json_object"), {"responseMimeType": "application/json"}),
        (
            ResponseFormat(type="json_schema", name="days", schema=SCHEMA, strict=True),
            {"responseMimeType": "application/json", "responseJsonSchema": SCHEMA},
        ),
        (ResponseFormat(type="text"), None),
    ],
)
def test_response_format_becomes_response_mime_type_and_schema(fmt, config):
    assert body_of(response_format=fmt).get("generationConfig") == config


@pytest.mark.parametrize(
    ("model", "kwargs", "config"),
    [
        ("gemini-3-pro-preview", {"reasoning_effort": "medium"}, {"thinkingLevel": "high", "includeThoughts": True}),
        ("gemini-3-pro-preview", {"reasoning_effort": "minimal"}, {"thinkingLevel": "low", "includeThoughts": True}),
        (
            "gemini-3-flash-preview",
            {"reasoning_effort": "minimal"},
            {"thinkingLevel": "minimal", "includeThoughts": True},
        ),
        (
            "gemini-3-flash-preview",
            {"reasoning_effort": "none"},
            {"thinkingLevel": "minimal", "includeThoughts": False},
        ),
        ("gemini-3-flash-preview", {"thinking_budget": 2048}, {"thinkingBudget": 2048, "includeThoughts": True}),
        ("gemini-2.5-flash", {"reasoning_effort": "none"}, {"thinkingBudget": 0}),
        ("gemini-2.5-flash", {"reasoning_effort": "high"}, {"thinkingBudget": 24576, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", {"reasoning_effort": "minimal"}, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-flash-lite", {"thinking_budget": 100}, {"thinkingBudget": 512, "includeThoughts": True}),
        ("gemini-2.5-pro", {"thinking_budget": 50}, {"thinkingBudget": 128, "includeThoughts": True}),
        ("gemini-2.5-pro", {"thinking_budget": 100000}, {"thinkingBudget": 32768, "includeThoughts": True}),
        ("gemini-2.5-pro", {"reasoning_effort": "low"}, {"thinkingBudget": 1024, "includeThoughts": True}),
        ("gemini-2.0-flash", {"reasoning_effort": "none"}, None),
    ],
)
def test_reasoning_effort_becomes_thinking_config_by_family(model, kwargs, config):
    got = body_of(model=model, **kwargs).get("generationConfig", {}).get("thinkingConfig")
    assert got == config


@pytest.mark.parametrize(
    ("kwargs", "needle"),
    [
        ({"n": 3}, "'n'"),
        ({"logprobs": True}, "'logprobs'"),
        ({"tools": (NOW,), "parallel_tool_calls": False}, "'parallel_tool_calls'"),
        ({"model": "gemini-2.5-pro", "reasoning_effort": "none"}, "cannot be turned off"),
        ({"model": "gemini-2.0-flash", "reasoning_effort": "low"}, "'reasoning_effort'"),
        (
            {
                "messages": (
                    ASK,
                    Message(
                        role="tool", tool_call_id="x", name="now", parts=(ImagePart(data="A", media_type="image/png"),)
                    ),
                )
            },
            "images",
        ),
    ],
)
def test_what_gemini_cannot_do_is_a_400_before_sending(kwargs, needle):
    with pytest.raises(BadRequestError, match=needle) as info:
        body_of(**kwargs)
    assert info.value.status_code == 400 and info.value.provider == "gemini"


def test_parallel_tool_calls_true_or_without_tools_is_fine_and_top_k_is_sent():
    assert body_of(tools=(NOW,), parallel_tool_calls=True, top_k=20)["generationConfig"] == {"topK": 20}
    assert "tools" not in body_of(parallel_tool_calls=False)


def test_an_error_tool_result_uses_the_error_field():
    call = Message(role="assistant", tool_calls=(ToolCall(id="c", name="now", arguments="{}"),))
    result = Message(role="tool", tool_call_id="c", content="clock unavailable", is_error=True)
    sent = body_of(messages=(ASK, call, result))
    assert sent["contents"][2]["parts"] == [
        {"functionResponse": {"name": "now", "response": {"error": "clock unavailable"}}}
    ]


def test_cache_control_is_dropped_for_gemini():
    msg = Message(role="user", parts=(TextPart(text="hi", cache_control=CacheControl()),))
    assert body_of(messages=(msg,))["contents"] == [{"role": "user", "parts": [{"text": "hi"}]}]
