"""The DeepSeek adapter: corpus replays, its differences from OpenAI, errors, secrets.

Error statuses follow https://api-docs.deepseek.com/quick_start/error_codes; keep-alives
https://api-docs.deepseek.com/quick_start/rate_limit; reasoning_content
https://api-docs.deepseek.com/guides/reasoning_model.
"""

from __future__ import annotations

import json

import orjson
import pytest

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from byok.providers import get_adapter
from byok.providers.deepseek import DeepSeekAdapter
from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.tests.providers.replay import corpus_case, replay_json, replay_stream
from byok.tests.providers.stream_checks import (
    assert_stream_matches,
    assert_usage,
    chunk,
    collect,
    feed_all,
    random_pieces,
)

CANARY = "sk-canary-0d1e2f3a4b5c6d7e8f9a0b1c"
HI = (Message(role="user", content="How many 'r's are in the word 'strawberry'?"),)

DEEPSEEK_STREAM_CASES = [
    "deepseek_stream_reasoner",
    "deepseek_stream_reasoner_tool_call",
    "deepseek_stream_chat_length_unicode",
]


@pytest.fixture
def adapter() -> DeepSeekAdapter:
    found = get_adapter("deepseek")
    assert isinstance(found, DeepSeekAdapter)
    return found


def with_keep_alives(body: bytes) -> bytes:
    """The body as DeepSeek sends it while busy: `: keep-alive` comments first and between events."""
    events = body.split(b"\n\n")
    return b": keep-alive\n\n: keep-alive\n\n" + b"\n\n: keep-alive\n\n".join(events)


# The corpus.


@pytest.mark.parametrize("case", DEEPSEEK_STREAM_CASES)
@pytest.mark.parametrize("split", ["whole", "seed1", "seed2", "keep_alive_seed3"])
async def test_it_reads_every_recorded_deepseek_stream(adapter, case, split):
    sidecar, body = corpus_case(case)
    if split.startswith("keep_alive"):
        body = with_keep_alives(body)
    pieces = [body] if split == "whole" else random_pieces(body, int(split[-1]))
    req = ChatRequest(model="deepseek-reasoner", messages=HI, stream=True)
    _, events = await replay_stream(adapter, req, body, pieces=pieces)
    assert_stream_matches(events, sidecar["expected"])
    assert events[0].model in ("deepseek-reasoner", "deepseek-chat")


async def test_it_streams_reasoning_before_the_answer(adapter):
    # deepseek_stream_reasoner: reasoning_content deltas first, then content deltas.
    _, body = corpus_case("deepseek_stream_reasoner")
    kinds = [e.kind for e in feed_all(adapter, body) if e.kind in ("reasoning_delta", "text_delta")]
    first_text = kinds.index("text_delta")
    assert set(kinds[:first_text]) == {"reasoning_delta"} and set(kinds[first_text:]) == {"text_delta"}


@pytest.mark.parametrize("leading", [b"", b"\n\n\n", b"\r\n \n"])
async def test_it_reads_the_recorded_reasoner_answer_even_after_keep_alive_blank_lines(adapter, leading):
    sidecar, body = corpus_case("deepseek_json_reasoner")
    _, answer = await replay_json(adapter, ChatRequest(model="deepseek-reasoner", messages=HI), leading + body)
    expected = sidecar["expected"]
    assert answer.text == expected["text"]
    assert answer.reasoning == expected["reasoning"]
    assert answer.tool_calls == ()
    assert (answer.finish_reason, answer.raw_finish_reason) == ("stop", "stop")
    assert_usage(answer.usage, expected["usage"])
    assert answer.provider == "deepseek" and answer.model == "deepseek-reasoner"


# The outgoing request.


async def test_it_posts_to_the_bare_host_with_a_bearer_key(adapter):
    _, body = corpus_case("deepseek_json_reasoner")
    sent, _ = await replay_json(adapter, ChatRequest(model="deepseek-chat", messages=HI), body, api_key=CANARY)
    assert str(sent.url) == "https://api.deepseek.com/chat/completions"
    assert sent.headers["authorization"] == f"Bearer {CANARY}"


