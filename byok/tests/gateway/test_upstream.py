"""byok.gateway.upstream: send() and open_stream() over httpx.MockTransport; header feedback; closing on failure."""

from __future__ import annotations

import httpx
import orjson
import pytest

from byok.exceptions import (
    AuthError,
    RateLimitError,
    ServerError,
    StreamInterruptedError,
    UpstreamConnectionError,
    UpstreamTimeout,
)
from byok.gateway.keypool import KeyPool
from byok.gateway.upstream import ClientRegistry, Upstream
from byok.providers.types import ChatRequest, Message
from byok.state import MemoryStateBackend
from byok.tests.gateway.factories import key_config, provider_config

NOW = 1_700_000_000.0
REQ = ChatRequest(model="gpt-4o", messages=(Message(role="user", content="hi"),))
ANSWER = {
    "id": "c1",
    "object": "chat.completion",
    "model": "gpt-4o-2024",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "hello"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}


def _sse(*chunks: dict, done: bool = True) -> bytes:
    body = b"".join(b"data: " + orjson.dumps(c) + b"\n\n" for c in chunks)
    return body + (b"data: [DONE]\n\n" if done else b"")


def _delta(text: str | None = None, finish: str | None = None) -> dict:
    delta = {"content": text} if text is not None else {}
    return {"id": "c1", "model": "gpt-4o-2024", "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}


class Tracked(httpx.AsyncByteStream):
    """A response body that remembers whether it was closed."""

    def __init__(self, parts: list[bytes], fail_after: int | None = None) -> None:
        self.parts, self.fail_after, self.closed = parts, fail_after, False

    async def __aiter__(self):
        for i, part in enumerate(self.parts):
            if self.fail_after is not None and i >= self.fail_after:
                raise httpx.ReadError("connection reset")
            yield part

    async def aclose(self) -> None:
        self.closed = True


def _upstream(handler) -> tuple[Upstream, MemoryStateBackend, list[httpx.Request]]:
    seen: list[httpx.Request] = []

    def record(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return handler(request)

    state = MemoryStateBackend(now=lambda: NOW)
    clients = ClientRegistry(factory=lambda: httpx.AsyncClient(transport=httpx.MockTransport(record)))
    return Upstream(clients, KeyPool(), state=lambda: state, clock=lambda: 5.0, wall=lambda: NOW), state, seen


PROVIDER = provider_config(keys=(key_config(1), key_config(2)))
KEY = PROVIDER.keys[0]


async def test_send_returns_the_parsed_answer_with_the_key_in_the_header_only():
    upstream, _, seen = _upstream(lambda r: httpx.Response(200, json=ANSWER))
    answer = await upstream.send(PROVIDER, KEY, "sk-secret-0001", REQ)
    assert (answer.text, answer.usage.total_tokens, answer.model) == ("hello", 4, "gpt-4o-2024")
    assert seen[0].headers["authorization"] == "Bearer sk-secret-0001" and b"sk-secret" not in seen[0].content
    assert str(seen[0].url) == "https://api.openai.test/v1/chat/completions"
    await upstream.aclose()


async def test_send_feeds_remaining_headers_back_to_the_pool():
    headers = {"x-ratelimit-remaining-requests": "0", "x-ratelimit-reset-requests": "30s"}
    upstream, state, _ = _upstream(lambda r: httpx.Response(200, json=ANSWER, headers=headers))
    await upstream.send(PROVIDER, KEY, "sk-secret-0001", REQ)
    key, _ = await upstream.pool.pick(state, PROVIDER, tokens=1, exclude=set(), now=NOW)
    assert key is not None and key.id == 2  # key 1 has no requests left until the reset


@pytest.mark.parametrize(
    "status, body, error",
    [
        (401, {"error": {"message": "bad key", "type": "invalid_request_error", "code": "invalid_api_key"}}, AuthError),
        (429, {"error": {"message": "slow down", "type": "requests", "code": "rate_limit_exceeded"}}, RateLimitError),
        (503, {"error": {"message": "down"}}, ServerError),
    ],
)
async def test_an_error_status_is_classified_by_the_adapter(status, body, error):
    upstream, _, _ = _upstream(lambda r: httpx.Response(status, json=body))
    with pytest.raises(error):
        await upstream.send(PROVIDER, KEY, "sk-secret-0001", REQ)
    body_stream = Tracked([orjson.dumps(body)])
    upstream, _, _ = _upstream(lambda r: httpx.Response(status, stream=body_stream))
    with pytest.raises(error):
        await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    assert body_stream.closed  # read and closed before any retry


@pytest.mark.parametrize(
    "raised, mapped",
    [
        (httpx.ConnectError("refused"), UpstreamConnectionError),
        (httpx.ReadTimeout("slow"), UpstreamTimeout),
    ],
)
async def test_transport_errors_become_byok_errors_without_the_url(raised, mapped):
    def fail(request):
        raise raised

    upstream, _, _ = _upstream(fail)
    for call in (upstream.send, upstream.open_stream):
        with pytest.raises(mapped) as info:
            await call(PROVIDER, KEY, "sk-secret-0001", REQ)
        assert "openai.test" not in str(info.value) and "sk-secret" not in str(info.value)


async def test_open_stream_reads_up_to_the_first_token_then_replays_everything():
    body = Tracked(
        [_sse(_delta(""), done=False), _sse(_delta("Hel"), done=False), _sse(_delta("lo"), _delta(finish="stop"))]
    )
    upstream, _, _ = _upstream(
        lambda r: httpx.Response(200, stream=body, headers={"content-type": "text/event-stream"})
    )
    stream = await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    assert stream.first_token_at == 5.0 and stream.model == "gpt-4o-2024" and not stream.ended
    assert not body.closed  # the rest is still to come
    kinds = [(e.kind, e.text) async for e in stream.events() if e.kind in ("text_delta", "finish")]
    assert kinds == [("text_delta", "Hel"), ("text_delta", "lo"), ("finish", None)]
    await stream.aclose()
    await stream.aclose()  # idempotent
    assert body.closed


async def test_a_stream_that_ends_before_its_first_token_without_finishing_raises_and_is_closed():
    body = Tracked([_sse(_delta(""), done=False)])
    upstream, _, _ = _upstream(lambda r: httpx.Response(200, stream=body))
    with pytest.raises(StreamInterruptedError):
        await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    assert body.closed


async def test_a_connection_dropped_before_the_first_token_raises_and_is_closed():
    body = Tracked([_sse(_delta(""), done=False), b"never sent"], fail_after=1)
    upstream, _, _ = _upstream(lambda r: httpx.Response(200, stream=body))
    with pytest.raises(UpstreamConnectionError):
        await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    assert body.closed


async def test_a_connection_dropped_after_the_first_token_raises_from_events():
    body = Tracked([_sse(_delta("Hel"), done=False), b"never sent"], fail_after=1)
    upstream, _, _ = _upstream(lambda r: httpx.Response(200, stream=body))
    stream = await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    got = []
    with pytest.raises(UpstreamConnectionError):
        async for event in stream.events():
            got.append(event.kind)
    assert "text_delta" in got
    await stream.aclose()
    assert body.closed


async def test_a_stream_that_ends_without_its_end_marker_after_tokens_is_interrupted():
    body = Tracked([_sse(_delta("Hel"), done=False)])
    upstream, _, _ = _upstream(lambda r: httpx.Response(200, stream=body))
    stream = await upstream.open_stream(PROVIDER, KEY, "sk-secret-0001", REQ)
    with pytest.raises(StreamInterruptedError):
        async for _ in stream.events():
            pass
    await stream.aclose()


async def test_one_client_per_event_loop_and_a_closed_one_is_replaced():
    made = []

    def factory():
        made.append(httpx.AsyncClient(transport=httpx.MockTransport(lambda r: httpx.Response(200))))
        return made[-1]

    clients = ClientRegistry(factory=factory)
    assert clients.get() is clients.get()
    await clients.aclose()
    assert clients.get() is not made[0] and len(made) == 2
    await clients.aclose()
