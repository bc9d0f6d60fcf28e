"""OpenAI wire format: request parsing, answer and chunk rendering, error mapping (no I/O, no database).

What byok renders is read back by the official SDK's own models and client,
through an in-memory transport (the SDK speaks `httpx2`, which has httpx's
MockTransport), so a shape the SDK would not accept fails here.
"""

from __future__ import annotations

import httpx2
import openai
import orjson
import pytest
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from byok.api import openai_compat as oa
from byok.exceptions import (
    AllProvidersFailedError,
    BadRequestError,
    ByokError,
    NotFoundError,
    NoUsableProviderError,
    ProviderNotFoundError,
    RateLimitedError,
)
from byok.providers.types import ChatResponse, Message, StreamEvent, Tool, ToolCall, Usage

USER = {"role": "user", "content": "Hi"}


def parse(**body):
    return oa.parse_chat_completion(orjson.dumps({"model": "oai/gpt-4o", "messages": [USER], **body}))


def invalid(body) -> oa.InvalidRequest:
    with pytest.raises(oa.InvalidRequest) as exc:
        oa.parse_chat_completion(body if isinstance(body, bytes) else orjson.dumps(body))
    return exc.value


# -- parsing ------------------------------------------------------------------------------------------


def test_minimal_request():
    parsed = parse()
    req = parsed.request
    assert req.model == "oai/gpt-4o" and req.messages == (Message(role="user", content="Hi"),)
    assert not parsed.stream and not parsed.include_usage and not parsed.legacy_functions
    assert req.tools == () and req.tool_choice is None and req.stop == () and req.max_tokens is None


def test_every_parameter():
    parsed = parse(
        temperature=0.5,
        top_p=1,
        max_completion_tokens=64,
        stop=["END", ""],
        stream=True,
        stream_options={"include_usage": True},
        n=1,
        user="u-1",
        seed=7,
        parallel_tool_calls=True,
        response_format={"type": "text"},
        logprobs=False,
        presence_penalty=0.1,
        metadata={"a": "b"},
        tools=[
            {
                "type": "function",
                "function": {"name": "get_weather", "description": "d", "parameters": {"type": "object"}},
            }
        ],
        tool_choice={"type": "function", "function": {"name": "get_weather"}},
    )
    req = parsed.request
    assert (req.temperature, req.top_p, req.max_tokens, req.stop, req.stream) == (0.5, 1.0, 64, ("END",), True)
    assert parsed.stream and parsed.include_usage
    assert req.tools == (Tool(name="get_weather", description="d", parameters={"type": "object"}),)
    assert req.tool_choice == "get_weather"


def test_logprobs_and_top_logprobs_reach_the_request():
    assert (parse().request.logprobs, parse().request.top_logprobs) == (False, None)
    req = parse(logprobs=True, top_logprobs=20).request
    assert (req.logprobs, req.top_logprobs) == (True, 20)
    assert parse(logprobs=True).request.top_logprobs is None


def test_max_tokens_and_stop_string():
    req = parse(max_tokens=10, max_completion_tokens=10, stop="\n").request
    assert req.max_tokens == 10 and req.stop == ("\n",)
    assert parse(max_tokens=5).request.max_tokens == 5
    assert parse(stop=None, temperature=None, stream=None, tools=None).request.stop == ()


def test_roles_content_parts_and_tool_history():
    messages = [
        {"role": "developer", "content": "Be brief."},
        {"role": "system", "content": [{"type": "text", "text": "Rule one."}, {"type": "text", "text": "Rule two."}]},
        {"role": "user", "content": "Weather?", "name": "ann"},
        {
            "role": "assistant",
            "content": None,
            "tool_calls": [
                {
                    "id": "call_1",
                    "type": "function",
                    "function": {"name": "get_weather", "arguments": '{"city":"Paris"}'},
                }
            ],
        },
        {"role": "tool", "tool_call_id": "call_1", "content": [{"type": "text", "text": "21C"}]},
        {"role": "assistant", "content": [{"type": "text", "text": "It is "}, {"type": "refusal", "refusal": "no"}]},
    ]
    req = parse(messages=messages).request
    assert [m.role for m in req.messages] == ["system", "system", "user", "assistant", "tool", "assistant"]
    assert req.messages[1].content == "Rule one.\nRule two."
    assert req.messages[3].tool_calls == (ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),)
    assert req.messages[4] == Message(role="tool", content="21C", tool_call_id="call_1", name="get_weather")
    assert req.messages[5].content == "It is \nno"
    assert req.system == "Be brief.\n\nRule one.\nRule two."


