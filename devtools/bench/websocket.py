"""Websocket figures: how many concurrent streaming sockets one daphne process holds, and what a chunk costs.

The ramp opens `n` sockets (authenticated with an `auth` frame, each waiting
for `chat.ready`), then starts one paced stream on every socket at once and
waits for every `chat.done`. A step passes when every socket got its whole
answer; the ramp stops at the first step that does not, or when its time is
up. The per-chunk figure is how much later than a direct stream of the same
pacing an answer ends, divided by its chunks; the server's RSS is sampled
while the streams run.

    result = await ramp(ws_url, token, steps=(100, 500, 1000), server_pid=pid, direct_s=5.02, chunks=50)
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field

import orjson

from devtools.bench.servers import tree_memory
from devtools.bench.stats import Sample, Summary, summarize

__all__ = ["WsResult", "WsStep", "ramp", "stream_over_socket"]

CONNECT_CONCURRENCY = 50
PROMPT = [{"role": "user", "content": "Stream a short answer about foxes."}]


@dataclass(slots=True)
class WsStep:
    sockets: int
    ok: int = 0
    failed: int = 0
    errors: dict[str, int] = field(default_factory=dict)
    connect_s: float = 0.0  # opening and authenticating every socket
    duration: Summary | None = None  # per stream, request sent -> chat.done
    ttft: Summary | None = None
    added_chunk_ms: float = float("nan")
    rss_peak: float = 0.0  # server VmRSS sampled during the streams (MiB)

    @property
    def passed(self) -> bool:
        return self.failed == 0 and self.ok == self.sockets


@dataclass(slots=True)
class WsResult:
    single: list[Sample] = field(default_factory=list)  # 1 ms-paced streams one after another on one socket
    steps: list[WsStep] = field(default_factory=list)
    stopped: str = ""  # why the ramp ended before its last step, if it did
    memory: dict[str, float] = field(default_factory=dict)
    profile: object | None = None  # a servers.Profile of one step, when the bench took one

    @property
    def held(self) -> int:
        """The most sockets of a step that passed."""
        return max((s.sockets for s in self.steps if s.passed), default=0)


async def _open(session, url: str, token: str, timeout: float):
    import aiohttp

    ws = await asyncio.wait_for(
        session.ws_connect(url, timeout=aiohttp.ClientWSTimeout(ws_close=timeout), max_msg_size=0),
        timeout,
    )
    await ws.send_str(orjson.dumps({"type": "auth", "token": token}).decode())  # text frames: binary ones are refused
    while True:
        msg = await asyncio.wait_for(ws.receive(), timeout)
        if msg.type.name != "TEXT":
            raise ConnectionError(f"socket closed during auth ({msg.type.name})")
        frame = orjson.loads(msg.data)
        if frame.get("type") == "chat.ready":
            return ws
        if frame.get("type") == "chat.error":
            raise ConnectionError(f"auth refused: {frame.get('code')}")


async def stream_over_socket(ws, rid: str, model: str, timeout: float) -> Sample:
    """Send one `chat.request` on an open socket and read its frames up to the terminal one."""
    started = time.perf_counter()
    first = last = None
    chunks = 0
    await ws.send_str(orjson.dumps({"type": "chat.request", "id": rid, "model": model, "messages": PROMPT}).decode())
    deadline = started + timeout
    while True:
        msg = await asyncio.wait_for(ws.receive(), max(0.1, deadline - time.perf_counter()))
        if msg.type.name != "TEXT":
            return Sample(
                False, time.perf_counter() - started, first, last, chunks, error=f"socket {msg.type.name.lower()}"
            )
        frame = orjson.loads(msg.data)
        kind = frame.get("type")
        if frame.get("id") != rid:
            continue
        if kind == "chat.delta" and frame.get("text"):
            last = time.perf_counter() - started
            first = first if first is not None else last
            chunks += 1
        elif kind == "chat.done":
            return Sample(chunks > 0, time.perf_counter() - started, first, last, chunks)
        elif kind == "chat.error":
            return Sample(False, time.perf_counter() - started, first, last, chunks, error=str(frame.get("code")))


async def _sample_rss(pid: int | None, stop: asyncio.Event, into: list[float]) -> None:
    while pid and not stop.is_set():
        mem = tree_memory(pid)  # the largest process of the tree: granian serves from a child
        if "VmRSS" in mem:
            into.append(mem["VmRSS"])
        try:
            await asyncio.wait_for(stop.wait(), 0.25)
        except TimeoutError:
            pass


async def run_step(
    session,
    url: str,
    token: str,
    sockets: int,
    *,
    model: str,
    direct_s: float,
    chunks: int,
    server_pid: int | None,
    timeout: float,
    on_start: Callable[[int], None] | None = None,
) -> WsStep:
    """One step of the ramp: `sockets` sockets, one stream each, all at once."""
    step = WsStep(sockets)
    gate = asyncio.Semaphore(CONNECT_CONCURRENCY)
    go = asyncio.Event()
    opened: list[object] = []
    settled = 0
    all_settled = asyncio.Event()

    def settle() -> None:
        nonlocal settled
        settled += 1
        if settled == sockets:
            all_settled.set()

    async def one(i: int) -> Sample:
        ws = None
        try:
            async with gate:
                ws = await _open(session, url, token, timeout=30)
            opened.append(ws)
            settle()
            await go.wait()
            return await stream_over_socket(ws, f"s{i}", model, timeout)
        except Exception as exc:  # each failure is counted, never raised
            if ws is None:
                settle()
            return Sample(False, 0.0, error=type(exc).__name__ if not str(exc) else f"{type(exc).__name__}: {exc}"[:80])
        finally:
            if ws is not None:
                await ws.close()

    started = time.perf_counter()
    tasks = [asyncio.ensure_future(one(i)) for i in range(sockets)]
    try:
        await asyncio.wait_for(all_settled.wait(), timeout=60)
    except TimeoutError:
        pass
    step.connect_s = time.perf_counter() - started
    rss: list[float] = []
    stop = asyncio.Event()
    sampler = asyncio.ensure_future(_sample_rss(server_pid, stop, rss))
    if on_start:
        on_start(sockets)
    go.set()
    done, pending = await asyncio.wait(tasks, timeout=timeout + 30)
    for task in pending:
        task.cancel()
    stop.set()
    await sampler
    samples = [t.result() for t in done if not t.cancelled() and t.exception() is None]
    step.failed = sockets - sum(1 for s in samples if s.ok)
    step.ok = sockets - step.failed
    for s in samples:
        if not s.ok:
            step.errors[s.error or "incomplete"] = step.errors.get(s.error or "incomplete", 0) + 1
    if pending:
        step.errors["timeout"] = len(pending)
    good = [s for s in samples if s.ok]
    step.duration = summarize(s.latency for s in good)
    step.ttft = summarize(s.ttft for s in good)
    if good and chunks:
        step.added_chunk_ms = (step.duration.median - direct_s) * 1000 / chunks
    step.rss_peak = max(rss, default=0.0)
    return step


async def ramp(
    ws_url: str,
    token: str,
    *,
    steps: tuple[int, ...],
    model: str,
    direct_s: float,
    chunks: int,
    server_pid: int | None = None,
    time_limit: float = 240.0,
    stream_timeout: float = 60.0,
    single_model: str | None = None,
    singles: int = 10,
    on_start: Callable[[int], None] | None = None,
) -> WsResult:
    """Streams on one socket (`single_model`), then the steps in order; stop at the first step that fails
    or, after the first step, once `time_limit` seconds have gone."""
    import aiohttp

    result = WsResult()
    started = time.perf_counter()
    connector = aiohttp.TCPConnector(limit=0, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:
        if single_model and singles:
            ws = await _open(session, ws_url, token, timeout=30)
            try:
                for i in range(singles + 2):
                    sample = await stream_over_socket(ws, f"single{i}", single_model, stream_timeout)
                    if i >= 2:  # the first two warm the server up
                        result.single.append(sample)
            finally:
                await ws.close()
        for n in steps:
            if result.steps and time.perf_counter() - started > time_limit:
                result.stopped = f"time limit ({time_limit:.0f} s) before {n} sockets"
                break
            step = await run_step(
                session,
                ws_url,
                token,
                n,
                model=model,
                direct_s=direct_s,
                chunks=chunks,
                server_pid=server_pid,
                timeout=stream_timeout,
                on_start=on_start,
            )
            result.steps.append(step)
            if not step.passed:
                result.stopped = f"{step.failed} of {n} sockets failed: {step.errors}"
                break
            await asyncio.sleep(0.5)
    if server_pid:
        result.memory = tree_memory(server_pid)
    return result
