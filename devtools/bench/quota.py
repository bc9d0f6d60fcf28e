"""`python -m devtools.bench.quota [--redis URL] [-n N] [-c C]`: what the request gate costs in the shared state.

Times, on the memory backend and on Redis (a fresh key prefix, deleted afterwards):

- ``acquire``: the key pool's one check-and-count per request (the baseline every request pays);
- ``reserve + settle``: a gateway key's rpm/tpm window, the key's, its team's and its user's budgets
  reserved in one round trip, then settled in one, as a request with all of them pays;
- the same under ``C`` concurrent requests against one budget (the contended case).

Prints microseconds per request (median and p99 of N sequential requests; requests per second
under concurrency). Not a test: figures depend on the machine and its load.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid

from byok.state import MemoryStateBackend, StateBackend
from byok.state.quota import Hold, Rate

HOLDS = [
    Hold("gwkey:1", "day", None, 1_000_000.0, 2_000, 20_000_000),
    Hold("team:1", "month", 10**12, None, 2_000, 20_000_000),
    Hold("user:1", "day", 10**12, 1_000_000.0, 2_000, 20_000_000),
]
RATES = [Rate("gwkey:1", rpm=10**9, tpm=None)]


async def acquire(state: StateBackend) -> None:
    await state.acquire("1", rpm=10**9, tpm=10**12, tokens=100)


async def reserve_settle(state: StateBackend) -> None:
    got = await state.reserve(rates=RATES, tokens=100, holds=HOLDS)
    assert got.reservation is not None, got
    await state.settle(got.reservation, tokens=120, nanos=1_000)


async def sequential(state: StateBackend, op, n: int) -> tuple[float, float]:
    times = []
    for _ in range(n):
        t = time.perf_counter()
        await op(state)
        times.append((time.perf_counter() - t) * 1e6)
    times.sort()
    return statistics.median(times), times[int(len(times) * 0.99) - 1]


async def concurrent(state: StateBackend, op, n: int, c: int) -> float:
    left = n

    async def worker() -> None:
        nonlocal left
        while left > 0:
            left -= 1
            await op(state)

    t = time.perf_counter()
    await asyncio.gather(*(worker() for _ in range(c)))
    return n / (time.perf_counter() - t)


async def run(redis_url: str, n: int, c: int) -> None:
    backends: list[tuple[str, StateBackend]] = [("memory", MemoryStateBackend())]
    prefix = f"byok-bench-quota-{uuid.uuid4().hex[:8]}:"
    if redis_url:
        from byok.state.redis import RedisStateBackend

        backends.append(("redis", RedisStateBackend(redis_url, prefix=prefix)))
    try:
        for name, state in backends:
            for label, op in (("acquire", acquire), ("reserve + settle", reserve_settle)):
                await sequential(state, op, min(n, 200))  # warm up (scripts loaded, connections open)
                median, p99 = await sequential(state, op, n)
                rate = await concurrent(state, op, n, c)
                print(f"{name:7} {label:17} median {median:7.1f} µs  p99 {p99:7.1f} µs  c={c}: {rate:8.0f} req/s")
    finally:
        for name, state in backends:
            if name == "redis":
                redis = state.redis  # type: ignore[attr-defined]
                keys = [k async for k in redis.scan_iter(match=f"{prefix}*")]
                if keys:
                    await redis.delete(*keys)
            await state.close()


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(prog="python -m devtools.bench.quota", description=__doc__.splitlines()[0])
    p.add_argument("--redis", default="redis://127.0.0.1:6379/0", help="Redis URL; empty: memory only")
    p.add_argument("-n", type=int, default=2000, help="requests per measurement")
    p.add_argument("-c", type=int, default=50, help="concurrent requests")
    args = p.parse_args(argv)
    asyncio.run(run(args.redis, args.n, args.c))


if __name__ == "__main__":
    main()
