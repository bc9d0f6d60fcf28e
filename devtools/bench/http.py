"""HTTP figures: the baseline (straight to the fake provider) and byok's `/v1/chat/completions` under daphne.

Both are measured by the same load (`measure_openai`): non-streaming requests
at each concurrency, 20-chunk streams as fast as the fake sends them (for
throughput), and 20-chunk streams paced 1 ms per chunk at concurrency 1 (for
time to first token and per-chunk cost). Only the URL differs. byok is
started as `make serve` starts it (`python -m byok_project.serve`), with the
server and worker count asked for; server CPU and memory are read over the
whole process tree (granian's and the launcher's workers are children).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from devtools.bench.load import Target, chat_once, make_client, run_load, stream_once
from devtools.bench.servers import Profile, tree_cpu_seconds, tree_memory
from devtools.bench.setup import BENCH_KEY, HTTP_CHUNKS, MODEL, PACED_DELAY_MS
from devtools.bench.stats import LoadResult

__all__ = ["HttpRun", "Plan", "Targets", "baseline_targets", "gateway_label", "gateway_targets", "measure_openai"]


@dataclass(frozen=True, slots=True)
class Plan:
    """How many requests at which concurrency; every run also stops starting requests after `time_limit` s."""

    levels: tuple[int, ...] = (1, 50, 200)
    chat: tuple[int, ...] = (300, 3000, 4000)  # requests per level
    stream: tuple[int, ...] = (100, 1500, 2000)  # 20-chunk streams per level
    paced: int = 20  # paced streams at concurrency 1
    time_limit: float = 12.0
    warmup: int = 20

    @classmethod
    def quick(cls) -> Plan:
        return cls(chat=(100, 800, 1000), stream=(30, 400, 500), paced=8, time_limit=4.0, warmup=10)

    @classmethod
    def short(cls) -> Plan:
        """c=1 and 50 only: the server and worker comparisons."""
        return cls(levels=(1, 50), chat=(200, 2500), stream=(50, 1200), paced=10, time_limit=8.0, warmup=20)

    @classmethod
    def smoke(cls) -> Plan:
        return cls(levels=(1, 4), chat=(5, 12), stream=(2, 4), paced=2, time_limit=3.0, warmup=2)


@dataclass(frozen=True, slots=True)
class Targets:
    chat: Target
    stream: Target
    paced: Target


def baseline_targets(fake_url: str) -> Targets:
    """Straight to the fake provider, as a client without any gateway would call it."""
    headers = {"Authorization": f"Bearer {BENCH_KEY}"}
    return Targets(
        Target(f"{fake_url}/v1/chat/completions", MODEL, headers),
        Target(f"{fake_url}/cfg/chunks={HTTP_CHUNKS}/v1/chat/completions", MODEL, headers),
        Target(f"{fake_url}/cfg/chunks={HTTP_CHUNKS};delay_ms={PACED_DELAY_MS}/v1/chat/completions", MODEL, headers),
    )


def gateway_targets(gateway_url: str, token: str) -> Targets:
    """byok's OpenAI-compatible endpoint, routed by the `<provider>/<model>` prefix to the same fake answers."""
    url = f"{gateway_url}/v1/chat/completions"
    headers = {"Authorization": f"Bearer {token}"}
    return Targets(
        Target(url, f"bench/{MODEL}", headers),
        Target(url, f"bench20/{MODEL}", headers),
        Target(url, f"bench20p/{MODEL}", headers),
    )


@dataclass(slots=True)
class HttpRun:
    """Every load of one configuration (baseline or a gateway set-up), keyed (kind, concurrency)."""

    label: str
    client: str
    results: dict[tuple[str, int], LoadResult] = field(default_factory=dict)
    memory: dict[str, float] = field(default_factory=dict)  # server's VmRSS after the runs, VmHWM
    cpu: dict[tuple[str, int], float] = field(default_factory=dict)  # server CPU seconds per request, by load
    profile: Profile | None = None
    server: str = "daphne"
    workers: int = 1
    transport: str = ""
    redis: bool = False

    def get(self, kind: str, level: int) -> LoadResult | None:
        return self.results.get((kind, level))

    def cpu_per_chunk(self, chunks: int = HTTP_CHUNKS) -> float | None:
        """Server CPU seconds per streamed chunk: a paced stream's CPU less a non-streaming request's, per chunk."""
        stream, single = self.cpu.get(("paced", 1)), self.cpu.get(("chat", 1))
        return None if stream is None or single is None else (stream - single) / chunks


