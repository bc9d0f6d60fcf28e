"""Oversized bodies are refused (JSON 413) before they are read and before authentication."""

from __future__ import annotations

import asyncio
import json
import select
import socket
import time
from pathlib import Path

import pytest

from byok.bodylimit import BodyLimitApp
from byok.tests.live import drop_live_env, live_env, start_daphne

MB = 1024 * 1024


# -- in process: the ASGI middleware, as under a server that streams bodies on demand ----------------


def _asgi_post(app, path: str, chunks: int, chunk_size: int, headers=()):
    pulled = 0
    sent: list[dict] = []

    async def receive():
        nonlocal pulled
        if pulled >= chunks * chunk_size:
            await asyncio.sleep(3600)  # a client that has nothing more to send
        pulled += chunk_size
        return {"type": "http.request", "body": b"x" * chunk_size, "more_body": pulled < chunks * chunk_size}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "query_string": b"",
        "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), *headers],
        "client": ("127.0.0.1", 5000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(asyncio.wait_for(app(scope, receive, send), 30))
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start["status"], json.loads(body), pulled


@pytest.mark.django_db(transaction=True)
def test_a_chunked_body_past_the_limit_stops_being_read_at_the_limit(settings):
    from byok_project.asgi import application

    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1 * MB
    status, body, pulled = _asgi_post(application, "/v1/chat/completions", chunks=200, chunk_size=64 * 1024)
    assert status == 413
    assert body["error"]["code"] == "payload_too_large"
    assert pulled <= 1 * MB + 64 * 1024  # not one chunk more than needed to pass the limit


def test_a_declared_length_past_the_limit_is_refused_without_reading_or_calling_the_app(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1 * MB

    async def app(scope, receive, send):
        raise AssertionError("the application must not run")

    status, body, pulled = _asgi_post(
        BodyLimitApp(app),
        "/api/providers/register",
        chunks=1,
        chunk_size=10,
        headers=[(b"content-length", b"104857600")],
    )
    assert (status, body["code"], pulled) == (413, "payload_too_large", 0)


# -- a real daphne process ----------------------------------------------------------------------


def _rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


def _send_until_answered(url: str, head: bytes, chunk: bytes, total: int) -> tuple[bytes, int]:
    """Send `head`, then `chunk`s until `total` bytes or the server answers; the answer and the bytes sent."""
    host, port = url.removeprefix("http://").split(":")
    sent = 0
    with socket.create_connection((host, int(port)), timeout=30) as sock:
        sock.sendall(head)
        while sent < total:
            readable, _, _ = select.select([sock], [], [], 0)
            if readable:
                break
            try:
                sock.sendall(chunk)
            except (BrokenPipeError, ConnectionResetError):
                break
            sent += len(chunk)
        answer = b""
        sock.settimeout(10)
        try:
            while b"\r\n\r\n" not in answer or not answer.rstrip().endswith(b"}"):
                data = sock.recv(65536)
                if not data:
                    break
                answer += data
        except (ConnectionResetError, TimeoutError):
            pass
    return answer, sent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("bodylimit")
    env = live_env(tmp)
    srv = start_daphne(env, tmp, extra_env={"BYOK_MAX_BODY_BYTES": str(1 * MB)})
    yield srv
    srv.stop()
    drop_live_env(env)


def test_daphne_refuses_a_chunked_upload_at_the_limit_without_holding_it_in_memory(server):
    before = _rss_kib(server.proc.pid)
    one_mb = b"x" * MB
    chunk = b"%x\r\n" % len(one_mb) + one_mb + b"\r\n"
    head = (
        b"POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: "
        b"application/json\r\nTransfer-Encoding: chunked\r\n\r\n"
    )
    started = time.monotonic()
    answer, sent = _send_until_answered(server.url, head, chunk, 100 * MB)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["error"]["code"] == "payload_too_large"
    grown_mib = (_rss_kib(server.proc.pid) - before) / 1024
    assert grown_mib < 20, f"RSS grew by {grown_mib:.0f} MiB for a refused {sent / MB:.0f} MiB upload"
    assert time.monotonic() - started < 20


@pytest.mark.parametrize(
    "path,code", [("/api/providers/register", "payload_too_large"), ("/v1/chat/completions", "payload_too_large")]
)
def test_daphne_refuses_a_declared_length_past_the_limit_before_the_body_is_sent(server, path, code):
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {100 * MB}\r\n\r\n"
    ).encode()
    answer, sent = _send_until_answered(server.url, head, b"", 0)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert (body.get("error") or body)["code"] == code


def test_daphne_still_serves_bodies_under_the_limit(server):
    import httpx

    response = httpx.post(server.url + "/v1/chat/completions", content=b'{"model": "x", "messages": []}', timeout=10)
    assert response.status_code == 401  # read, parsed as far as authentication
