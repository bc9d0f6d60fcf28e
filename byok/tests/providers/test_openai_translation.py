"""OpenAI-style translation (OpenAI, DeepSeek, openai_compatible): image parts, response_format, reasoning
effort, parallel_tool_calls, DeepSeek reasoning_content across tool turns, and what each vendor would refuse.

DeepSeek's rules: https://api-docs.deepseek.com/guides/thinking_mode (reasoning_content must come back on the
assistant turns of an exchange that called tools; it is ignored elsewhere). The streamed tool call is the corpus
case `deepseek_stream_reasoner_tool_call` (a Vercel AI SDK fixture; its .json names repository and commit).
"""

from __future__ import annotations

import orjson
import pytest

from byok.exceptions import BadRequestError
from byok.providers.collect import collect
from byok.providers.deepseek import DeepSeekAdapter
from byok.providers.openai import OpenAIAdapter, OpenAICompatibleAdapter
from byok.providers.types import (
    CacheControl,
    ChatRequest,
    ImagePart,
    Message,
    ResponseFormat,
    TextPart,
    Thinking,
    Tool,
    ToolCall,
)
from byok.tests.providers.replay import corpus_case

ASK = Message(role="user", content="hi")
TOOL = Tool(name="get_weather", parameters={"type": "object", "properties": {}}, strict=True)
openai, deepseek, compatible = OpenAIAdapter(), DeepSeekAdapter(), OpenAICompatibleAdapter()


def body_of(adapter, **kwargs) -> dict:
    kwargs.setdefault("model", "m")
    kwargs.setdefault("messages", (ASK,))
    return adapter.build_request(ChatRequest(**kwargs), api_key="k", base_url="https://x/v1").json


def test_image_parts_become_image_url_parts_and_cache_control_is_left_out():
    parts = (
        TextPart(text="What is this?", cache_control=CacheControl()),
        ImagePart(url="https://x/cat.png", detail="low"),
        ImagePart.from_url("data:image/png;base64,iVBORw0KGgo="),
    )
    body = body_of(openai, messages=(Message(role="user", parts=parts),))
    assert body["messages"][0]["content"] == [
        {"type": "text", "text": "What is this?"},
        {"type": "image_url", "image_url": {"url": "https://x/cat.png", "detail": "low"}},
        {"type": "image_url", "image_url": {"url": "data:image/png;base64,iVBORw0KGgo="}},
    ]
    text_only = Message(role="user", parts=(TextPart(text="a", cache_control=CacheControl()), TextPart(text="b")))
    assert body_of(openai, messages=(text_only,))["messages"][0]["content"] == "ab"


def test_response_format_reasoning_effort_parallel_calls_and_user_for_openai():
    schema = {"type": "object", "properties": {"a": {"type": "string"}}}
    body = body_of(
        openai,
        tools=(TOOL,),
        parallel_tool_calls=False,
        reasoning_effort="low",
        user="u-1",
        metadata={"k": "v"},
        response_format=ResponseFormat(type="json_schema", name="answer", schema=schema, strict=True),
    )
    assert body["response_format"] == {
        "type": "json_schema",
        "json_schema": {"name": "answer", "schema": schema, "strict": True},
    }
    assert (body["reasoning_effort"], body["parallel_tool_calls"], body["user"]) == ("low", False, "u-1")
    assert body["tools"][0]["function"]["strict"] is True
    assert "metadata" not in body  # OpenAI takes metadata only for stored completions
    assert body_of(openai, response_format=ResponseFormat(type="json_object"))["response_format"] == {
        "type": "json_object"
    }
    assert "parallel_tool_calls" not in body_of(openai, parallel_tool_calls=True)  # refused by OpenAI without tools


@pytest.mark.parametrize(("budget", "effort"), [(1024, "low"), (8192, "medium"), (32000, "high")])
def test_a_thinking_budget_becomes_the_nearest_effort(budget, effort):
    assert body_of(openai, thinking_budget=budget)["reasoning_effort"] == effort


@pytest.mark.parametrize(
    ("adapter", "kwargs", "needle"),
    [
        (openai, {"n": 2}, "'n'"),
        (deepseek, {"logprobs": True}, "'logprobs'"),
        (deepseek, {"logprobs": True, "top_logprobs": 0}, "'logprobs'"),
        (openai, {"top_k": 3}, "'top_k'"),
        (deepseek, {"top_k": 3}, "'top_k'"),
        (deepseek, {"messages": (Message(role="user", parts=(ImagePart(url="https://x/a.png"),)),)}, "images"),
        (deepseek, {"response_format": ResponseFormat(type="json_schema", schema={})}, "json_object"),
        (deepseek, {"tools": (TOOL,), "parallel_tool_calls": False}, "'parallel_tool_calls'"),
        (compatible, {"n": 4}, "'n'"),
    ],
)
def test_what_the_vendor_would_refuse_is_a_400_before_sending(adapter, kwargs, needle):
    with pytest.raises(BadRequestError, match=needle) as info:
        body_of(adapter, **kwargs)
    assert info.value.status_code == 400 and info.value.provider == adapter.kind