def test_legacy_functions():
    parsed = parse(
        messages=[
            USER,
            {"role": "assistant", "content": None, "function_call": {"name": "f", "arguments": "{}"}},
            {"role": "function", "name": "f", "content": "ok"},
        ],
        functions=[{"name": "f", "parameters": {"type": "object", "properties": {}}}],
        function_call={"name": "f"},
    )
    req = parsed.request
    assert parsed.legacy_functions and req.tool_choice == "f" and req.tools[0].name == "f"
    assert req.messages[1].tool_calls == (ToolCall(id=None, name="f", arguments="{}"),)
    assert req.messages[2] == Message(role="tool", content="ok", name="f")
    assert parse(functions=[{"name": "f"}], function_call="auto").request.tool_choice == "auto"
    assert parse(functions=[{"name": "f"}]).request.tools[0].parameters == {"type": "object", "properties": {}}


@pytest.mark.parametrize(
    "body, param, code",
    [
        (b"{nope", None, "invalid_json"),
        (b"[1]", None, "invalid_json"),
        ({"messages": [USER]}, "model", "missing_required_parameter"),
        ({"model": " ", "messages": [USER]}, "model", "invalid_value"),
        ({"model": 3, "messages": [USER]}, "model", "invalid_value"),
        ({"model": "m"}, "messages", "missing_required_parameter"),
        ({"model": "m", "messages": []}, "messages", "empty_array"),
        ({"model": "m", "messages": "hi"}, "messages", "invalid_type"),
        ({"model": "m", "messages": ["hi"]}, "messages[0]", "invalid_type"),
        ({"model": "m", "messages": [{"role": "robot", "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"model": "m", "messages": [{"role": 1, "content": "x"}]}, "messages[0].role", "invalid_value"),
        ({"model": "m", "messages": [{"role": "user"}]}, "messages[0].content", "missing_required_parameter"),
        ({"model": "m", "messages": [{"role": "user", "content": 5}]}, "messages[0].content", "invalid_type"),
        ({"model": "m", "messages": [{"role": "user", "content": [5]}]}, "messages[0].content[0]", "invalid_type"),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages[0].content[0].text",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "input_audio", "input_audio": {}}]}]},
            "messages[0].content[0].type",
            "unsupported_content",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].image_url.url",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "messages": [{"role": "system", "content": [{"type": "image_url", "image_url": {}}]}]},
            "messages[0].content[0].type",
            "unsupported_content",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"text": "x"}]}]},
            "messages[0].content[0].type",
            "invalid_value",
        ),
        (
            {"model": "m", "messages": [{"role": "user", "content": [{"type": "refusal", "refusal": "x"}]}]},
            "messages[0].content[0].type",
            "unsupported_content",
        ),
        ({"model": "m", "messages": [{"role": "assistant", "content": None}]}, "messages[0].content", "invalid_value"),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": {}}]},
            "messages[0].tool_calls",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [1]}]},
            "messages[0].tool_calls[0]",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "type": "web"}]}]},
            "messages[0].tool_calls[0].type",
            "invalid_value",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"function": {"name": "f"}}]}]},
            "messages[0].tool_calls[0].id",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": "f"}]}]},
            "messages[0].tool_calls[0].function",
            "invalid_type",
        ),
        (
            {
                "model": "m",
                "messages": [{"role": "assistant", "tool_calls": [{"id": "c", "function": {"arguments": "{}"}}]}],
            },
            "messages[0].tool_calls[0].function.name",
            "missing_required_parameter",
        ),
        (
            {
                "model": "m",
                "messages": [
                    {"role": "assistant", "tool_calls": [{"id": "c", "function": {"name": "f", "arguments": {}}}]}
                ],
            },
            "messages[0].tool_calls[0].function.arguments",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x"}]},
            "messages[0].tool_call_id",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "messages": [{"role": "tool", "content": "x", "tool_call_id": "nope"}]},
            "messages[0].tool_call_id",
            "invalid_value",
        ),
        (
            {"model": "m", "messages": [{"role": "function", "content": "x"}]},
            "messages[0].name",
            "missing_required_parameter",
        ),
        ({"model": "m", "messages": [USER], "bogus": 1}, "bogus", "unknown_parameter"),
        ({"model": "m", "messages": [USER], "n": 2}, "n", "unsupported_value"),
        ({"model": "m", "messages": [USER], "n": True}, "n", "unsupported_value"),
        ({"model": "m", "messages": [USER], "logprobs": "yes"}, "logprobs", "invalid_type"),
        ({"model": "m", "messages": [USER], "top_logprobs": 3}, "top_logprobs", "invalid_value"),
        ({"model": "m", "messages": [USER], "logprobs": False, "top_logprobs": 0}, "top_logprobs", "invalid_value"),
        ({"model": "m", "messages": [USER], "logprobs": True, "top_logprobs": 21}, "top_logprobs", "invalid_value"),
        ({"model": "m", "messages": [USER], "logprobs": True, "top_logprobs": -1}, "top_logprobs", "invalid_value"),
        (
            {"model": "m", "messages": [USER], "response_format": {"type": "xml"}},
            "response_format.type",
            "invalid_value",
        ),
        (
            {"model": "m", "messages": [USER], "response_format": {"type": "json_schema"}},
            "response_format.json_schema",
            "missing_required_parameter",
        ),
        ({"model": "m", "messages": [USER], "reasoning_effort": "max"}, "reasoning_effort", "invalid_value"),
        ({"model": "m", "messages": [USER], "parallel_tool_calls": "yes"}, "parallel_tool_calls", "invalid_type"),
        ({"model": "m", "messages": [USER], "user": 5}, "user", "invalid_type"),
        ({"model": "m", "messages": [USER], "temperature": "hot"}, "temperature", "invalid_type"),
        ({"model": "m", "messages": [USER], "temperature": True}, "temperature", "invalid_type"),
        ({"model": "m", "messages": [USER], "temperature": 2.5}, "temperature", "invalid_value"),
        ({"model": "m", "messages": [USER], "top_p": -0.1}, "top_p", "invalid_value"),
        ({"model": "m", "messages": [USER], "max_tokens": 0}, "max_tokens", "invalid_value"),
        ({"model": "m", "messages": [USER], "max_tokens": 1.5}, "max_tokens", "invalid_type"),
        (
            {"model": "m", "messages": [USER], "max_tokens": 5, "max_completion_tokens": 6},
            "max_tokens",
            "invalid_value",
        ),
        ({"model": "m", "messages": [USER], "stop": 5}, "stop", "invalid_type"),
        ({"model": "m", "messages": [USER], "stop": ["a", 1]}, "stop", "invalid_type"),
        ({"model": "m", "messages": [USER], "stop": ["a", "b", "c", "d", "e"]}, "stop", "invalid_value"),
        ({"model": "m", "messages": [USER], "stream": "yes"}, "stream", "invalid_type"),
        (
            {"model": "m", "messages": [USER], "stream_options": {"include_usage": True}},
            "stream_options",
            "invalid_value",
        ),
        ({"model": "m", "messages": [USER], "stream": True, "stream_options": []}, "stream_options", "invalid_type"),
        (
            {"model": "m", "messages": [USER], "stream": True, "stream_options": {"x": 1}},
            "stream_options",
            "unknown_parameter",
        ),
        (
            {"model": "m", "messages": [USER], "stream": True, "stream_options": {"include_usage": 1}},
            "stream_options.include_usage",
            "invalid_type",
        ),
        ({"model": "m", "messages": [USER], "tools": {}}, "tools", "invalid_type"),
        ({"model": "m", "messages": [USER], "tools": [1]}, "tools[0]", "invalid_type"),
        ({"model": "m", "messages": [USER], "tools": [{"type": "retrieval"}]}, "tools[0].type", "invalid_value"),
        (
            {"model": "m", "messages": [USER], "tools": [{"type": "function", "function": []}]},
            "tools[0].function",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [USER], "tools": [{"type": "function", "function": {"name": "bad name"}}]},
            "tools[0].function.name",
            "invalid_value",
        ),
        (
            {
                "model": "m",
                "messages": [USER],
                "tools": [{"type": "function", "function": {"name": "f", "description": 1}}],
            },
            "tools[0].function.description",
            "invalid_type",
        ),
        (
            {
                "model": "m",
                "messages": [USER],
                "tools": [{"type": "function", "function": {"name": "f", "parameters": "x"}}],
            },
            "tools[0].function.parameters",
            "invalid_type",
        ),
        (
            {"model": "m", "messages": [USER], "tools": [{"type": "function", "function": {"name": "f"}}] * 2},
            "tools",
            "invalid_value",
        ),
        ({"model": "m", "messages": [USER], "tool_choice": "always"}, "tool_choice", "invalid_value"),
        ({"model": "m", "messages": [USER], "tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"model": "m", "messages": [USER], "tool_choice": 3}, "tool_choice", "invalid_type"),
        ({"model": "m", "messages": [USER], "tool_choice": {"type": "web"}}, "tool_choice.type", "invalid_value"),
        (
            {"model": "m", "messages": [USER], "tool_choice": {"type": "function", "function": {}}},
            "tool_choice",
            "missing_required_parameter",
        ),
        (
            {"model": "m", "messages": [USER], "tool_choice": {"type": "function", "function": {"name": "g"}}},
            "tool_choice",
            "invalid_value",
        ),
        ({"model": "m", "messages": [USER], "functions": {}}, "functions", "invalid_type"),
        ({"model": "m", "messages": [USER], "functions": [{"name": "f"}], "tools": []}, "functions", "invalid_value"),
        ({"model": "m", "messages": [USER], "function_call": "auto"}, "function_call", "invalid_value"),
        (
            {"model": "m", "messages": [USER], "functions": [{"name": "f"}], "tool_choice": "auto"},
            "tool_choice",
            "invalid_value",
        ),
        (
            {"model": "m", "messages": [USER], "functions": [{"name": "f"}], "function_call": "required"},
            "function_call",
            "invalid_value",
        ),
    ],
)
def test_invalid_requests_name_the_parameter(body, param, code):
    exc = invalid(body)
    assert (exc.param, exc.code) == (param, code), exc.message
    assert exc.message


