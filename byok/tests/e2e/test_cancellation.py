"""A client that leaves takes its upstream request with it: over HTTP (SSE) and over the websocket.

The fake provider streams slowly (200 chunks, 50 ms apart: ten seconds); the
client reads a few chunks and goes. The fake's recorder must see the
upstream connection `cancelled` within seconds, and the usage record must
say `cancelled`.
"""

from __future__ import annotations

import contextlib
import json

import httpx
import pytest
from websockets.sync.client import connect

from byok.tests.e2e import Cluster, cluster, db_rows, fake_fp, records, register, uid, upstream_outcome, wait_for
from devtools.fakeprovider.answer import filler_text

SLOW = "chunks=200;delay_ms=50"
MESSAGES = [{"role": "user", "content": "Tell me a long story."}]


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def _slow_provider(live: Cluster) -> tuple[str, str]:
    n = uid()
    name, key = f"e2e-slow-{n}", f"sk-e2e-{n}-slow-0000"
    register(
        live.a,
        provider="openai",
        name=name,
        base_url=f"{live.fake.url}/cfg/{SLOW}/v1",
        model="gpt-4o-mini",
        api_key=key,
    )
    return name, key


def _upstream_outcome(live: Cluster, key: str) -> str | None:
    return upstream_outcome(live.fake, key)


def _usage_status(live: Cluster, request_id: str) -> str | None:
    rows = db_rows(live.env, "SELECT status FROM byok_usagerecord WHERE request_id = %s", (request_id,))
    return rows[0][0] if rows else None


@contextlib.contextmanager
def _ws(live: Cluster):
    """An authenticated chat socket, closed on leaving the block."""
    with connect(live.a.ws_url + "/ws/chat/", open_timeout=10, close_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": live.a.admin_token}))
        ready = json.loads(ws.recv(timeout=10))
        assert ready["type"] == "chat.ready", ready
        yield ws


def _frames_until(ws, rid: str, kinds: set[str], *, deltas: int | None = None) -> list[dict]:
    """Frames of request `rid` until one of `kinds` (or `deltas` deltas) arrives."""
    frames: list[dict] = []
    while True:
        frame = json.loads(ws.recv(timeout=20))
        if frame.get("id") != rid:
            continue
        frames.append(frame)
        if frame["type"] in kinds:
            return frames
        if deltas is not None and sum(f["type"] == "chat.delta" for f in frames) >= deltas:
            return frames


def test_closing_an_http_stream_cancels_the_upstream_request(live):
    name, key = _slow_provider(live)
    body = {"model": f"{name}/gpt-4o-mini", "messages": MESSAGES, "stream": True}
    headers = {"Authorization": f"Bearer {live.a.admin_token}"}

    with httpx.Client(timeout=30) as client:
        with client.stream("POST", live.a.url + "/v1/chat/completions", json=body, headers=headers) as response:
            assert response.status_code == 200
            request_id = response.headers["x-byok-request-id"]
            seen = 0
            for line in response.iter_lines():
                if line.startswith("data:") and '"content"' in line:
                    seen += 1
                    if seen == 3:
                        break  # leave: the connection closes with the response

    assert (
        wait_for(lambda: _upstream_outcome(live, key), timeout=5, message="the upstream request to end") == "cancelled"
    )
    [upstream] = records(live.fake, key_fp=fake_fp(key))
    assert upstream["chunks_sent"] < 200
    assert wait_for(lambda: _usage_status(live, request_id), timeout=10, message="the usage record") == "cancelled"


def test_closing_the_websocket_mid_stream_cancels_the_upstream_request(live):
    name, key = _slow_provider(live)
    with _ws(live) as ws:
        ws.send(json.dumps({"type": "chat.request", "id": "r1", "model": f"{name}/gpt-4o-mini", "messages": MESSAGES}))
        frames = _frames_until(ws, "r1", {"chat.done", "chat.error"}, deltas=3)
        assert [f["type"] for f in frames] == ["chat.delta"] * 3

    assert (
        wait_for(lambda: _upstream_outcome(live, key), timeout=5, message="the upstream request to end") == "cancelled"
    )


def test_chat_cancel_stops_one_request_and_the_socket_goes_on(live):
    name, key = _slow_provider(live)
    quick = f"e2e-quick-{uid()}"
    register(
        live.a,
        provider="openai",
        name=quick,
        base_url=f"{live.fake.url}/v1",
        model="gpt-4o-mini",
        api_key=f"sk-e2e-{uid()}-quick-0000",
    )
    with _ws(live) as ws:
        ws.send(
            json.dumps({"type": "chat.request", "id": "slow", "model": f"{name}/gpt-4o-mini", "messages": MESSAGES})
        )
        _frames_until(ws, "slow", {"chat.done", "chat.error"}, deltas=2)
        ws.send(json.dumps({"type": "chat.cancel", "id": "slow"}))
        [*_, end] = _frames_until(ws, "slow", {"chat.done", "chat.error"})
        assert (end["type"], end["code"], end["partial"]) == ("chat.error", "cancelled", True)

        ws.send(
            json.dumps({"type": "chat.request", "id": "next", "model": f"{quick}/gpt-4o-mini", "messages": MESSAGES})
        )
        frames = _frames_until(ws, "next", {"chat.done", "chat.error"})

    assert frames[-1]["type"] == "chat.done" and frames[-1]["provider"] == quick
    assert "".join(f.get("text", "") for f in frames if f["type"] == "chat.delta") == filler_text(8)
    assert (
        wait_for(lambda: _upstream_outcome(live, key), timeout=5, message="the upstream request to end") == "cancelled"
    )
