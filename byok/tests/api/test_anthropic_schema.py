"""The Anthropic Messages request schema (`byok.schemas.anthropic`) and its translation into byok's
vocabulary (`byok.schemas.anthropic_chat`): what is accepted, what is refused with which message,
and what each field becomes. Request shapes follow https://docs.anthropic.com/en/api/messages."""

from __future__ import annotations

import pytest

from byok.providers.types import CacheControl, ImagePart, Message, TextPart, Thinking, ToolCall
from byok.schemas import rules
from byok.schemas.anthropic import IGNORED, InvalidMessages, parse_count_tokens, parse_messages
from byok.schemas.anthropic_chat import to_chat_request

HI = [{"role": "user", "content": "Hi"}]
BASE = {"model": "claude-sonnet-4-5", "max_tokens": 1024, "messages": HI}
WEATHER = {
    "name": "get_weather",
    "description": "The weather in a city.",
    "input_schema": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
}
# A tool-use round trip with thinking, as the extended-thinking + tool-use docs show it.
ROUND_TRIP = [
    {"role": "user", "content": "Weather in Paris?"},
    {
        "role": "assistant",
        "content": [
            {"type": "thinking", "thinking": "I should call the tool.", "signature": "EqQBsig=="},
            {"type": "redacted_thinking", "data": "EmwKAhgB"},
            {"type": "text", "text": "Let me check."},
            {"type": "tool_use", "id": "toolu_01", "name": "get_weather", "input": {"city": "Paris"}},
        ],
    },
    {
        "role": "user",
        "content": [
            {"type": "text", "text": "Here you go."},
            {"type": "tool_result", "tool_use_id": "toolu_01", "content": [{"type": "text", "text": "18C, sunny"}]},
        ],
    },
]


def refused(body: dict, *, count: bool = False) -> InvalidMessages:
    with pytest.raises(InvalidMessages) as caught:
        (parse_count_tokens if count else parse_messages)(body)
    return caught.value


def chat(body: dict, **kw):
    return to_chat_request(parse_messages({**BASE, **body}), **kw)


def test_a_minimal_request_becomes_a_chat_request():
    req = to_chat_request(parse_messages(BASE))
    assert req.model == "claude-sonnet-4-5" and req.max_tokens == 1024 and req.stream is False
    assert req.messages == (Message(role="user", content="Hi"),)


def test_it_reads_json_bytes_and_refuses_what_is_not_a_json_object():
    assert parse_messages(b'{"model": "m", "max_tokens": 5, "messages": [{"role": "user", "content": "x"}]}')
    assert refused(b"{nope").message == "The request body is not valid JSON."
    assert refused([1, 2]).message == "The request body must be a JSON object."


@pytest.mark.parametrize(
    ("change", "field", "says"),
    [
        ({"max_tokens": 1.5}, "max_tokens", "Input should be a valid integer"),
        ({"max_tokens": 0}, "max_tokens", "greater than or equal to 1"),
        ({"max_tokens": "100"}, "max_tokens", "valid integer"),
        ({"model": ""}, "model", "at least 1 character"),
        ({"messages": []}, "messages", "at least 1 item"),
        ({"messages": [{"role": "system", "content": "x"}]}, "messages.0.role", "'user' or 'assistant'"),
        ({"messages": [{"role": "user", "content": 5}]}, "messages.0.content", "valid string"),
        (
            {"messages": [{"role": "user", "content": [{"type": "text"}]}]},
            "messages.0.content.0.text.text",
            "Field required",
        ),
        ({"temperature": 1.5}, "temperature", "less than or equal to 1"),
        ({"top_p": -0.1}, "top_p", "greater than or equal to 0"),
        ({"top_k": 1.5}, "top_k", "valid integer"),
        ({"stream": "yes"}, "stream", "valid boolean"),
        ({"stop_sequences": ["a", "b", "c", "d", "e"]}, "stop_sequences", f"at most {rules.MAX_STOP} items"),
        ({"metadata": {"user_id": "x" * 300}}, "metadata.user_id", "at most 256 characters"),
        ({"tool_choice": {"type": "sometimes"}}, "tool_choice.type", "'auto', 'any', 'tool' or 'none'"),
        ({"thinking": {"type": "enabled"}}, None, "budget_tokens: Field required"),
        ({"thinking": {"type": "enabled", "budget_tokens": 100}}, None, "should be >= 1024"),
        ({"thinking": {"type": "enabled", "budget_tokens": 2048}}, None, "`max_tokens` must be greater"),
        ({"unknown_field": 1}, "unknown_field", "Extra inputs are not permitted"),
        ({"model": "claude\x00"}, "model", "control characters"),
        ({"system": "be\x07 nice"}, "system", "control characters"),
        ({"metadata": {"user_id": "u\x1b"}}, "metadata.user_id", "control characters"),
    ],
)
def test_bad_fields_are_refused_naming_the_field(change, field, says):
    err = refused({**BASE, **change})
    assert says in err.message
    if field:
        assert err.field == field and err.message.startswith(field + ":")