async def measure_openai(
    label: str,
    targets: Targets,
    plan: Plan,
    *,
    client: str = "aiohttp",
    server_pid: int | None = None,
) -> HttpRun:
    """Run the plan's loads one after another (warm-up first); `server_pid`'s memory is read at the end."""
    run = HttpRun(label, client)
    peak_connections = max(plan.levels) + 10
    async with make_client(client, connections=peak_connections) as http:
        warm = await run_load(
            lambda: chat_once(http, targets.chat), total=plan.warmup, concurrency=5, time_limit=plan.time_limit
        )
        await run_load(
            lambda: stream_once(http, targets.stream),
            total=max(2, plan.warmup // 4),
            concurrency=2,
            time_limit=plan.time_limit,
        )
        if not warm.ok:
            raise RuntimeError(f"{label}: no warm-up request succeeded: {warm.error_kinds()}")
        steps: list[tuple[str, int, int, Target, Callable]] = []
        for level, n in zip(plan.levels, plan.chat):
            steps.append(("chat", level, n, targets.chat, chat_once))
        for level, n in zip(plan.levels, plan.stream):
            steps.append(("stream", level, n, targets.stream, stream_once))
        steps.append(("paced", 1, plan.paced, targets.paced, stream_once))
        for kind, level, n, target, one in steps:
            if level > 5 and n:  # open the level's connections first: measure answers, not TCP handshakes
                await run_load(
                    lambda one=one, target=target: one(http, target),  # type: ignore[misc]
                    total=level,
                    concurrency=level,
                    time_limit=plan.time_limit,
                )
            cpu_before = tree_cpu_seconds(server_pid) if server_pid else None
            result = run.results[(kind, level)] = await run_load(
                lambda one=one, target=target: one(http, target),  # type: ignore[misc]
                total=n,
                concurrency=level,
                time_limit=plan.time_limit,
            )
            await asyncio.sleep(0.3)  # the server writes this load's last usage batch, counted with it
            cpu_after = tree_cpu_seconds(server_pid) if server_pid else None
            if cpu_before is not None and cpu_after is not None and result.samples:
                run.cpu[(kind, level)] = (cpu_after - cpu_before) / len(result.samples)
    if server_pid:
        run.memory = tree_memory(server_pid)
    return run


def run_gateway(
    tmp: Path,
    fake_url: str,
    plan: Plan,
    *,
    transport: str,
    redis_url: str | None,
    profile_s: float = 0.0,
    server: str = "daphne",
    workers: int = 1,
) -> HttpRun:  # pragma: no cover - starts servers; run by `make bench`
    """Start byok (`server`, `workers`, `transport`, Redis or not), measure, optionally profile a c=50 load, stop it."""
    from devtools.bench.servers import profile_pid, start_gateway, summarize_profile

    label = gateway_label(server, workers, transport, bool(redis_url))
    gateway = start_gateway(tmp, fake_url, transport=transport, redis_url=redis_url, server=server, workers=workers)
    try:
        targets = gateway_targets(gateway.server.url, gateway.server.admin_token)
        run = asyncio.run(measure_openai(label, targets, plan, server_pid=gateway.pid))
        run.server, run.workers, run.transport, run.redis = server, workers, transport, bool(redis_url)
        if profile_s > 0:
            out = tmp / f"profile-{server}-{transport}-{'redis' if redis_url else 'memory'}.txt"
            spy = profile_pid(gateway.pid, profile_s, out)
            if spy is not None:
                started = time.monotonic()
                many = Plan(levels=(50,), chat=(100_000,), stream=(0,), paced=0, time_limit=profile_s, warmup=5)
                asyncio.run(measure_openai(label + " (profiled)", targets, many))
                try:
                    _, err = spy.communicate(timeout=max(5.0, profile_s - (time.monotonic() - started) + 20))
                except Exception:
                    spy.kill()
                    err = "py-spy did not finish"
                run.profile = summarize_profile(out.read_text()) if out.exists() else Profile(error=(err or "")[-300:])
        return run
    finally:
        gateway.stop()


def gateway_label(server: str, workers: int, transport: str, redis: bool) -> str:
    """`byok HTTP, daphne, default transport` (+ `, 2 workers`, `, Redis state`)."""
    return (
        f"byok HTTP, {server}, {transport} transport"
        + (f", {workers} workers" if workers > 1 else "")
        + (", Redis state" if redis else "")
    )
