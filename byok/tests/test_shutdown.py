"""SIGTERM with streams in flight: stop accepting, let short ones finish, end the rest with an error
event within the grace period, write their usage, exit. Real servers (daphne, uvicorn) and the fake provider."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from typing import Any

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from byok.tests.live import drop_live_env, live_env, manage, register, start_fake_provider, start_served

pytestmark = pytest.mark.asyncio

GRACE_S = 3
LONG, SHORT = 30, 5


async def _stream(client: httpx.AsyncClient, model: str, first: asyncio.Event, counter: list[int]) -> dict:
    """Read one OpenAI-shaped stream to its end: whether it got [DONE], a finish reason, an error code."""
    seen: dict[str, Any] = {"done": False, "finish": None, "error": None, "chunks": 0}
    body = {"model": model, "stream": True, "messages": [{"role": "user", "content": "hi"}]}
    async with client.stream("POST", "/v1/chat/completions", json=body) as response:
        assert response.status_code == 200, await response.aread()
        async for line in response.aiter_lines():
            if not line.startswith("data: "):
                continue
            data = line[6:]
            if data == "[DONE]":
                seen["done"] = True
                continue
            event = json.loads(data)
            if "error" in event:
                seen["error"] = event["error"]["code"]
                continue
            seen["chunks"] += 1
            if seen["chunks"] == 1:
                counter[0] += 1
                if counter[0] == LONG + SHORT:
                    first.set()
            for choice in event.get("choices", ()):
                seen["finish"] = choice.get("finish_reason") or seen["finish"]
    return seen


@pytest.fixture(params=["daphne", "uvicorn"])
def served(request, tmp_path):
    fake = start_fake_provider(tmp_path)
    env = live_env(tmp_path)
    register(env, "long", f"{fake.url}/cfg/chunks=1500;delay_ms=20/v1", "sk-live-long-0123456789")
    register(env, "short", f"{fake.url}/cfg/chunks=20;delay_ms=50/v1", "sk-live-short-0123456789")
    server = start_served(env, tmp_path, server=request.param, extra_env={"BYOK_SHUTDOWN_GRACE_S": str(GRACE_S)})
    yield server, env
    server.stop()
    fake.stop()
    drop_live_env(env)


async def _socket_chat(server, ready: asyncio.Event) -> tuple[list[dict], int | None]:
    """One websocket chat on the long provider, read until the server closes the socket."""
    frames: list[dict] = []
    async with connect(
        server.ws_url + "/ws/chat/", additional_headers={"Authorization": f"Token {server.admin_token}"}
    ) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "w1",
                    "provider": "long",
                    "messages": [{"role": "user", "content": "hi"}],
                }
            )
        )
        try:
            while True:
                frames.append(json.loads(await ws.recv()))
                if frames[-1]["type"] == "chat.delta":
                    ready.set()
        except ConnectionClosed:
            pass
        return frames, ws.close_code


async def test_sigterm_with_thirty_streams_in_flight_drains_within_the_grace_period(served):
    server, env = served
    first, counter = asyncio.Event(), [0]
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    auth = {"Authorization": f"Bearer {server.admin_token}"}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=60, limits=limits) as client:
        tasks = [asyncio.create_task(_stream(client, "long/gpt-4o-mini", first, counter)) for _ in range(LONG)]
        await asyncio.sleep(0.5)  # the long ones are streaming before the short ones start
        tasks += [asyncio.create_task(_stream(client, "short/gpt-4o-mini", first, counter)) for _ in range(SHORT)]
        socket_ready = asyncio.Event()
        socket_chat = asyncio.create_task(_socket_chat(server, socket_ready))
        await asyncio.wait_for(first.wait(), 60)
        await asyncio.wait_for(socket_ready.wait(), 30)
        server.proc.send_signal(signal.SIGTERM)
        stopped_at = time.monotonic()
        results = await asyncio.wait_for(asyncio.gather(*tasks), GRACE_S + 30)
        frames, close_code = await asyncio.wait_for(socket_chat, 30)
        ended_after = time.monotonic() - stopped_at
        with pytest.raises(httpx.TransportError):  # no longer accepting
            await httpx.AsyncClient(timeout=5).get(server.url + "/healthz")
    exit_code = await asyncio.to_thread(server.proc.wait, GRACE_S + 30)
    exited_after = time.monotonic() - stopped_at

    short, long = results[LONG:], results[:LONG]
    assert all(r["done"] and r["finish"] == "stop" and r["error"] is None for r in short), short
    assert all(r["error"] == "shutting_down" and r["done"] for r in long), long
    errors = [f for f in frames if f["type"] == "chat.error"]
    assert [(e["id"], e["code"], e["partial"]) for e in errors] == [("w1", "shutting_down", True)], frames[-3:]
    assert close_code == 4503
    assert GRACE_S - 0.5 <= ended_after < GRACE_S + 10, ended_after
    assert exited_after < GRACE_S + 15, exited_after
    # daphne exits 0; uvicorn re-raises the signal it caught once it has shut down (-SIGTERM).
    assert exit_code in (0, -signal.SIGTERM), server.log.read_text()[-3000:]
    assert "shutdown drained" in server.log.read_text()
    rows = manage(
        env,
        "shell",
        "-c",
        (
            "from byok.models import UsageRecord as U\n"
            "print('ROWS', U.objects.filter(provider_name='short', status='ok').count(), "
            "U.objects.filter(provider_name='long').exclude(status='ok').count())"
        ),
    )
    assert f"ROWS {SHORT} {LONG + 1}" in rows, rows  # the websocket chat's usage too
