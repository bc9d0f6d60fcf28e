"""The load generator: OpenAI-shaped requests over httpx, run at a fixed concurrency, bounded in count and time.

The same client code measures the baseline (straight to the fake provider's
`/v1/chat/completions`) and the gateway (byok's `/v1/chat/completions`): both
speak OpenAI's wire format, so the only difference between the two runs is
byok itself.

    async with make_client("aiohttp") as client:
        target = Target(url, headers={"Authorization": "Bearer ..."}, model="gpt-4o-mini")
        result = await run_load(lambda: chat_once(client, target), total=500, concurrency=50, time_limit=20)
        result.latency().median_ms, result.throughput
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

import httpx
import orjson

from devtools.bench.stats import LoadResult, Sample

__all__ = ["Target", "chat_body", "chat_once", "make_client", "run_load", "stream_once"]

PROMPT = "Write a short answer about foxes."
CLIENT_TIMEOUT_S = 60.0


@dataclass(frozen=True, slots=True)
class Target:
    """Where to send OpenAI-shaped chat requests, and as what model."""

    url: str  # the full .../chat/completions URL
    model: str
    headers: dict[str, str] = field(default_factory=dict)


def make_client(transport: str = "aiohttp", *, connections: int = 1000) -> httpx.AsyncClient:
    """An httpx client with httpx's own transport (`httpx`) or httpx-aiohttp's (`aiohttp`)."""
    limits = httpx.Limits(max_connections=connections, max_keepalive_connections=connections)
    if transport == "aiohttp":
        from httpx_aiohttp import AiohttpTransport

        transport_ = AiohttpTransport(
            limits=limits, trust_env=False
        )  # its own pool: the client's limits do not reach it
        return httpx.AsyncClient(transport=transport_, limits=limits, timeout=CLIENT_TIMEOUT_S, trust_env=False)
    if transport != "httpx":
        raise ValueError(f"unknown client transport {transport!r}: httpx or aiohttp")
    return httpx.AsyncClient(limits=limits, timeout=CLIENT_TIMEOUT_S, trust_env=False)


def chat_body(model: str, *, stream: bool) -> dict:
    body: dict = {"model": model, "messages": [{"role": "user", "content": PROMPT}]}
    if stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}
    return body


async def chat_once(client: httpx.AsyncClient, target: Target) -> Sample:
    """One non-streaming request: ok when it is a 200 with an answer's text."""
    started = time.perf_counter()
    try:
        response = await client.post(target.url, json=chat_body(target.model, stream=False), headers=target.headers)
        data = orjson.loads(response.content)
        elapsed = time.perf_counter() - started
        if response.status_code != 200:
            return Sample(False, elapsed, status=response.status_code, error=f"http {response.status_code}")
        text = data["choices"][0]["message"]["content"]
        return Sample(bool(text), elapsed, status=200, error="" if text else "empty answer")
    except Exception as exc:  # a failed request is a sample too: counted, never raised
        return Sample(False, time.perf_counter() - started, error=type(exc).__name__)


async def stream_once(client: httpx.AsyncClient, target: Target) -> Sample:
    """One streaming request: ok when it ends with `[DONE]` and no error event."""
    started = time.perf_counter()
    first = last = None
    chunks = 0
    try:
        async with client.stream(
            "POST", target.url, json=chat_body(target.model, stream=True), headers=target.headers
        ) as response:
            if response.status_code != 200:
                await response.aread()
                return Sample(
                    False,
                    time.perf_counter() - started,
                    status=response.status_code,
                    error=f"http {response.status_code}",
                )
            async for line in response.aiter_lines():
                if not line.startswith("data:"):
                    continue
                payload = line[5:].strip()
                if payload == "[DONE]":
                    return Sample(
                        chunks > 0,
                        time.perf_counter() - started,
                        first,
                        last,
                        chunks,
                        200,
                        "" if chunks else "no content",
                    )
                event = orjson.loads(payload)
                if "error" in event:
                    return Sample(False, time.perf_counter() - started, first, last, chunks, 200, "stream error event")
                choices = event.get("choices")
                if choices and choices[0].get("delta", {}).get("content"):
                    last = time.perf_counter() - started
                    if first is None:
                        first = last
                    chunks += 1
        return Sample(False, time.perf_counter() - started, first, last, chunks, 200, "no [DONE]")
    except Exception as exc:
        return Sample(False, time.perf_counter() - started, first, last, chunks, error=type(exc).__name__)


async def run_load(
    one: Callable[[], Awaitable[Sample]],
    *,
    total: int,
    concurrency: int,
    time_limit: float,
) -> LoadResult:
    """Run `one()` `total` times, `concurrency` at once, starting no new request after `time_limit` seconds.

    Requests under way at the time limit finish (each is bounded by the
    client's own timeout); past `time_limit + CLIENT_TIMEOUT_S` everything
    left is cancelled.
    """
    result = LoadResult()
    remaining = total
    started = time.perf_counter()
    deadline = started + time_limit

    async def worker() -> None:
        nonlocal remaining
        while remaining > 0:
            if time.perf_counter() >= deadline:
                result.stopped_by_time = True
                return
            remaining -= 1
            result.samples.append(await one())

    workers = [asyncio.ensure_future(worker()) for _ in range(max(1, min(concurrency, total)))]
    done, pending = await asyncio.wait(workers, timeout=time_limit + CLIENT_TIMEOUT_S)
    for task in pending:
        task.cancel()
    if pending:
        result.stopped_by_time = True
        await asyncio.gather(*pending, return_exceptions=True)
    result.wall = time.perf_counter() - started
    return result
