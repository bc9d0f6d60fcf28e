"""The Responses request schema: bodies shaped as the `openai` SDK sends them -> byok's ChatRequest, or a 400."""

from __future__ import annotations

import base64
import json

import pytest

from byok.providers.types import ImagePart, Message, ResponseFormat, TextPart, Thinking, ToolCall
from byok.schemas import responses_carry
from byok.schemas.responses import IGNORED, InvalidRequest, parse_responses
from byok.tests.openai_fakes import WEATHER


def parse(**body):
    return parse_responses(json.dumps({"model": "oai/gpt-x", **body}).encode())


def refused(**body) -> InvalidRequest:
    with pytest.raises(InvalidRequest) as exc:
        parse(**body)
    return exc.value


def test_string_input_with_instructions_and_sampling():
    parsed = parse(input="Hi there", instructions="Be brief.", temperature=0.3, top_p=0.9, max_output_tokens=50)
    req = parsed.request
    assert req.messages == (Message(role="system", content="Be brief."), Message(role="user", content="Hi there"))
    assert (req.temperature, req.top_p, req.max_tokens, req.model) == (0.3, 0.9, 50, "oai/gpt-x")
    assert parsed.stream is False and req.stream is False
    assert parsed.echo["instructions"] == "Be brief." and parsed.echo["temperature"] == 0.3