# -- rendering -----------------------------------------------------------------------------------------


def test_render_text_answer_is_a_valid_chat_completion():
    response = ChatResponse(
        text="Hello",
        reasoning="thought",
        refusal=None,
        finish_reason="length",
        usage=Usage(input_tokens=3, output_tokens=5, cached_input_tokens=1, reasoning_tokens=2),
    )
    body = oa.render_completion(response, completion_id="chatcmpl-1", created=10, model="oai/gpt-4o")
    parsed = ChatCompletion.model_validate(body)
    assert parsed.choices[0].message.content == "Hello" and parsed.choices[0].finish_reason == "length"
    assert body["choices"][0]["message"]["reasoning_content"] == "thought"
    assert body["usage"] == {
        "prompt_tokens": 3,
        "completion_tokens": 5,
        "total_tokens": 8,
        "prompt_tokens_details": {"cached_tokens": 1},
        "completion_tokens_details": {"reasoning_tokens": 2},
    }
    assert "tool_calls" not in body["choices"][0]["message"]


def test_render_tool_calls_and_legacy_function_call():
    response = ChatResponse(
        text=None,
        tool_calls=(ToolCall(id=None, name="f", arguments='{"a":1}'), ToolCall(id="call_x", name="g", arguments="{}")),
        finish_reason="stop",
    )
    body = oa.render_completion(response, completion_id="chatcmpl-abc", created=1, model="m")
    choice = ChatCompletion.model_validate(body).choices[0]
    assert choice.finish_reason == "tool_calls"
    assert [c.id for c in choice.message.tool_calls] == ["call_chatcmpl-abc_0", "call_x"]
    assert body["usage"] == {"prompt_tokens": 0, "completion_tokens": 0, "total_tokens": 0}
    legacy = oa.render_completion(response, completion_id="chatcmpl-abc", created=1, model="m", legacy=True)
    message = legacy["choices"][0]["message"]
    assert message["function_call"] == {"name": "f", "arguments": '{"a":1}'} and "tool_calls" not in message
    assert legacy["choices"][0]["finish_reason"] == "function_call"


