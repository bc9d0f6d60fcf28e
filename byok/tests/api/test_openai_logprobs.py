"""`logprobs` / `top_logprobs` on `POST /v1/chat/completions`: passed to OpenAI (and openai_compatible servers)
and read back by the official SDK, whole and streamed; refused with a 400 naming the parameter, before any
upstream call, where the provider cannot return them (Anthropic, Gemini, DeepSeek).
"""

from __future__ import annotations

import json

import openai
import pytest
import respx

from byok.tests.chat_fakes import OPENAI, SSE, USAGE_CHUNK, USER, chunk, openai_json, register, sse

pytestmark = pytest.mark.django_db(transaction=True)


def logprob_entry(text: str, logprob: float, *alternatives: tuple[str, float]) -> dict:
    top = [{"token": t, "logprob": lp, "bytes": list(t.encode())} for t, lp in alternatives]
    return {"token": text, "logprob": logprob, "bytes": list(text.encode()), "top_logprobs": top}


HELLO = logprob_entry("Hello", -0.01, ("Hello", -0.01), ("Hi", -4.6))
BANG = logprob_entry("!", -0.2, ("!", -0.2), (".", -1.8))


@pytest.fixture(autouse=True)
def _handler(chat_handler):
    return chat_handler


def _read(logprobs) -> list[tuple]:
    """What the SDK parsed: (token, logprob, [(alternative, logprob)...]) per token."""
    return [(t.token, t.logprob, [(a.token, a.logprob) for a in t.top_logprobs]) for t in logprobs.content]


async def test_a_whole_answer_carries_the_upstream_logprobs(sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    answer = openai_json("Hello!")
    answer["choices"][0]["logprobs"] = {"content": [HELLO, BANG], "refusal": None}
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=answer)
        completion = await sdk.chat.completions.create(
            model="oai/gpt-4o", messages=[USER], logprobs=True, top_logprobs=2
        )
        sent = json.loads(route.calls.last.request.content)
        assert (sent["logprobs"], sent["top_logprobs"]) == (True, 2)
        choice = completion.choices[0]
        assert choice.message.content == "Hello!" and choice.logprobs.refusal is None
        assert _read(choice.logprobs) == [
            ("Hello", -0.01, [("Hello", -0.01), ("Hi", -4.6)]),
            ("!", -0.2, [("!", -0.2), (".", -1.8)]),
        ]
        assert choice.logprobs.content[0].bytes == list(b"Hello")

        route.respond(200, json=openai_json("Hello!"))  # not asked: nothing sent, null as before
        plain = await sdk.chat.completions.create(model="oai/gpt-4o", messages=[USER])
        sent = json.loads(route.calls.last.request.content)
        assert "logprobs" not in sent and "top_logprobs" not in sent
        assert plain.choices[0].logprobs is None


async def test_each_streamed_chunk_carries_its_tokens_logprobs(sdk):
    await register(kind="openai", name="oai", default_model="gpt-4o")

    def with_logprobs(delta, *tokens):
        out = chunk(delta)
        out["choices"][0]["logprobs"] = {"content": list(tokens), "refusal": None}
        return out

    body = sse(
        chunk({"role": "assistant", "content": ""}),
        with_logprobs({"content": "Hello"}, HELLO),
        with_logprobs({"content": "!"}, BANG),
        chunk({}, "stop"),
        USAGE_CHUNK,
    )
    with respx.mock:
        route = respx.post(OPENAI).respond(200, headers=SSE, content=body)
        stream = await sdk.chat.completions.create(
            model="oai/gpt-4o", messages=[USER], logprobs=True, top_logprobs=2, stream=True
        )
        chunks = [c async for c in stream]
    sent = json.loads(route.calls.last.request.content)
    assert (sent["logprobs"], sent["top_logprobs"], sent["stream"]) == (True, 2, True)
    texts = [c.choices[0] for c in chunks if c.choices and c.choices[0].delta.content]
    assert [c.delta.content for c in texts] == ["Hello", "!"]
    assert [_read(c.logprobs) for c in texts] == [
        [("Hello", -0.01, [("Hello", -0.01), ("Hi", -4.6)])],
        [("!", -0.2, [("!", -0.2), (".", -1.8)])],
    ]
    assert chunks[-1].choices[0].finish_reason == "stop" and chunks[-1].choices[0].logprobs is None


async def test_an_openai_compatible_server_gets_them_too(sdk, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    await register(kind="openai_compatible", name="local", base_url="http://127.0.0.1:9999/v1", default_model="m")
    answer = openai_json("Hello")
    answer["choices"][0]["logprobs"] = {"content": [HELLO]}
    with respx.mock:
        route = respx.post("http://127.0.0.1:9999/v1/chat/completions").respond(200, json=answer)
        completion = await sdk.chat.completions.create(model="local/m", messages=[USER], logprobs=True)
    sent = json.loads(route.calls.last.request.content)
    assert sent["logprobs"] is True and "top_logprobs" not in sent
    assert [t.token for t in completion.choices[0].logprobs.content] == ["Hello"]


@pytest.mark.parametrize(
    ("kind", "model"),
    [("anthropic", "claude-sonnet-4-5"), ("gemini", "gemini-2.5-flash"), ("deepseek", "deepseek-chat")],
)
@pytest.mark.parametrize("stream", [False, True])
async def test_providers_without_logprobs_answer_a_400_before_any_upstream_call(sdk, kind, model, stream):
    await register(kind=kind, name="p", default_model=model, api_key="AIza-sk-0123456789abcdefghij")
    with respx.mock(assert_all_called=False) as upstream:
        upstream.route().respond(200)
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.chat.completions.create(
                model=f"p/{model}", messages=[USER], logprobs=True, top_logprobs=1, stream=stream
            )
        assert upstream.calls.call_count == 0
    assert exc.value.status_code == 400 and "'logprobs'" in exc.value.message


@pytest.mark.parametrize(
    "extra",
    [{"top_logprobs": 3}, {"logprobs": False, "top_logprobs": 0}, {"logprobs": True, "top_logprobs": 21}],
)
async def test_top_logprobs_needs_logprobs_and_stays_within_twenty(sdk, extra):
    await register(kind="openai", name="oai", default_model="gpt-4o")
    with respx.mock(assert_all_called=False) as upstream:
        upstream.route().respond(200)
        with pytest.raises(openai.BadRequestError) as exc:
            await sdk.chat.completions.create(model="oai/gpt-4o", messages=[USER], **extra)
        assert upstream.calls.call_count == 0
    assert exc.value.status_code == 400 and exc.value.param == "top_logprobs"
