"""Bounded bursts: 200 concurrent streams with injected faults, spread over every server process.

- 170 go to a provider that answers 503 to 10% of requests (seeded), whose
  pool also holds a key the provider refuses: byok retries, skips the key, and
  fails over to a healthy provider, so each must end in a complete answer;
- 20 go to a provider whose streams break after 3 tokens (20 ms apart): they cannot be
  saved and must end in a clear error (partial);
- 10 go to a provider answering 500 with no fallback: a clear 502.

Then every request must have exactly one usage record with the right status.
The second burst also changes the configuration while it runs (the refused
key is a 401, which byok marks invalid; 10 keys are added through the API of
each process in turn): the audit trail must hold every change exactly once.

A burst opens up to 200 connections at once. daphne used to listen with
Twisted's default backlog of 50: on a loaded machine the event loop accepted
too slowly, the listen queue overflowed and the kernel reset a few connections
("Connection error." in the openai client). Servers now listen with
`byok_project.serve.BACKLOG` (2048), which the last test checks directly.
"""

from __future__ import annotations

import asyncio
import os
import selectors
import signal
import socket
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import openai
import pytest

from byok.tests.e2e import Cluster, cluster, db_rows, fake_fp, make_policy, records, register, uid, wait_for
from byok.tests.live import start_served
from devtools.fakeprovider.answer import filler_pieces, filler_text

BURST = 200
MESSAGES: list[Any] = [{"role": "user", "content": "Stream me an answer."}]


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


async def _one(client: openai.AsyncOpenAI, model: str) -> dict:
    """One streamed request: what the client got and the request id byok gave it."""
    out: dict = {"model": model, "rid": None, "text": "", "finish": None, "error": None, "status": 200}
    try:
        stream = await client.chat.completions.create(
            model=model,
            messages=MESSAGES,
            stream=True,
            stream_options={"include_usage": True},
        )
        async for chunk in stream:
            out["rid"] = out["rid"] or chunk.id.removeprefix("chatcmpl-")
            if chunk.choices:
                out["text"] += chunk.choices[0].delta.content or ""
                out["finish"] = chunk.choices[0].finish_reason or out["finish"]
    except openai.APIStatusError as exc:  # refused before any token
        out.update(error=exc.message, status=exc.status_code, rid=exc.response.headers.get("x-byok-request-id"))
    except openai.APIError as exc:  # an error event in the stream
        out.update(error=exc.message or "stream error")
    return out


async def _burst(live: Cluster, models: list[str]) -> list[dict]:
    clients = [
        openai.AsyncOpenAI(base_url=s.url + "/v1", api_key=s.admin_token, max_retries=0, timeout=60)
        for s in live.servers
    ]
    try:
        return await asyncio.wait_for(
            asyncio.gather(*(_one(clients[i % len(clients)], m) for i, m in enumerate(models))),
            timeout=120,
        )
    finally:
        for client in clients:
            await client.close()


@dataclass
class Burst:
    primary: str
    fallback: str
    broken: str
    down: str
    primary_key: str
    bad_key: str
    fallback_id: int

    @property
    def names(self) -> tuple[str, str, str, str]:
        return (self.primary, self.fallback, self.broken, self.down)


def _providers(live: Cluster, bad_suffix: str) -> Burst:
    n = uid()
    b = Burst(
        f"e2e-burst-{n}",
        f"e2e-burst-fb-{n}",
        f"e2e-burst-broken-{n}",
        f"e2e-burst-down-{n}",
        f"sk-e2e-{n}-primary-0000",
        f"sk-e2e-{n}-refused-{bad_suffix}",
        0,
    )
    url = live.fake.url
    p = register(
        live.a,
        provider="openai",
        name=b.primary,
        model="gpt-4o-mini",
        api_key=b.primary_key,
        base_url=f"{url}/cfg/fault=503;fault_rate=0.1;seed={n};retry_after=60/v1",
    )
    b.fallback_id = register(
        live.a,
        provider="openai",
        name=b.fallback,
        model="gpt-4o-mini",
        api_key=f"sk-e2e-{n}-fallback-0000",
        base_url=f"{url}/v1",
    )["id"]
    register(
        live.a,
        provider="openai",
        name=b.broken,
        model="gpt-4o-mini",
        api_key=f"sk-e2e-{n}-broken-0000",
        base_url=f"{url}/cfg/fault=stream_error;fault_after=3;delay_ms=20/v1",
        max_retries=0,
    )
    register(
        live.a,
        provider="openai",
        name=b.down,
        model="gpt-4o-mini",
        api_key=f"sk-e2e-{n}-down-0000",
        base_url=f"{url}/cfg/fault=500/v1",
        max_retries=0,
    )
    with live.a.admin() as admin:
        assert admin.post(f"/api/providers/{p['id']}/keys", json={"api_key": b.bad_key}).status_code == 201
    make_policy(live, f"e2e-burst-{n}", b.primary, [b.fallback], max_retries=1)
    time.sleep(1.0)  # every process has heard of the policy
    return b


def _models(b: Burst) -> list[str]:
    return [f"{b.broken if i % 10 == 0 else b.down if i % 20 == 5 else b.primary}/gpt-4o-mini" for i in range(BURST)]