@pytest.mark.parametrize(
    "reason, mapped",
    [
        ("stop", "stop"),
        ("length", "length"),
        ("tool_calls", "tool_calls"),
        ("content_filter", "content_filter"),
        ("error", "length"),
        (None, "stop"),
        ("odd", "stop"),
    ],
)
def test_finish_reasons(reason, mapped):
    assert oa.finish_reason(reason) == mapped


def _events(raw: bytes) -> list:
    out = []
    for block in raw.split(b"\n\n"):
        if block:
            assert block.startswith(b"data: ")
            data = block[6:]
            out.append(data if data == b"[DONE]" else orjson.loads(data))
    return out


def test_chunks_text_reasoning_refusal_and_usage():
    w = oa.ChunkWriter("chatcmpl-1", 5, "oai/gpt-4o", include_usage=True)
    raw = b"".join(
        filter(
            None,
            [
                w.event(StreamEvent(kind="meta", model="gpt-4o")),
                w.event(StreamEvent(kind="reasoning_delta", text="hmm")),
                w.event(StreamEvent(kind="text_delta", text="Hi")),
                w.event(StreamEvent(kind="refusal_delta", text="no")),
                w.event(StreamEvent(kind="usage", usage=Usage(input_tokens=1))),
                w.done("stop", Usage(input_tokens=2, output_tokens=3, total_tokens=5)),
            ],
        )
    )
    events = _events(raw)
    assert events[-1] == b"[DONE]"
    chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
    assert chunks[0].choices[0].delta.role == "assistant"
    assert events[0]["choices"][0]["delta"]["reasoning_content"] == "hmm"
    assert chunks[1].choices[0].delta.content == "Hi" and chunks[1].choices[0].delta.role is None
    assert chunks[2].choices[0].delta.refusal == "no"
    assert chunks[3].choices[0].finish_reason == "stop"
    assert chunks[4].choices == [] and chunks[4].usage.total_tokens == 5
    assert {c.id for c in chunks} == {"chatcmpl-1"} and {c.model for c in chunks} == {"oai/gpt-4o"}


