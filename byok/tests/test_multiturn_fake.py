"""Multi-turn conversations with tools through byok's handler against the fake provider, which checks what the
real APIs check: Anthropic refuses a tool loop whose last assistant turn lost its signed thinking block (or
carries a signature it did not make), Gemini 3 refuses a current-turn function call without its thought
signature. Each test also shows the fake refusing the mangled history, so a pass means byok carried the proof."""

from __future__ import annotations

from dataclasses import replace

import pytest
from asgiref.sync import sync_to_async

from byok import registry
from byok.exceptions import BadRequestError
from byok.providers.collect import ResponseBuilder
from byok.providers.types import ChatRequest, Message, StreamDone, StreamEvent, Thinking, Tool
from devtools.fakeprovider import anthropic_format, gemini_format
from devtools.fakeprovider.server import start_server

pytestmark = pytest.mark.django_db(transaction=True)

WEATHER = Tool(
    name="get_weather",
    parameters={"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]},
)
ASK = Message(role="user", content="What is the weather in Paris?")


@pytest.fixture
async def fake(settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    runner, url = await start_server()
    yield url
    await runner.cleanup()


async def register(kind: str, base_url: str, model: str) -> None:
    await sync_to_async(registry.register_provider)(
        kind=kind, base_url=base_url, api_key=f"sk-{kind}-0123456789abcdef", default_model=model
    )


def next_turn(answer, result_text="15 degrees and sunny") -> tuple[Message, ...]:
    call = answer.tool_calls[0]
    result = Message(role="tool", tool_call_id=call.id, name=call.name, content=result_text)
    return (ASK, answer.to_message(), result)


async def test_anthropic_thinking_signature_survives_a_tool_loop(handler, fake):
    await register("anthropic", f"{fake}/anthropic", "claude-sonnet-4-20250514")
    first = await handler.chat(ChatRequest(model="", messages=(ASK,), tools=(WEATHER,), reasoning_effort="low"))
    answer = first.response
    assert answer.tool_calls and answer.thinking[0].signature == anthropic_format.SIGNATURE
    second = await handler.chat(
        ChatRequest(model="", messages=next_turn(answer), tools=(WEATHER,), reasoning_effort="low")
    )
    assert second.response.text and second.response.finish_reason == "stop"
    # The same history without the thinking block, or with a forged signature, is refused upstream.
    for thinking in ((), (Thinking(text="forged", signature="bogus"),)):
        mangled = replace(answer, thinking=thinking)
        with pytest.raises(BadRequestError, match="thinking|signature"):
            await handler.chat(
                ChatRequest(model="", messages=next_turn(mangled), tools=(WEATHER,), reasoning_effort="low")
            )


async def test_anthropic_streamed_thinking_signature_survives_a_tool_loop(handler, fake):
    await register("anthropic", f"{fake}/anthropic", "claude-sonnet-4-20250514")
    builder = ResponseBuilder()
    async for ev in handler.stream(ChatRequest(model="", messages=(ASK,), tools=(WEATHER,), reasoning_effort="low")):
        if isinstance(ev, StreamEvent):
            builder.add(ev)
        assert not isinstance(ev, StreamDone) or ev.finish_reason == "tool_calls"
    answer = builder.response()
    assert answer.thinking and answer.thinking[0].signature == anthropic_format.SIGNATURE
    second = await handler.chat(
        ChatRequest(model="", messages=next_turn(answer), tools=(WEATHER,), reasoning_effort="low")
    )
    assert second.response.text


@pytest.mark.parametrize("stream", [False, True])
async def test_gemini_3_thought_signature_survives_a_tool_loop(handler, fake, stream):
    await register("gemini", f"{fake}/v1beta", "gemini-3-pro-preview")
    req = ChatRequest(model="", messages=(ASK,), tools=(WEATHER,))
    if stream:
        builder = ResponseBuilder()
        async for ev in handler.stream(req):
            if isinstance(ev, StreamEvent):
                builder.add(ev)
        answer = builder.response()
    else:
        answer = (await handler.chat(req)).response
    assert answer.tool_calls[0].thought_signature == gemini_format.SIGNATURE
    second = await handler.chat(ChatRequest(model="", messages=next_turn(answer), tools=(WEATHER,)))
    assert second.response.text
    forged = replace(answer, tool_calls=(replace(answer.tool_calls[0], thought_signature="bogus"),))
    with pytest.raises(BadRequestError, match="thought_signature"):
        await handler.chat(ChatRequest(model="", messages=next_turn(forged), tools=(WEATHER,)))
    # History written by another provider has no signature: byok sends Google's documented placeholder.
    foreign = replace(answer, tool_calls=(replace(answer.tool_calls[0], thought_signature=None),))
    assert (await handler.chat(ChatRequest(model="", messages=next_turn(foreign), tools=(WEATHER,)))).response.text