def _check_answers(live: Cluster, b: Burst, results: list[dict]) -> None:
    """Every request ended in a complete answer or a clear error, and has exactly one usage record."""
    by_kind: dict[str, list[dict]] = {b.primary: [], b.broken: [], b.down: []}
    for r in results:
        by_kind[r["model"].split("/")[0]].append(r)
    assert [len(by_kind[k]) for k in (b.primary, b.broken, b.down)] == [170, 20, 10]
    for r in by_kind[b.primary]:  # saved by retries, the key pool and failover
        assert (r["error"], r["text"], r["finish"]) == (None, filler_text(8), "stop"), r
    sent = "".join(filler_pieces(8, 0)[:3])
    for r in by_kind[b.broken]:  # cannot be saved: tokens had gone out (every one of them arrives), then a clear error
        assert r["error"] and r["text"] == sent, r
    for r in by_kind[b.down]:
        assert r["status"] == 502 and r["error"], r

    # Faults really were injected: 503s at the primary, the refused key tried.
    assert [x for x in records(live.fake, key_fp=fake_fp(b.primary_key)) if x["status"] == 503]
    assert records(live.fake, key_fp=fake_fp(b.bad_key))

    ids = [r["rid"] for r in results]
    assert None not in ids and len(set(ids)) == BURST

    def usage() -> dict[str, str] | None:
        marks = ",".join(["%s"] * len(ids))
        rows = db_rows(
            live.env, f"SELECT request_id, status FROM byok_usagerecord WHERE request_id IN ({marks})", tuple(ids)
        )
        return dict(rows) if len(rows) == BURST else None

    recorded = wait_for(usage, timeout=20, interval=0.3, message="one usage record per request")
    assert all(recorded[r["rid"]] == ("ok" if r["error"] is None else "error") for r in results)


def _audit(live: Cluster, b: Burst) -> list[tuple[str, str]]:
    return db_rows(
        live.env, "SELECT action, key_fingerprint FROM byok_auditevent WHERE provider_name IN (%s, %s, %s, %s)", b.names
    )


def test_a_burst_of_200_streams_with_faults_ends_every_request_cleanly_with_one_usage_record_each(live):
    b = _providers(live, "r429")  # a 429 cools the key down (shared state); the configuration stays as it is
    for server in live.servers:  # each process has loaded the configuration before the burst
        with server.admin() as admin:
            assert (
                admin.post(
                    "/v1/chat/completions", json={"model": f"{b.fallback}/gpt-4o-mini", "messages": MESSAGES}
                ).status_code
                == 200
            )

    results = asyncio.run(_burst(live, _models(b)))

    _check_answers(live, b, results)
    actions = sorted(a for a, _ in _audit(live, b))
    assert actions == ["key.create"] + ["provider.create"] * 4 + ["provider.update"]


def test_configuration_changes_during_a_burst_lose_no_request_and_no_audit_row(live):
    b = _providers(live, "r401")  # byok marks the refused key invalid mid-burst (a database write, announced)

    def add_keys() -> list[int]:
        codes = []
        for i in range(10):
            with live.servers[i % len(live.servers)].admin() as admin:
                codes.append(
                    admin.post(
                        f"/api/providers/{b.fallback_id}/keys", json={"api_key": f"{b.primary_key}-extra-{i:04d}"}
                    ).status_code
                )
        return codes

    with ThreadPoolExecutor(1) as pool:
        adding = pool.submit(add_keys)
        results = asyncio.run(_burst(live, _models(b)))
        assert adding.result(timeout=60) == [201] * 10

    _check_answers(live, b, results)
    actions = _audit(live, b)
    counts: dict[str, int] = {}
    for action, _ in actions:
        counts[action] = counts.get(action, 0) + 1
    assert counts == {"provider.create": 4, "key.create": 11, "key.invalid": 1, "provider.update": 1}
    assert [fp[:12] for action, fp in actions if action == "key.invalid"] == [fake_fp(b.bad_key)]


def test_a_busy_server_holds_a_burst_of_new_connections_in_its_listen_queue(live, tmp_path):
    """300 clients connect while the server cannot accept (stopped): the kernel must hold every one of them.

    With Twisted's default backlog (50) only about 50 complete their handshake and the rest wait for SYN
    retries or are reset; with BACKLOG every connection is established at once and answered when the
    server runs again.
    """
    server = start_served(live.env, tmp_path, server="daphne", workers=1)  # as `make serve` starts it
    port = int(server.url.rsplit(":", 1)[1])
    socks: list[socket.socket] = []
    try:
        os.kill(server.proc.pid, signal.SIGSTOP)  # busy: accepts nothing for now
        try:
            with selectors.DefaultSelector() as sel:
                for _ in range(300):
                    s = socket.socket()
                    s.setblocking(False)
                    s.connect_ex(("127.0.0.1", port))
                    socks.append(s)
                    sel.register(s, selectors.EVENT_WRITE)
                connected = 0
                deadline = time.monotonic() + 3
                while connected < len(socks) and time.monotonic() < deadline:
                    for key, _ in sel.select(timeout=0.2):
                        sel.unregister(key.fileobj)
                        connected += key.fileobj.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR) == 0
            assert connected == len(socks), f"only {connected} of {len(socks)} connections were held for a busy server"
        finally:
            os.kill(server.proc.pid, signal.SIGCONT)
        for s in socks:
            s.setblocking(True)
            s.settimeout(60)
            s.sendall(b"GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n")
        for s in socks:
            answer = b""
            while chunk := s.recv(65536):
                answer += chunk
            assert answer.startswith(b"HTTP/1.1 200"), answer[:200]
    finally:
        for s in socks:
            s.close()
        server.stop()