def test_chunks_tool_calls():
    w = oa.ChunkWriter("chatcmpl-1", 5, "m")
    raw = b"".join(
        filter(
            None,
            [
                w.event(StreamEvent(kind="tool_call_start", index=0, tool_call_id=None, name="f")),
                w.event(StreamEvent(kind="tool_call_delta", index=0, arguments='{"a"')),
                w.event(StreamEvent(kind="tool_call_delta", index=0, arguments=":1}")),
                w.event(StreamEvent(kind="tool_call_start", index=1, tool_call_id="call_2", name="g")),
                w.event(StreamEvent(kind="finish", finish_reason="tool_calls")),
                w.done("stop", None),
            ],
        )
    )
    events = _events(raw)
    chunks = [ChatCompletionChunk.model_validate(e) for e in events[:-1]]
    first = chunks[0].choices[0].delta.tool_calls[0]
    assert (first.index, first.id, first.function.name, first.function.arguments) == (0, "call_chatcmpl-1_0", "f", "")
    assert "".join(c.choices[0].delta.tool_calls[0].function.arguments for c in chunks[1:3]) == '{"a":1}'
    assert chunks[3].choices[0].delta.tool_calls[0].id == "call_2"
    assert chunks[-1].choices[0].finish_reason == "tool_calls"
    assert len(chunks) == 5  # no usage chunk unless asked


