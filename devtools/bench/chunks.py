"""The per-chunk cost of `BYOKHandler.stream()`, measured without a network.

Over a real socket the cost of a chunk hides in how the kernel happens to
batch reads (one read may carry one chunk or twenty), which the machine's
load changes from run to run. Here an `httpx.MockTransport` hands the same
OpenAI stream over one chunk per read, to the handler and to a minimal
direct client (httpx `aiter_lines` + orjson, what any client must at least
do). Each is timed on its own thread's CPU clock for streams of 100 chunks
and of 1 chunk; the difference, over 99, is the marginal cost of one chunk,
free of per-request work. What the handler adds is its figure less the
direct client's; byok's SSE decoder and OpenAI parser on the same bytes
show how much of it is parsing.
"""

from __future__ import annotations

import re
import time
from dataclasses import dataclass

import httpx
import orjson

from devtools.bench.load import PROMPT, chat_body
from devtools.bench.setup import MODEL, STREAM_CHUNKS
from devtools.bench.stats import percentile

__all__ = ["ChunkCost", "measure_chunk_cost", "mock_client", "sse_pieces"]


def _data(obj: dict) -> bytes:
    return b"data: " + orjson.dumps(obj) + b"\n\n"


def sse_pieces(chunks: int) -> list[bytes]:
    """An OpenAI chat stream of `chunks` content chunks, one network read per element."""
    head = {"id": "chatcmpl-bench", "object": "chat.completion.chunk", "created": 0, "model": MODEL}

    def choice(delta: dict, finish: str | None = None) -> dict:
        return {**head, "choices": [{"index": 0, "delta": delta, "finish_reason": finish}]}

    out = [_data(choice({"role": "assistant", "content": ""}))]
    out += [_data(choice({"content": f"word{i} "})) for i in range(chunks)]
    out.append(_data(choice({}, "stop")))
    out.append(
        _data(
            {
                **head,
                "choices": [],
                "usage": {"prompt_tokens": 9, "completion_tokens": chunks, "total_tokens": 9 + chunks},
            }
        )
    )
    return out + [b"data: [DONE]\n\n"]


def mock_client() -> httpx.AsyncClient:
    """An httpx client whose every POST streams `sse_pieces(n)`, n read from `chunks=<n>` in the URL (else 8)."""
    cache: dict[int, list[bytes]] = {}

    async def answer(request: httpx.Request) -> httpx.Response:
        match = re.search(r"chunks=(\d+)", request.url.path)
        n = int(match.group(1)) if match else 8
        pieces = cache.setdefault(n, sse_pieces(n))

        async def body():
            for piece in pieces:
                yield piece

        return httpx.Response(200, headers={"content-type": "text/event-stream"}, content=body())

    return httpx.AsyncClient(transport=httpx.MockTransport(answer))


@dataclass(frozen=True, slots=True)
class ChunkCost:
    """Marginal CPU per chunk (µs): through the handler, by a minimal direct client, by byok's parser alone."""

    handler_us: float
    direct_us: float
    parser_us: float

    @property
    def added_us(self) -> float:
        return self.handler_us - self.direct_us


def _cpu() -> float:
    return time.thread_time()


async def measure_chunk_cost(*, streams: int = 60, time_limit: float = 15.0) -> ChunkCost:
    """Time 100-chunk and 1-chunk streams through the handler, a direct client and the parser (needs `bench1`
    and `bench100p` registered, see `devtools.bench.setup`)."""
    from byok.gateway.handler import BYOKHandler
    from byok.gateway.upstream import ClientRegistry
    from byok.providers import get_adapter
    from byok.providers.types import ChatRequest, Message

    handler = BYOKHandler(clients=ClientRegistry(factory=mock_client))
    client = mock_client()
    adapter = get_adapter("openai")
    provider = {STREAM_CHUNKS: "bench100p", 1: "bench1"}

    async def through_handler(n: int) -> float:
        req = ChatRequest(model=f"{provider[n]}/{MODEL}", messages=(Message(role="user", content=PROMPT),), stream=True)
        started = _cpu()
        async for _event in handler.stream(req, interface="bench"):
            pass
        return _cpu() - started

    async def direct(n: int) -> float:
        started = _cpu()
        async with client.stream(
            "POST", f"http://bench.invalid/cfg/chunks={n}/v1/chat/completions", json=chat_body(MODEL, stream=True)
        ) as response:
            async for line in response.aiter_lines():
                if line.startswith("data:") and not line.endswith("[DONE]"):
                    orjson.loads(line[5:])
        return _cpu() - started

    pieces = {n: sse_pieces(n) for n in provider}

    def parse(n: int) -> float:
        parser = adapter.stream_parser()
        started = _cpu()
        for piece in pieces[n]:
            parser.feed(piece)
        parser.close()
        return _cpu() - started

    times: dict[tuple[str, int], list[float]] = {}
    try:
        for round_ in range(streams + 3):
            for n in provider:
                sample = {"handler": await through_handler(n), "direct": await direct(n), "parser": parse(n)}
                if round_ >= 3:  # the first rounds warm caches and the handler's snapshot
                    for arm, value in sample.items():
                        times.setdefault((arm, n), []).append(value)
            if round_ == 3:
                deadline = time.monotonic() + time_limit
            elif round_ > 3 and time.monotonic() > deadline:
                break
    finally:
        await handler.aclose()
        await client.aclose()

    def marginal(arm: str) -> float:
        return (
            (percentile(times[(arm, STREAM_CHUNKS)], 50) - percentile(times[(arm, 1)], 50)) * 1e6 / (STREAM_CHUNKS - 1)
        )

    return ChunkCost(marginal("handler"), marginal("direct"), marginal("parser"))
