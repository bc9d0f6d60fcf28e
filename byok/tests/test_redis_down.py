"""Redis unreachable (REDIS_URL at a closed port): JSON errors, a chat.error frame before any close,
and no host or port in anything a client sees (the log has them)."""

from __future__ import annotations

import asyncio
import json

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from byok.tests.live import drop_live_env, free_port, live_env, register, start_daphne


@pytest.fixture(scope="module")
def down(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("redisdown")
    env = live_env(tmp)
    register(env, "pn", "http://127.0.0.1:9/v1", "sk-live-redisdown-0123456789")
    port = free_port()  # nothing listens here
    server = start_daphne(env, tmp, extra_env={"REDIS_URL": f"redis://127.0.0.1:{port}/0"})
    yield server, port
    server.stop()
    drop_live_env(env)


def _no_address(text: str, port: int) -> None:
    assert str(port) not in text and "127.0.0.1" not in text, text


@pytest.mark.asyncio
async def test_every_http_endpoint_answers_json_without_the_redis_address(down):
    server, port = down
    auth = {"Authorization": f"Bearer {server.admin_token}"}
    chat = {"model": "pn/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
    async with httpx.AsyncClient(base_url=server.url, headers=auth, timeout=30) as client:
        answers = [
            await client.get("/v1/models"),
            await client.post("/v1/chat/completions", json=chat),
            await client.post("/v1/chat/completions", json={**chat, "stream": True}),
            await client.post("/api/chat", json={"messages": chat["messages"], "provider": "pn"}),
            await client.get("/readyz"),
        ]
    for response in answers:
        assert response.status_code == 503, (response.request.url, response.status_code, response.text[:300])
        assert response.headers["content-type"].startswith(("application/json", "text/event-stream")), response.text[
            :300
        ]
        _no_address(response.text, port)
    assert answers[0].json()["error"]["code"] == "state_unavailable"
    assert answers[3].json()["code"] == "state_unavailable" and answers[3].json()["retryable"] is True
    assert json.loads(answers[4].text)["checks"]["redis"] == {"ok": False, "reason": "Redis does not answer"}
    assert f"127.0.0.1:{port}" in server.log.read_text()  # the operator sees where


@pytest.mark.asyncio
async def test_the_websocket_sends_chat_error_before_any_close(down):
    server, port = down
    frames = []
    async with connect(
        server.ws_url + "/ws/chat/", additional_headers={"Authorization": f"Token {server.admin_token}"}
    ) as ws:
        try:
            await ws.send(
                json.dumps(
                    {
                        "type": "chat.request",
                        "id": "r1",
                        "provider": "pn",
                        "messages": [{"role": "user", "content": "hi"}],
                    }
                )
            )
            while True:
                frames.append(json.loads(await asyncio.wait_for(ws.recv(), 20)))
                if frames[-1]["type"] in ("chat.error", "chat.done"):
                    break
        except ConnectionClosed:
            pass
    errors = [f for f in frames if f["type"] == "chat.error"]
    assert errors, frames
    assert errors[-1]["code"] == "state_unavailable" and errors[-1]["retryable"] is True
    _no_address(json.dumps(frames), port)


@pytest.mark.asyncio
async def test_a_websocket_application_that_crashes_sends_chat_error_before_closing():
    from redis.exceptions import ConnectionError as RedisConnectionError

    from byok.ws_resilience import ErrorFrameOnCrash

    async def crashing(scope, receive, send):
        await send({"type": "websocket.accept"})
        raise RedisConnectionError("Error 111 connecting to 127.0.0.1:6399. Connection refused.")

    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    async def receive():
        return {"type": "websocket.connect"}

    await ErrorFrameOnCrash(crashing)({"type": "websocket", "path": "/ws/chat/"}, receive, send)
    assert [m["type"] for m in sent] == ["websocket.accept", "websocket.send", "websocket.close"]
    frame = json.loads(sent[1]["text"])
    assert (frame["type"], frame["code"], frame["retryable"]) == ("chat.error", "state_unavailable", True)
    assert "6399" not in sent[1]["text"] and sent[2]["code"] == 4500


@pytest.mark.parametrize("path,shape", [("/v1/models", "openai"), ("/api/chat", "byok"), ("/admin/", None)])
def test_an_unhandled_error_on_an_api_path_is_json_without_its_detail(path, shape):
    from django.test import RequestFactory

    from byok.api.middleware import JsonErrorMiddleware

    middleware = JsonErrorMiddleware(lambda request: None)
    response = middleware.process_exception(RequestFactory().get(path), KeyError("redis://10.0.0.9:6399 secret"))
    if shape is None:
        assert response is None  # the admin keeps Django's own error page
        return
    assert response.status_code == 500 and response["content-type"] == "application/json"
    body = json.loads(response.content)
    assert (body["error"]["code"] if shape == "openai" else body["code"]) == "internal_error"
    assert b"10.0.0.9" not in response.content