def test_a_missing_max_tokens_is_field_required():
    err = refused({"model": "m", "messages": HI})
    assert err.message == "max_tokens: Field required" and err.field == "max_tokens"


@pytest.mark.parametrize(
    ("block", "field", "says"),
    [
        ({"type": "document", "source": {}}, "messages.0.content.0.type", "type 'document' are not supported"),
        ({"type": "image", "source": {"type": "base64", "media_type": "image/bmp", "data": "AAA"}}, None, "image/jpeg"),
        ({"type": "tool_use", "id": "t", "name": "f", "input": {}}, "messages.0.content.0.type", "assistant turns"),
        ({"type": "tool_result", "tool_use_id": "nope", "content": "x"}, "messages.0.content.0.tool_use_id", "nope"),
        ({"type": "text", "text": "a\x00b"}, "messages.0.content.0.text", "control characters"),
    ],
)
def test_bad_content_blocks_are_refused(block, field, says):
    err = refused({**BASE, "messages": [{"role": "user", "content": [block]}]})
    assert says in err.message
    if field:
        assert err.field == field


def test_blocks_of_user_turns_are_refused_in_assistant_turns():
    body = {**BASE, "messages": [*HI, {"role": "assistant", "content": [{"type": "tool_result", "tool_use_id": "x"}]}]}
    assert refused(body).field == "messages.1.content.0.type"


@pytest.mark.parametrize(
    ("tools", "choice", "says"),
    [
        ([{"type": "web_search_20250305", "name": "web_search"}], None, "server tools ('web_search_20250305')"),
        ([{**WEATHER, "name": "get weather"}], None, "tools.0.name"),
        ([{**WEATHER, "input_schema": {"type": "string"}}], None, "tools.0.input_schema.type"),
        ([{"name": "f"}], None, "tools.0.input_schema: Field required"),
        ([WEATHER, WEATHER], None, "Tool names must be unique"),
        ([WEATHER], {"type": "tool", "name": "other"}, "Tool 'other' not found"),
        ([WEATHER], {"type": "tool"}, "tool_choice.name: Field required"),
        (None, {"type": "any"}, "'any' needs tools"),
    ],
)
def test_bad_tools_and_tool_choice_are_refused(tools, choice, says):
    body = {**BASE, "tools": tools, "tool_choice": choice}
    assert says in refused({k: v for k, v in body.items() if v is not None}).message


def test_fields_of_anthropics_platform_are_accepted_and_ignored():
    body = {**BASE, "service_tier": "auto", "container": "c1", "mcp_servers": [], "context_management": {}}
    req = to_chat_request(parse_messages(body))
    assert req.messages == (Message(role="user", content="Hi"),)
    assert {"service_tier", "container", "mcp_servers", "context_management", "inference_geo"} <= IGNORED


def test_unknown_keys_inside_blocks_are_ignored():
    body = {**BASE, "messages": [{"role": "user", "content": [{"type": "text", "text": "Hi", "citations": None}]}]}
    assert to_chat_request(parse_messages(body)).messages == (Message(role="user", content="Hi"),)


def test_sampling_stop_metadata_and_betas_are_carried():
    req = chat(
        {"temperature": 0.2, "top_p": 0.9, "top_k": 40, "stop_sequences": ["END", ""], "metadata": {"user_id": "u-1"}},
        betas=("interleaved-thinking-2025-05-14",),
    )
    assert (req.temperature, req.top_p, req.top_k, req.stop, req.user) == (0.2, 0.9, 40, ("END",), "u-1")
    assert req.betas == ("interleaved-thinking-2025-05-14",)


