"""`BYOKHandler` in this process against the fake provider, beside a direct client on the same transport.

Each round sends one request straight to the fake provider with a client of
the handler's own kind (`ClientRegistry(transport)`, so the same httpx
transport, limits and event loop) and one through `handler.chat()` /
`handler.stream()`, alternating so that drift in the machine's load hits both
alike. What the handler adds is the difference of the two medians (and p99s),
in wall-clock time and in the event loop thread's CPU time (which other
programs on the machine do not inflate).
Streams come 1 ms apart per chunk (`bench100p`), so the first token and every
later chunk cross the handler on their own; the difference of the mean
wall-clock intervals between chunks is kept (it shows a handler that falls
behind, not a constant delay per chunk). The per-chunk cost itself is
measured without a network, see `devtools.bench.chunks`.

Needs Django set up, a migrated database and the bench providers registered
(`devtools.bench.setup.register_bench_providers`).
"""

from __future__ import annotations

import time
from dataclasses import dataclass

import orjson

from devtools.bench.chunks import ChunkCost, measure_chunk_cost
from devtools.bench.load import PROMPT, Target, chat_body
from devtools.bench.setup import BENCH_KEY, MODEL, PACED_DELAY_MS, STREAM_CHUNKS
from devtools.bench.stats import Sample, Summary, per_chunk, summarize

__all__ = ["InProcessResult", "measure_inprocess"]


@dataclass(slots=True)
class InProcessResult:
    transport: str
    direct_chat: Summary
    handler_chat: Summary
    direct_ttft: Summary
    handler_ttft: Summary
    direct_chunk: Summary
    handler_chunk: Summary
    chunk_cost: ChunkCost
    direct_chat_cpu: Summary
    handler_chat_cpu: Summary
    errors: int
    chunks_per_stream: int

    @property
    def added_chat_median_ms(self) -> float:
        return (self.handler_chat.median - self.direct_chat.median) * 1000

    @property
    def added_chat_p99_ms(self) -> float:
        return (self.handler_chat.p99 - self.direct_chat.p99) * 1000

    @property
    def added_chat_cpu_ms(self) -> float:
        """CPU the handler adds to a non-streaming request on the event loop's thread (ms), median."""
        return (self.handler_chat_cpu.median - self.direct_chat_cpu.median) * 1000

    @property
    def added_ttft_ms(self) -> float:
        return (self.handler_ttft.median - self.direct_ttft.median) * 1000

    @property
    def added_chunk_us(self) -> float:
        """CPU the handler adds per streamed chunk (µs), network-free."""
        return self.chunk_cost.added_us

    @property
    def parsing_chunk_us(self) -> float:
        """The part of a chunk's cost that is byok's SSE decoding and OpenAI stream parsing (µs)."""
        return self.chunk_cost.parser_us

    @property
    def added_interval_us(self) -> float:
        """What the handler adds to the wall-clock interval between chunks (µs); noisy on a busy machine."""
        return (self.handler_chunk.median - self.direct_chunk.median) * 1e6


async def _direct_chat(client, target: Target) -> Sample:
    started, cpu = time.perf_counter(), time.thread_time()
    response = await client.post(target.url, json=chat_body(target.model, stream=False), headers=target.headers)
    body = orjson.loads(await response.aread())
    return Sample(
        response.status_code == 200 and bool(body["choices"][0]["message"]["content"]),
        time.perf_counter() - started,
        cpu=time.thread_time() - cpu,
    )


async def _direct_stream(client, target: Target) -> Sample:
    started = time.perf_counter()
    first = last = None
    chunks = 0
    async with client.stream(
        "POST", target.url, json=chat_body(target.model, stream=True), headers=target.headers
    ) as response:
        async for line in response.aiter_lines():
            if not line.startswith("data:") or line.endswith("[DONE]"):
                continue
            choices = orjson.loads(line[5:]).get("choices")
            if choices and choices[0].get("delta", {}).get("content"):
                last = time.perf_counter() - started
                first = first if first is not None else last
                chunks += 1
    return Sample(response.status_code == 200 and chunks > 0, time.perf_counter() - started, first, last, chunks)