def test_chunks_legacy_function_call_carries_the_first_call_only():
    w = oa.ChunkWriter("chatcmpl-1", 5, "m", legacy=True)
    out = [
        w.event(StreamEvent(kind="tool_call_start", index=0, tool_call_id="c", name="f")),
        w.event(StreamEvent(kind="tool_call_delta", index=0, arguments="{}")),
        w.event(StreamEvent(kind="tool_call_start", index=1, tool_call_id="d", name="g")),
        w.event(StreamEvent(kind="tool_call_delta", index=1, arguments="{}")),
    ]
    assert out[2] is None and out[3] is None
    deltas = [_events(o)[0]["choices"][0]["delta"] for o in out[:2]]
    assert deltas[0]["function_call"] == {"name": "f", "arguments": ""}
    assert deltas[1] == {"function_call": {"arguments": "{}"}}
    assert _events(w.done("tool_calls", None))[0]["choices"][0]["finish_reason"] == "function_call"


def test_failed_chunk_is_an_error_then_done():
    events = _events(oa.ChunkWriter("c", 1, "m").failed(AllProvidersFailedError("boom", attempts=[])))
    assert events == [
        {"error": {"message": "boom", "type": "upstream_error", "param": None, "code": "upstream_failed"}},
        b"[DONE]",
    ]


# -- errors and models --------------------------------------------------------------------------------


def test_error_response_statuses_and_headers():
    status, body, headers = oa.error_response(RateLimitedError("slow down", retry_after=2.2))
    assert status == 429 and headers["Retry-After"] == "3" and headers["retry-after-ms"] == "2200"
    assert body["error"]["type"] == "rate_limit_error" and headers["x-should-retry"] == "true"
    status, body, headers = oa.error_response(ProviderNotFoundError("no such"))
    assert (status, body["error"]["code"], headers) == (404, "provider_not_found", {"x-should-retry": "false"})
    _, _, headers = oa.error_response(RateLimitedError("later", retry_after=600))
    assert headers["Retry-After"] == "600" and headers["x-should-retry"] == "false"
    status, _, headers = oa.error_response(NoUsableProviderError())
    assert status == 503 and "Retry-After" not in headers
    assert oa.error_body(418, "teapot", None)["error"]["type"] == "invalid_request_error"
    assert oa.error_body(500, "x", None)["error"]["type"] == "server_error"
    assert oa.retry_after_headers(None) == {}


class _Provider:
    def __init__(self, name, model, enabled=True, kind="openai"):
        self.name, self.default_model, self.enabled, self.kind = name, model, enabled, kind


def test_model_list():
    body = oa.model_list(
        [_Provider("a", "gpt-4o"), _Provider("b", "gpt-4o"), _Provider("c", ""), _Provider("d", "x", False)]
    )
    assert [m["id"] for m in body["data"]] == ["a/gpt-4o", "b/gpt-4o", "gpt-4o"]
    assert body["object"] == "list" and body["data"][2]["owned_by"] == "a"


def test_model_list_with_catalog():
    """Each provider lists the catalog's models of its kind (and overrides naming it), default first."""
    from types import SimpleNamespace

    from byok.catalog import Catalog, ModelInfo

    catalog = Catalog(
        [ModelInfo("openai", "gpt-4o"), ModelInfo("openai", "gpt-4o-mini"), ModelInfo("gemini", "gemini-2.5-pro")],
        [SimpleNamespace(provider="mine", model="local-embed", note="", source="", as_of=None)],
    )
    providers = [_Provider("mine", "llama", kind="openai_compatible"), _Provider("a", "gpt-4o-mini")]
    ids = [m["id"] for m in oa.model_list(providers, catalog)["data"]]
    assert ids == ["mine/llama", "mine/local-embed", "a/gpt-4o-mini", "a/gpt-4o", "llama", "gpt-4o-mini"]


