"""The provider-neutral vocabulary: content parts, thinking blocks, and events summed into an answer."""

from __future__ import annotations

import pytest

from byok.providers.collect import collect
from byok.providers.types import (
    CacheControl,
    ChatRequest,
    ImagePart,
    Message,
    StreamEvent,
    TextPart,
    Thinking,
    ToolCall,
    Usage,
)


def test_data_url_becomes_inline_image():
    part = ImagePart.from_url("data:image/png;base64,iVBORw0KGgo=", detail="low")
    assert (part.url, part.data, part.media_type, part.detail) == (None, "iVBORw0KGgo=", "image/png", "low")
    assert part.data_url == "data:image/png;base64,iVBORw0KGgo="


def test_http_url_is_kept():
    part = ImagePart.from_url("https://example.com/cat.png")
    assert part.url == "https://example.com/cat.png" and part.data is None


@pytest.mark.parametrize("url", ["data:image/png,rawbytes", "data:image/png;base64,@@@not base64@@@"])
def test_bad_data_url_is_refused(url):
    with pytest.raises(ValueError, match="base64"):
        ImagePart.from_url(url)


def test_message_text_and_parts_agree():
    plain = Message(role="user", content="hi")
    assert plain.text == "hi" and plain.content_parts == (TextPart(text="hi"),) and not plain.has_images
    rich = Message(
        role="user",
        parts=(TextPart(text="a", cache_control=CacheControl(ttl="1h")), ImagePart(url="u"), TextPart(text="b")),
    )
    assert rich.text == "ab" and rich.has_images and rich.content_parts == rich.parts
    assert Message(role="user", parts=(ImagePart(url="u"),)).text is None
    assert Message(role="assistant").content_parts == ()


def test_system_joins_system_parts():
    req = ChatRequest(
        model="m",
        messages=(
            Message(role="system", parts=(TextPart(text="one", cache_control=CacheControl()),)),
            Message(role="system", content="two"),
            Message(role="user", content="q"),
        ),
    )
    assert req.system == "one\n\ntwo"
    assert (req.n, req.logprobs, req.parallel_tool_calls, req.response_format) == (1, False, None, None)


def test_cache_control_anthropic_shape():
    assert CacheControl().to_anthropic() == {"type": "ephemeral"}
    assert CacheControl(ttl="1h").to_anthropic() == {"type": "ephemeral", "ttl": "1h"}


def test_usage_cache_read_alias():
    usage = Usage(input_tokens=10, cached_input_tokens=4, cache_creation_input_tokens=3)
    assert usage.cache_read_input_tokens == 4
    assert usage.to_dict()["cache_creation_input_tokens"] == 3


def test_collect_keeps_thinking_blocks_signatures_and_call_signatures():
    events = [
        StreamEvent(kind="meta", response_id="r1", model="m1"),
        StreamEvent(kind="reasoning_delta", text="Let me "),
        StreamEvent(kind="reasoning_delta", text="think."),
        StreamEvent(kind="thinking_signature", signature="SIG1"),
        StreamEvent(kind="redacted_thinking", signature="OPAQUE"),
        StreamEvent(kind="reasoning_delta", text="unsigned"),
        StreamEvent(kind="text_delta", text="Hello"),
        StreamEvent(kind="tool_call_start", index=0, tool_call_id="c1", name="f", signature="GSIG"),
        StreamEvent(kind="tool_call_delta", index=0, arguments='{"a":'),
        StreamEvent(kind="tool_call_delta", index=0, arguments="1}"),
        StreamEvent(kind="usage", usage=Usage(input_tokens=1, output_tokens=2, total_tokens=3)),
        StreamEvent(kind="finish", finish_reason="tool_calls", raw_finish_reason="tool_use"),
    ]
    answer = collect(events, provider="anthropic")
    assert answer.thinking == (
        Thinking(text="Let me think.", signature="SIG1"),
        Thinking(redacted="OPAQUE"),
        Thinking(text="unsigned"),
    )
    assert answer.reasoning == "Let me think.unsigned"
    assert answer.tool_calls == (ToolCall(id="c1", name="f", arguments='{"a":1}', thought_signature="GSIG"),)
    assert (answer.text, answer.finish_reason, answer.raw_finish_reason) == ("Hello", "tool_calls", "tool_use")
    assert (answer.model, answer.response_id, answer.provider) == ("m1", "r1", "anthropic")
    assert answer.usage is not None and answer.usage.total_tokens == 3