def _request(provider: str, *, stream: bool):
    from byok.providers.types import ChatRequest, Message

    return ChatRequest(model=f"{provider}/{MODEL}", messages=(Message(role="user", content=PROMPT),), stream=stream)


async def _handler_chat(handler) -> Sample:
    started, cpu = time.perf_counter(), time.thread_time()
    result = await handler.chat(_request("bench", stream=False), interface="bench")
    return Sample(bool(result.response.text), time.perf_counter() - started, cpu=time.thread_time() - cpu)


async def _handler_stream(handler) -> Sample:
    from byok.providers.types import StreamDone

    started = time.perf_counter()
    first = last = None
    chunks = 0
    ok = False
    async for event in handler.stream(_request("bench100p", stream=True), interface="bench"):
        if event.kind == "text_delta":
            last = time.perf_counter() - started
            first = first if first is not None else last
            chunks += 1
        elif isinstance(event, StreamDone):
            ok = True
    return Sample(ok and chunks > 0, time.perf_counter() - started, first, last, chunks)


async def measure_inprocess(
    fake_url: str,
    transport: str,
    *,
    requests: int = 300,
    streams: int = 60,
    time_limit: float = 30.0,
    warmup: int = 10,
    chunk_streams: int = 60,
) -> InProcessResult:
    """Alternate direct and handler requests (then streams) on one event loop; bounded by count and time."""
    from byok.gateway.handler import BYOKHandler
    from byok.gateway.upstream import ClientRegistry

    handler = BYOKHandler(clients=ClientRegistry(transport))
    direct_clients = ClientRegistry(transport)
    client = direct_clients.get()
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    chat_target = Target(f"{fake_url}/v1/chat/completions", MODEL, headers)
    stream_target = Target(
        f"{fake_url}/cfg/chunks={STREAM_CHUNKS};delay_ms={PACED_DELAY_MS}/v1/chat/completions", MODEL, headers
    )
    direct_chat: list[Sample] = []
    handler_chat: list[Sample] = []
    direct_stream: list[Sample] = []
    handler_stream: list[Sample] = []
    try:
        for _ in range(warmup):
            await _direct_chat(client, chat_target)
            await _handler_chat(handler)
            await _direct_stream(client, stream_target)
            await _handler_stream(handler)
        deadline = time.perf_counter() + time_limit / 2
        for _ in range(requests):
            if time.perf_counter() > deadline:
                break
            direct_chat.append(await _direct_chat(client, chat_target))
            handler_chat.append(await _handler_chat(handler))
        deadline = time.perf_counter() + time_limit / 2
        for _ in range(streams):
            if time.perf_counter() > deadline:
                break
            direct_stream.append(await _direct_stream(client, stream_target))
            handler_stream.append(await _handler_stream(handler))
    finally:
        await handler.aclose()
        await direct_clients.aclose()
    chunk_cost = await measure_chunk_cost(streams=chunk_streams, time_limit=time_limit / 3)
    samples = direct_chat + handler_chat + direct_stream + handler_stream
    ok = [s for s in handler_stream if s.ok]
    return InProcessResult(
        transport=transport,
        direct_chat=summarize(s.latency for s in direct_chat if s.ok),
        handler_chat=summarize(s.latency for s in handler_chat if s.ok),
        direct_ttft=summarize(s.ttft for s in direct_stream if s.ok),
        handler_ttft=summarize(s.ttft for s in handler_stream if s.ok),
        direct_chunk=per_chunk(direct_stream),
        handler_chunk=per_chunk(handler_stream),
        chunk_cost=chunk_cost,
        direct_chat_cpu=summarize(s.cpu for s in direct_chat if s.ok),
        handler_chat_cpu=summarize(s.cpu for s in handler_chat if s.ok),
        errors=sum(1 for s in samples if not s.ok),
        chunks_per_stream=ok[0].chunks if ok else 0,
    )