def test_system_as_a_string_or_as_blocks_with_a_cache_breakpoint():
    assert chat({"system": "Be brief."}).messages[0] == Message(role="system", content="Be brief.")
    blocks = [{"type": "text", "text": "Long doc", "cache_control": {"type": "ephemeral", "ttl": "1h"}}]
    system = chat({"system": blocks}).messages[0]
    assert system.parts == (TextPart(text="Long doc", cache_control=CacheControl(ttl="1h")),)
    two = chat({"system": [{"type": "text", "text": "A"}, {"type": "text", "text": "B"}]}).messages[0]
    assert two.content == rules.join_parts(["A", "B"])


def test_images_become_parts():
    content = [
        {"type": "image", "source": {"type": "base64", "media_type": "image/png", "data": "iVBORw0KGgo="}},
        {"type": "image", "source": {"type": "url", "url": "https://example.com/cat.jpg"}},
        {"type": "text", "text": "What are these?"},
    ]
    (message,) = chat({"messages": [{"role": "user", "content": content}]}).messages
    assert message.parts == (
        ImagePart(data="iVBORw0KGgo=", media_type="image/png"),
        ImagePart(url="https://example.com/cat.jpg"),
        TextPart(text="What are these?"),
    )
    assert message.content is None


def test_a_tool_round_trip_with_thinking_keeps_ids_names_signatures_and_order():
    req = chat({"messages": ROUND_TRIP, "tools": [WEATHER]})
    user, assistant, result, after = req.messages
    assert user == Message(role="user", content="Weather in Paris?")
    assert assistant.content == "Let me check."
    assert assistant.tool_calls == (ToolCall(id="toolu_01", name="get_weather", arguments='{"city":"Paris"}'),)
    assert assistant.thinking == (
        Thinking(text="I should call the tool.", signature="EqQBsig=="),
        Thinking(redacted="EmwKAhgB"),
    )
    # the result comes first, right after the call, whatever order the blocks were in
    assert (result.role, result.tool_call_id, result.name, result.content) == (
        "tool",
        "toolu_01",
        "get_weather",
        "18C, sunny",
    )
    assert after == Message(role="user", content="Here you go.")
    assert req.tools[0].name == "get_weather" and req.tools[0].parameters == WEATHER["input_schema"]


def test_tool_results_keep_is_error_and_may_be_empty():
    messages = [
        *ROUND_TRIP[:2],
        {
            "role": "user",
            "content": [{"type": "tool_result", "tool_use_id": "toolu_01", "is_error": True, "content": "boom"}],
        },
    ]
    result = chat({"messages": messages}).messages[-1]
    assert result.is_error and result.content == "boom"
    messages[-1] = {"role": "user", "content": [{"type": "tool_result", "tool_use_id": "toolu_01"}]}
    assert chat({"messages": messages}).messages[-1].content == ""


@pytest.mark.parametrize(
    ("choice", "tool_choice", "parallel"),
    [
        ({"type": "auto"}, "auto", None),
        ({"type": "any"}, "required", None),
        ({"type": "none"}, "none", None),
        ({"type": "tool", "name": "get_weather"}, "get_weather", None),
        ({"type": "auto", "disable_parallel_tool_use": True}, "auto", False),
    ],
)
def test_tool_choice(choice, tool_choice, parallel):
    req = chat({"tools": [WEATHER], "tool_choice": choice})
    assert (req.tool_choice, req.parallel_tool_calls) == (tool_choice, parallel)


@pytest.mark.parametrize(
    ("thinking", "budget"),
    [
        ({"type": "enabled", "budget_tokens": 1024}, 1024),
        ({"type": "disabled"}, 0),
        ({"type": "adaptive"}, None),
    ],
)
def test_thinking_becomes_a_budget(thinking, budget):
    assert chat({"max_tokens": 4096, "thinking": thinking}).thinking_budget == budget


def test_an_assistant_prefill_and_empty_text_blocks():
    req = chat({"messages": [*HI, {"role": "assistant", "content": [{"type": "text", "text": ""}]}]})
    assert req.messages == (Message(role="user", content="Hi"),)  # an empty assistant turn says nothing
    req = chat({"messages": [*HI, {"role": "assistant", "content": "The answer is ("}]})
    assert req.messages[-1] == Message(role="assistant", content="The answer is (")


def test_count_tokens_takes_no_max_tokens_nor_answer_settings():
    req = to_chat_request(parse_count_tokens({"model": "m", "messages": HI, "system": "s", "tools": [WEATHER]}))
    assert req.max_tokens is None and req.tools[0].name == "get_weather" and req.messages[0].role == "system"
    assert refused({"model": "m", "messages": HI, "max_tokens": 5}, count=True).field == "max_tokens"
