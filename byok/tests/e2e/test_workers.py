"""`BYOK_WORKERS=2`: two daphne processes accepting on one socket (PostgreSQL + Redis), a burst through both.

`make serve`'s launcher binds the port once and starts two daphne workers
on it; the kernel hands each connection to one of them. A burst of 200
concurrent streams through that one port must complete every answer, and
both workers must have served part of it.
"""

from __future__ import annotations

import asyncio
import os
from pathlib import Path

import openai
import pytest

from byok.tests.e2e import Cluster, cluster, register, uid
from byok.tests.live import start_served
from devtools.fakeprovider.answer import filler_text

BURST = 200


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def _children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        found += [int(c) for c in (task / "children").read_text().split()]
    return found


def _cpu(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def _one(client: openai.AsyncOpenAI, model: str) -> tuple[str, str | None]:
    stream = await client.chat.completions.create(
        model=model,
        messages=[{"role": "user", "content": "hi"}],
        stream=True,
        stream_options={"include_usage": True},
    )
    text, finish = "", None
    async for chunk in stream:
        if chunk.choices:
            text += chunk.choices[0].delta.content or ""
            finish = chunk.choices[0].finish_reason or finish
    return text, finish


async def _burst(url: str, token: str, model: str) -> list[tuple[str, str | None]]:
    # Fresh connections (no keep-alive pool shared by all), so the kernel spreads them over the workers.
    clients = [openai.AsyncOpenAI(base_url=url + "/v1", api_key=token, max_retries=0, timeout=60) for _ in range(20)]
    try:
        return await asyncio.wait_for(
            asyncio.gather(*(_one(clients[i % len(clients)], model) for i in range(BURST))),
            timeout=120,
        )
    finally:
        for client in clients:
            await client.close()


@pytest.mark.postgres
@pytest.mark.redis
def test_a_burst_through_two_workers_on_one_socket_completes_every_answer(live, tmp_path):
    server = start_served(live.env, tmp_path, server="daphne", workers=2, extra_env={"LOG_LEVEL": "WARNING"})
    try:
        workers = _children(server.proc.pid)
        assert len(workers) == 2, workers
        name = f"e2e-workers-{uid()}"
        register(
            server,
            provider="openai",
            name=name,
            api_key=f"sk-{name}-0123456789",
            base_url=f"{live.fake.url}/cfg/chunks=8;delay_ms=2/v1",
            model="gpt-4o-mini",
        )
        before = [_cpu(pid) for pid in workers]
        results = asyncio.run(_burst(server.url, server.admin_token, f"{name}/gpt-4o-mini"))
        used = [_cpu(pid) - b for pid, b in zip(workers, before, strict=True)]
    finally:
        server.stop()
    assert results == [(filler_text(8), "stop")] * BURST
    assert all(u > 0.05 for u in used), f"CPU seconds per worker during the burst: {used}"