# -- the SDK reads what byok writes -------------------------------------------------------------------


def _sdk(responder) -> openai.OpenAI:
    transport = httpx2.MockTransport(responder)
    return openai.OpenAI(
        base_url="http://byok.test/v1", api_key="t", max_retries=0, http_client=httpx2.Client(transport=transport)
    )


def _error_responder(exc: ByokError):
    def respond(request):
        status, body, headers = oa.error_response(exc)
        return httpx2.Response(
            status, content=orjson.dumps(body), headers={**headers, "content-type": "application/json"}
        )

    return respond


@pytest.mark.parametrize(
    "exc, sdk_class",
    [
        (BadRequestError("bad", status=400), openai.BadRequestError),
        (BadRequestError("unprocessable", status=422), openai.UnprocessableEntityError),
        (NotFoundError("no model", status=404), openai.NotFoundError),
        (ProviderNotFoundError(), openai.NotFoundError),
        (RateLimitedError(retry_after=3), openai.RateLimitError),
        (AllProvidersFailedError(attempts=[]), openai.InternalServerError),
        (AllProvidersFailedError(attempts=[], timeout=True), openai.InternalServerError),
        (NoUsableProviderError(), openai.InternalServerError),
    ],
)
def test_sdk_raises_its_typed_exceptions(exc, sdk_class):
    with _sdk(_error_responder(exc)) as client, pytest.raises(sdk_class) as raised:
        client.chat.completions.create(model="m", messages=[USER])
    assert raised.value.status_code == exc.status_code
    assert raised.value.body["code"] == exc.code and raised.value.message.endswith(exc.message)


@pytest.mark.parametrize("status, sdk_class", [(401, openai.AuthenticationError), (403, openai.PermissionDeniedError)])
def test_sdk_auth_errors(status, sdk_class):
    body = orjson.dumps(oa.error_body(status, "no", "invalid_api_key"))
    with _sdk(lambda r: httpx2.Response(status, content=body)) as client, pytest.raises(sdk_class):
        client.models.list()


def test_sdk_reads_a_stream_and_its_error_event():
    w = oa.ChunkWriter("chatcmpl-1", 5, "m", include_usage=True)
    ok = w.event(StreamEvent(kind="text_delta", text="Hi")) + w.done("stop", Usage(input_tokens=1, output_tokens=1))
    sse = {"content-type": "text/event-stream"}
    with _sdk(lambda r: httpx2.Response(200, content=ok, headers=sse)) as client:
        chunks = list(client.chat.completions.create(model="m", messages=[USER], stream=True))
    assert chunks[0].choices[0].delta.content == "Hi" and chunks[-1].usage.total_tokens == 2

    broken = oa.ChunkWriter("c", 1, "m")
    body = broken.event(StreamEvent(kind="text_delta", text="Hi")) + broken.failed(
        AllProvidersFailedError("gone", attempts=[])
    )
    with _sdk(lambda r: httpx2.Response(200, content=body, headers=sse)) as client:
        stream = client.chat.completions.create(model="m", messages=[USER], stream=True)
        with pytest.raises(openai.APIError, match="gone"):
            list(stream)


def test_parse_accepts_an_already_decoded_body():
    assert oa.parse_chat_completion({"model": "m", "messages": [USER]}).request.model == "m"


def test_sse_event_framing():
    from byok.api.sse import sse_event

    assert sse_event("delta", {"text": "a\nb"}) == b'event: delta\ndata: {"text":"a\\nb"}\n\n'
    assert sse_event(None, b"line1\nline2") == b"data: line1\ndata: line2\n\n"