async def test_it_translates_the_conversation_the_openai_way_with_max_tokens(adapter):
    _, body = corpus_case("deepseek_stream_reasoner_tool_call")
    messages = (
        Message(role="system", content="You are terse."),
        Message(role="user", content="Weather in San Francisco?"),
        Message(
            role="assistant", tool_calls=(ToolCall(id="call_00_x", name="weather", arguments='{"location": "SF"}'),)
        ),
        Message(role="tool", tool_call_id="call_00_x", name="weather", content="61°F"),
    )
    req = ChatRequest(
        model="deepseek-chat",
        messages=messages,
        tools=(Tool(name="weather"),),
        tool_choice="required",
        temperature=0.7,
        top_p=0.95,
        max_tokens=400,
        stop=("\n\n",),
        stream=True,
    )
    sent, _ = await replay_stream(adapter, req, body)
    sent_body = json.loads(sent.content)
    assert [m["role"] for m in sent_body["messages"]] == ["system", "user", "assistant", "tool"]
    assert sent_body["messages"][3] == {"role": "tool", "tool_call_id": "call_00_x", "content": "61°F"}
    assert sent_body["tools"][0]["function"]["name"] == "weather" and sent_body["tool_choice"] == "required"
    # DeepSeek documents max_tokens (not OpenAI's max_completion_tokens).
    assert sent_body["max_tokens"] == 400 and "max_completion_tokens" not in sent_body
    assert (sent_body["temperature"], sent_body["top_p"], sent_body["stop"]) == (0.7, 0.95, ["\n\n"])
    assert sent_body["stream_options"] == {"include_usage": True}


# Usage and finish reasons.


def test_it_counts_cache_hits_from_prompt_cache_hit_tokens(adapter):
    usage = {
        "prompt_tokens": 339,
        "completion_tokens": 83,
        "total_tokens": 422,
        "prompt_cache_hit_tokens": 320,
        "prompt_cache_miss_tokens": 19,
        "completion_tokens_details": {"reasoning_tokens": 39},
    }
    events = feed_all(adapter, chunk({"content": "x"}, "stop", usage=usage))
    got = collect(events)["usage"]
    assert (got.input_tokens, got.output_tokens, got.cached_input_tokens, got.reasoning_tokens) == (339, 83, 320, 39)


def test_it_maps_insufficient_system_resource_to_an_error_finish(adapter):
    finish = [
        e for e in feed_all(adapter, chunk({"content": "x"}, "insufficient_system_resource")) if e.kind == "finish"
    ]
    assert [(e.finish_reason, e.raw_finish_reason) for e in finish] == [("error", "insufficient_system_resource")]


# Errors.


async def http_error(adapter, status: int, message: str, headers: dict[str, str] | None = None) -> ProviderError:
    body = orjson.dumps(
        {"error": {"message": message, "type": "invalid_request_error", "param": None, "code": "invalid_request_error"}}
    )
    with pytest.raises(ProviderError) as caught:
        await replay_json(
            adapter,
            ChatRequest(model="deepseek-chat", messages=HI),
            body,
            status=status,
            headers=headers,
            api_key=CANARY,
        )
    return caught.value


async def test_it_maps_402_insufficient_balance_to_key_quota_error(adapter):
    err = await http_error(adapter, 402, "Insufficient Balance")
    assert type(err) is KeyQuotaError and not err.retryable and err.message == "Insufficient Balance"


async def test_it_maps_401_to_auth_error(adapter):
    err = await http_error(adapter, 401, "Authentication Fails, Your api key: ****1b1c is invalid")
    assert type(err) is AuthError and not err.retryable


async def test_it_maps_429_to_rate_limit_error(adapter):
    err = await http_error(adapter, 429, "Rate Limit Reached", {"retry-after": "3"})
    assert type(err) is RateLimitError and err.retry_after == 3.0


async def test_it_maps_503_server_overloaded_to_a_retryable_overloaded_error(adapter):
    err = await http_error(adapter, 503, "Server Overloaded")
    assert type(err) is OverloadedError and err.retryable


@pytest.mark.parametrize("status", [500, 502, 504])
async def test_it_maps_other_5xx_to_server_error(adapter, status):
    assert type(await http_error(adapter, status, "Server Error")) is ServerError


@pytest.mark.parametrize("status", [400, 422])
async def test_it_passes_invalid_format_and_parameters_on_with_the_message(adapter, status):
    err = await http_error(adapter, status, "deepseek-reasoner does not support the parameter `tools`")
    assert type(err) is BadRequestError and err.status_code == status
    assert err.message == "deepseek-reasoner does not support the parameter `tools`"


def test_it_raises_an_error_sent_mid_stream(adapter):
    _, body = corpus_case("deepseek_stream_reasoner")
    cut = body.index(b"\n\n", len(body) // 2) + 2
    parser = adapter.stream_parser()
    assert collect(parser.feed(body[:cut]))["reasoning"]
    with pytest.raises(ServerError) as caught:
        parser.feed(b'data: {"error": {"message": "Internal error", "type": "server_error"}}\n\n')
    assert caught.value.in_stream and caught.value.provider == "deepseek"


async def test_the_key_never_appears_in_an_error_message_or_repr(adapter):
    up = adapter.build_request(ChatRequest(model="deepseek-chat", messages=HI), api_key=CANARY)
    seen = [repr(up), repr(adapter)]
    for status in (400, 401, 402, 422, 429, 500, 503):
        err = await http_error(adapter, status, f"Authentication Fails, Your api key: {CANARY} is invalid")
        seen += [str(err), repr(err), json.dumps(err.to_dict())]
    assert all(CANARY not in text for text in seen)