@pytest.mark.parametrize("adapter", [openai, compatible])
def test_logprobs_go_to_openai_and_compatible_servers_only_when_asked(adapter):
    assert body_of(adapter, logprobs=True, top_logprobs=0) | {"messages": []} == {
        "model": "m",
        "messages": [],
        "logprobs": True,
        "top_logprobs": 0,
    }
    assert body_of(adapter, logprobs=True)["logprobs"] is True
    assert "top_logprobs" not in body_of(adapter, logprobs=True)
    assert "logprobs" not in body_of(adapter) and "top_logprobs" not in body_of(adapter)


def test_logprobs_are_read_from_whole_answers_and_streams():
    tokens = [{"token": "Hi", "logprob": -0.1, "bytes": [72, 105], "top_logprobs": []}]
    choice = {"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}
    whole = b'{"choices": [%s]}' % orjson.dumps({**choice, "logprobs": {"content": tokens, "refusal": None}})
    assert openai.parse_response(whole).logprobs == tokens
    assert openai.parse_response(b'{"choices": [%s]}' % orjson.dumps({**choice, "logprobs": None})).logprobs is None
    chunk = {"choices": [{"index": 0, "delta": {"content": "Hi"}, "logprobs": {"content": tokens}}]}
    plain = {"choices": [{"index": 0, "delta": {"content": "!"}, "logprobs": None}]}
    parser = openai.stream_parser()
    events = parser.feed(b"data: %s\n\ndata: %s\n\ndata: [DONE]\n\n" % (orjson.dumps(chunk), orjson.dumps(plain)))
    texts = [ev for ev in events if ev.kind == "text_delta"]
    assert [(ev.text, ev.logprobs) for ev in texts] == [("Hi", tokens), ("!", None)]
    assert collect(events).logprobs == tokens
    assert collect([ev for ev in events if ev.logprobs is None]).logprobs is None


def test_openai_compatible_servers_get_top_k_and_deepseek_gets_its_thinking_switch():
    assert body_of(compatible, top_k=40)["top_k"] == 40
    assert body_of(deepseek, reasoning_effort="none")["thinking"] == {"type": "disabled"}
    assert body_of(deepseek, reasoning_effort="high")["reasoning_effort"] == "high"
    assert body_of(deepseek, response_format=ResponseFormat(type="json_object"))["response_format"] == {
        "type": "json_object"
    }
    assert "user" not in body_of(deepseek, user="u")


def test_deepseek_reasoning_content_goes_back_across_a_tool_exchange():
    _, raw = corpus_case("deepseek_stream_reasoner_tool_call")
    parser = deepseek.stream_parser()
    answer = collect(parser.feed(raw) + parser.close(), provider="deepseek")
    assert answer.tool_calls and answer.reasoning and answer.thinking == (Thinking(text=answer.reasoning),)
    call = answer.tool_calls[0]
    result = Message(role="tool", tool_call_id=call.id, content="20 degrees")
    body = body_of(deepseek, model="deepseek-reasoner", messages=(ASK, answer.to_message(), result))
    assistant = body["messages"][1]
    assert assistant["reasoning_content"] == answer.reasoning
    assert assistant["tool_calls"][0]["id"] == call.id
    # A later exchange: the tool exchange's reasoning still goes back; a plain answer's does not.
    final = Message(role="assistant", content="It is 20 degrees.", thinking=(Thinking(text="easy"),))
    chat = Message(role="assistant", content="Hello!", thinking=(Thinking(text="greet"),))
    history = (ASK, answer.to_message(), result, final, Message(role="user", content="thanks"), chat, ASK)
    messages = body_of(deepseek, messages=history)["messages"]
    assert messages[1]["reasoning_content"] == answer.reasoning and messages[3]["reasoning_content"] == "easy"
    assert "reasoning_content" not in messages[5]


def test_openai_never_gets_reasoning_content_back():
    turn = Message(
        role="assistant", thinking=(Thinking(text="r"),), tool_calls=(ToolCall(id="c", name="f", arguments="{}"),)
    )
    assert "reasoning_content" not in body_of(openai, messages=(ASK, turn))["messages"][1]


def test_a_whole_deepseek_answer_keeps_its_reasoning_as_a_thinking_block():
    _, raw = corpus_case("deepseek_json_reasoner")
    answer = deepseek.parse_response(raw)
    assert answer.reasoning and answer.thinking == (Thinking(text=answer.reasoning),)
