"""One set of request rules in every chat dialect (byok.schemas.rules): control characters, number ranges,
stop count, message cap, content-part joining. Issue 11 points 1 (request side) and 4."""

from __future__ import annotations

import json

import pytest
import respx
from asgiref.sync import sync_to_async
from rest_framework import exceptions as drf

from byok.api.openai_compat import InvalidRequest, parse_chat_completion
from byok.api.views_byok import parse_byok_chat
from byok.models import UsageRecord
from byok.schemas import rules
from byok.tests.chat_fakes import OPENAI, openai_json, register
from byok.ws.frames import FrameError, parse_chat_request

HI = [{"role": "user", "content": "Hi"}]


def openai_param(body: dict) -> str | None:
    with pytest.raises(InvalidRequest) as caught:
        parse_chat_completion({"model": "gpt-4o", "messages": HI, **body})
    return caught.value.param


def byok_fields(body: dict) -> set[str]:
    with pytest.raises(drf.ValidationError) as caught:
        parse_byok_chat({"messages": HI, **body})
    return set(caught.value.detail)  # type: ignore[arg-type]  # a dict of fields


def ws_message(frame: dict) -> str:
    with pytest.raises(FrameError) as caught:
        parse_chat_request({"messages": HI, **frame})
    assert caught.value.code == "bad_request"
    return caught.value.message


@pytest.mark.parametrize("char", ["\x00", "\x01", "\x1b", "\x7f", "\x85", "\t", "\n"])
def test_stored_strings_refuse_control_characters_naming_the_field(char):
    assert openai_param({"model": f"pn/m1{char}"}) == "model"
    assert openai_param({"user": f"u{char}"}) == "user"
    assert openai_param({"metadata": {"k": f"v{char}"}}) == "metadata.k"
    assert byok_fields({"model": f"m{char}"}) == {"model"}
    assert byok_fields({"provider": f"p{char}"}) == {"provider"}
    assert ws_message({"model": f"m{char}"}).startswith("model ")
    assert ws_message({"provider": f"p{char}"}).startswith("provider ")


@pytest.mark.parametrize("char", ["\x00", "\x08", "\x1b", "\x7f"])
def test_message_content_refuses_control_characters_but_tab_and_line_breaks(char):
    content = [{"role": "user", "content": f"a{char}b"}]
    assert openai_param({"messages": content}) == "messages[0].content"
    assert (
        openai_param({"messages": [{"role": "user", "content": [{"type": "text", "text": f"a{char}"}]}]})
        == "messages[0].content"
    )
    assert byok_fields({"messages": content}) == {"messages[0].content"}
    assert "messages[0].content" in ws_message({"messages": content})


def test_tab_and_line_breaks_in_content_are_fine_everywhere():
    content = [{"role": "user", "content": "a\tb\r\nc"}]
    assert parse_chat_completion({"model": "m", "messages": content}).request.messages[0].content == "a\tb\r\nc"
    assert parse_byok_chat({"messages": content})[0].messages[0].content == "a\tb\r\nc"
    assert parse_chat_request({"messages": content})[0].messages[0].content == "a\tb\r\nc"


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("max_tokens", 2**31),
        ("max_tokens", 2**63),
        ("max_tokens", 0),
        ("max_tokens", -1),
        ("max_tokens", 1.5),
        ("temperature", 2.01),
        ("temperature", -0.1),
        ("top_p", 1.5),
        ("top_p", -1),
    ],
)
def test_out_of_range_numbers_are_refused_naming_the_parameter_in_every_dialect(name, value):
    assert openai_param({name: value}) == name
    assert byok_fields({name: value}) == {name}
    assert ws_message({name: value}).startswith(f"{name} ")


def test_max_completion_tokens_has_the_same_upper_bound():
    assert openai_param({"max_completion_tokens": rules.MAX_TOKENS + 1}) == "max_completion_tokens"
    assert (
        parse_chat_completion({"model": "m", "messages": HI, "max_tokens": rules.MAX_TOKENS}).request.max_tokens
        == rules.MAX_TOKENS
    )


def test_stop_count_and_message_cap_are_the_same_everywhere():
    five = ["a", "b", "c", "d", "e"]
    assert openai_param({"stop": five}) == "stop"
    assert byok_fields({"stop": five}) == {"stop"}
    assert ws_message({"stop": five}).startswith("stop ")
    many = HI * (rules.MAX_MESSAGES + 1)
    assert openai_param({"messages": many}) == "messages"
    assert byok_fields({"messages": many}) == {"messages"}
    assert "messages" in ws_message({"messages": many})
    assert len(parse_chat_request({"messages": HI * rules.MAX_MESSAGES})[0].messages) == rules.MAX_MESSAGES


def test_content_parts_are_joined_the_same_way_everywhere():
    parts = [{"role": "user", "content": [{"type": "text", "text": "one"}, {"type": "text", "text": "two"}]}]
    assert parse_chat_completion({"model": "m", "messages": parts}).request.messages[0].content == "one\ntwo"
    assert parse_chat_request({"messages": parts})[0].messages[0].content == "one\ntwo"
    assert rules.join_parts(["one", "two"]) == "one\ntwo"


@pytest.mark.django_db(transaction=True)
async def test_huge_max_tokens_on_a_key_with_a_tpm_limit_is_a_400_not_a_503(chat_handler, api):
    await register(kind="openai", default_model="gpt-4o", key_options={"tpm": 10_000})
    with respx.mock(assert_all_called=False) as upstream:
        route = upstream.post(OPENAI).respond(json=openai_json())
        response = await api.post(
            "/v1/chat/completions",
            {"model": "gpt-4o", "messages": HI, "max_tokens": 2**31},
            content_type="application/json",
        )
        assert response.status_code == 400, response.content
        assert json.loads(response.content)["error"]["param"] == "max_tokens"
        byok = await api.post("/api/chat", {"messages": HI, "max_tokens": 2**31}, content_type="application/json")
        assert byok.status_code == 422 and "max_tokens" in json.loads(byok.content)["errors"]
        nul = await api.post(
            "/v1/chat/completions", {"model": "gpt-4o\u0000", "messages": HI}, content_type="application/json"
        )
        assert nul.status_code == 400 and json.loads(nul.content)["error"]["param"] == "model"
        assert not route.called
    assert await sync_to_async(UsageRecord.objects.count)() == 0