def test_items_become_turns_and_a_run_of_assistant_items_one_turn():
    parsed = parse(
        input=[
            {"role": "developer", "content": "Rules."},
            {"role": "user", "content": [{"type": "input_text", "text": "Weather?"}]},
            {"type": "reasoning", "id": "rs_1", "summary": [{"type": "summary_text", "text": "think"}]},
            {
                "type": "message",
                "id": "msg_1",
                "role": "assistant",
                "status": "completed",
                "content": [{"type": "output_text", "text": "Checking.", "annotations": []}],
            },
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": '{"city":"Paris"}'},
            {"type": "function_call", "call_id": "call_2", "name": "get_weather", "arguments": '{"city":"Rome"}'},
            {"type": "function_call_output", "call_id": "call_1", "output": '{"t": 21}'},
            {"type": "function_call_output", "call_id": "call_2", "output": [{"type": "input_text", "text": "18"}]},
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
        stream=True,
    )
    msgs = parsed.request.messages
    assert [m.role for m in msgs] == ["system", "user", "assistant", "tool", "tool", "user"]
    assert msgs[2].content == "Checking."
    assert msgs[2].tool_calls == (
        ToolCall(id="call_1", name="get_weather", arguments='{"city":"Paris"}'),
        ToolCall(id="call_2", name="get_weather", arguments='{"city":"Rome"}'),
    )
    assert (msgs[3].tool_call_id, msgs[3].name, msgs[3].content) == ("call_1", "get_weather", '{"t": 21}')
    assert msgs[4].content == "18"
    assert parsed.stream is True and parsed.request.stream is True
    (tool,) = parsed.request.tools
    assert tool.name == "get_weather" and tool.parameters["required"] == ["city"]


@pytest.mark.parametrize(
    ("choice", "expected"),
    [
        ("auto", "auto"),
        ("none", "none"),
        ("required", "required"),
        ({"type": "function", "name": "get_weather"}, "get_weather"),
    ],
)
def test_tool_choice(choice, expected):
    assert parse(input="hi", tools=[WEATHER], tool_choice=choice).request.tool_choice == expected


def test_a_tool_without_parameters_gets_an_empty_object_schema():
    tools = parse(input="hi", tools=[{"type": "function", "name": "ping", "parameters": None, "strict": None}])
    assert tools.request.tools[0].parameters == {"type": "object", "properties": {}}


def test_previous_response_id_is_refused_by_name():
    exc = refused(input="hi", previous_response_id="resp_123")
    assert exc.param == "previous_response_id" and exc.code == "previous_response_not_supported"
    assert "whole conversation" in exc.message


@pytest.mark.parametrize(
    ("body", "param", "code"),
    [
        ({"conversation": "conv_1"}, "conversation", "conversation_not_supported"),
        ({"background": True}, "background", "unsupported_parameter"),
        ({"prompt": {"id": "pmpt_1"}}, "prompt", "unsupported_parameter"),
        ({"top_logprobs": 2}, "top_logprobs", "unsupported_parameter"),
        ({"include": ["message.output_text.logprobs"]}, "include[0]", "unsupported_parameter"),
        ({"frobnicate": 1}, "frobnicate", "unknown_parameter"),
        ({"temperature": "1"}, "temperature", "invalid_type"),
        ({"temperature": 2.5}, "temperature", "invalid_value"),
        ({"top_p": -0.1}, "top_p", "invalid_value"),
        ({"max_output_tokens": 0}, "max_output_tokens", "invalid_value"),
        ({"max_output_tokens": True}, "max_output_tokens", "invalid_type"),
        ({"stream": "yes"}, "stream", "invalid_type"),
        ({"tools": [{"type": "web_search"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "telepathy"}]}, "tools[0].type", "unsupported_value"),
        ({"tools": [{"type": "function", "name": "bad name!"}]}, "tools[0].name", "invalid_value"),
        ({"tools": [WEATHER, WEATHER]}, "tools", "invalid_value"),
        ({"tool_choice": "sometimes"}, "tool_choice", "invalid_value"),
        ({"tool_choice": {"type": "function", "name": "nope"}, "tools": [WEATHER]}, "tool_choice", "invalid_value"),
        ({"tool_choice": {"type": "allowed_tools", "tools": []}}, "tool_choice.type", "unsupported_value"),
        ({"tool_choice": "required"}, "tool_choice", "invalid_value"),
        ({"text": {"format": {"type": "json_schema", "schema": {}}}}, "text.format.name", "missing_required_parameter"),
        ({"text": {"format": {"type": "xml"}}}, "text.format.type", "unsupported_value"),
        ({"metadata": {"k": 1}}, "metadata.k", "invalid_type"),
        ({"metadata": {"k": "x" * 513}}, "metadata.k", "invalid_value"),
        ({"metadata": {f"k{i}": "v" for i in range(17)}}, "metadata", "invalid_value"),
        ({"user": "bad\x00user"}, "user", "invalid_value"),
        ({"reasoning": {"effort": "maximal"}}, "reasoning.effort", "invalid_value"),
    ],
)
def test_bad_bodies_are_400s_naming_the_field(body, param, code):
    exc = refused(**{"input": "hi", **body})
    assert (exc.param, exc.code) == (param, code), exc.message


@pytest.mark.parametrize(
    ("items", "param", "code"),
    [
        ([{"type": "computer_call", "id": "x"}], "input[0].type", "unsupported_value"),
        ([{"type": "item_reference", "id": "msg_1"}], "input[0].type", "item_reference_not_supported"),
        ([{"role": "user"}], "input[0].content", "missing_required_parameter"),
        ([{"role": "critic", "content": "x"}], "input[0].role", "invalid_value"),
        (
            [{"role": "user", "content": [{"type": "input_text", "text": 1}]}],
            "input[0].content[0].text",
            "invalid_type",
        ),
        (
            [{"role": "user", "content": [{"type": "input_file", "file_id": "f"}]}],
            "input[0].content[0].type",
            "unsupported_content",
        ),
        ([{"role": "user", "content": [{"type": "video"}]}], "input[0].content[0].type", "unsupported_value"),
        ([{"role": "user", "content": [{"text": "no type"}]}], "input[0].content[0].type", "invalid_type"),
        ([{"role": "user", "content": 5}], "input[0].content", "invalid_type"),
        ([{"role": "user", "content": "bell\x07"}], "input[0].content", "invalid_value"),
        ([{"type": "function_call", "name": "f", "arguments": "{}"}], "input[0].call_id", "missing_required_parameter"),
        ([{"type": "function_call_output", "call_id": "c9", "output": "x"}], "input[0].call_id", "invalid_value"),
        (
            [
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
                {"type": "function_call", "call_id": "c", "name": "f", "arguments": "{}"},
            ],
            "input[1].call_id",
            "invalid_value",
        ),
        ([], "input", "missing_required_parameter"),
        ([{"role": "system", "content": "only rules"}], "input", "missing_required_parameter"),
        (["just a string in a list"], "input[0]", "invalid_type"),
    ],
)
def test_bad_items_are_400s_naming_the_item(items, param, code):
    exc = refused(input=items)
    assert (exc.param, exc.code) == (param, code), exc.message


def test_not_json_or_not_an_object_or_no_model():
    for raw, param, code in (
        (b"{", None, "invalid_json"),
        (b"[]", None, "invalid_json"),
        (b'{"input": "hi"}', "model", "missing_required_parameter"),
        (b'{"model": "  ", "input": "hi"}', "model", "invalid_value"),
        (b'{"model": "m"}', "input", "missing_required_parameter"),
        (b'{"model": "m", "input": 5}', "input", "invalid_type"),
    ):
        with pytest.raises(InvalidRequest) as exc:
            parse_responses(raw)
        assert (exc.value.param, exc.value.code) == (param, code), raw


def test_documented_fields_that_cannot_change_the_answer_are_accepted():
    values = {"include": ["reasoning.encrypted_content"], "truncation": "disabled", "service_tier": "auto"}
    extra = {name: values.get(name, "x") for name in IGNORED}
    parsed = parse(input="hi", store=False, user="u-1", metadata={"a": "b"}, parallel_tool_calls=False, **extra)
    assert parsed.request.messages[-1].content == "hi"
    assert parsed.echo["metadata"] == {"a": "b"} and parsed.echo["parallel_tool_calls"] is False
    assert parse(input="hi", store=True, reasoning={"effort": "low", "summary": "auto"}, text={"verbosity": "low"})


def test_images_become_image_parts_of_user_turns_and_tool_results():
    png = "data:image/png;base64,iVBORw0KGgo="
    parsed = parse(
        input=[
            {
                "role": "user",
                "content": [
                    {"type": "input_text", "text": "What is this?"},
                    {"type": "input_image", "image_url": "https://example.com/cat.png", "detail": "low"},
                ],
            },
            {"type": "function_call", "call_id": "c1", "name": "snap", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "c1", "output": [{"type": "input_image", "image_url": png}]},
        ]
    )
    user, _, tool = parsed.request.messages
    assert user.content is None and user.parts == (
        TextPart(text="What is this?"),
        ImagePart(url="https://example.com/cat.png", detail="low"),
    )
    assert tool.parts == (ImagePart(data="iVBORw0KGgo=", media_type="image/png"),) and tool.tool_call_id == "c1"


@pytest.mark.parametrize(
    ("part", "param"),
    [
        ({"type": "input_image", "file_id": "file_1"}, "input[0].content[0].file_id"),
        ({"type": "input_image"}, "input[0].content[0].image_url"),
        ({"type": "input_image", "image_url": "data:image/png;base64,%%%"}, "input[0].content[0].image_url"),
    ],
)
def test_images_byok_cannot_send_are_refused(part, param):
    assert refused(input=[{"role": "user", "content": [part]}]).param == param


def test_images_only_where_a_provider_takes_them():
    image = {"type": "input_image", "image_url": "https://x/y.png"}
    assert refused(input=[{"role": "system", "content": [image]}, {"role": "user", "content": "hi"}]).code == (
        "unsupported_content"
    )


@pytest.mark.parametrize(
    ("fmt", "expected"),
    [
        (
            {"type": "json_schema", "name": "out", "schema": {"type": "object"}, "strict": True, "description": "d"},
            ResponseFormat(type="json_schema", name="out", schema={"type": "object"}, strict=True, description="d"),
        ),
        ({"type": "json_object"}, ResponseFormat(type="json_object")),
        ({"type": "text"}, None),
    ],
)
def test_text_format_becomes_response_format(fmt, expected):
    parsed = parse(input="hi", text={"format": fmt})
    assert parsed.request.response_format == expected
    assert parsed.echo["text"]["format"]["type"] == fmt["type"]


def test_effort_user_metadata_parallel_calls_and_strict_are_passed_on():
    req = parse(
        input="hi",
        reasoning={"effort": "xhigh"},
        user="u-1",
        metadata={"a": "b"},
        parallel_tool_calls=False,
        tools=[WEATHER],
    ).request
    assert (req.reasoning_effort, req.user, req.metadata, req.parallel_tool_calls) == ("high", "u-1", {"a": "b"}, False)
    assert req.tools[0].strict is True
    assert parse(input="hi", reasoning={"effort": "low"}).request.reasoning_effort == "low"
    assert parse(input="hi").request.reasoning_effort is None


def test_reasoning_items_come_back_as_the_turns_thinking():
    signed = (Thinking(text="Let me think.", signature="sig-A"), Thinking(redacted="opaque"))
    carry = responses_carry.pack(signed, {"call_1": "gem-sig"})
    parsed = parse(
        input=[
            {"role": "user", "content": "Weather?"},
            {
                "type": "reasoning",
                "id": "rs_1",
                "summary": [{"type": "summary_text", "text": "Let me think."}],
                "encrypted_content": carry,
            },
            {"type": "function_call", "call_id": "call_1", "name": "get_weather", "arguments": "{}"},
            {"type": "function_call_output", "call_id": "call_1", "output": "sunny"},
            {"type": "reasoning", "id": "rs_2", "summary": [{"type": "summary_text", "text": "plain"}]},
            {"type": "reasoning", "id": "rs_3", "summary": [], "encrypted_content": "gAAAA-openai-own-blob"},
            {
                "role": "assistant",
                "content": [
                    {"type": "output_text", "text": "It is sunny."},
                    {"type": "refusal", "refusal": "No more."},
                ],
            },
            {"role": "user", "content": "Thanks"},
        ],
        tools=[WEATHER],
    )
    first, second = (m for m in parsed.request.messages if m.role == "assistant")
    assert first.thinking == signed and first.tool_calls[0].thought_signature == "gem-sig"
    assert second.thinking == (Thinking(text="plain"),) and second.content == "It is sunny.\nNo more."


def test_a_broken_carry_is_ignored_not_an_error():
    tampered = "byok1." + base64.urlsafe_b64encode(json.dumps({"t": [[1, None, None]], "c": {}}).encode()).decode()
    for blob in ("byok1.%%%", "byok1." + "e30=", None, "", tampered):
        assert responses_carry.unpack(blob) == ((), {})


def test_a_dict_body_parses_too():
    assert parse_responses({"model": "m", "input": "hi"}).request.model == "m"
