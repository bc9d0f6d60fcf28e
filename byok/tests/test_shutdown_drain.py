"""GracefulApp in process: what a client gets when the server drains (HTTP SSE, websocket, a late request)."""

from __future__ import annotations

import asyncio
import json

import pytest

from byok.shutdown import GracefulApp

pytestmark = pytest.mark.asyncio


def _channel():
    queue: asyncio.Queue = asyncio.Queue()
    sent: list[dict] = []

    async def send(message):
        sent.append(message)

    return queue, queue.get, send, sent


async def sse_app(scope, receive, send):
    """Like Django with a streaming view: read the body, stream, stop when told the client left."""
    await receive()

    async def stream():
        await send({"type": "http.response.start", "status": 200, "headers": [(b"content-type", b"text/event-stream")]})
        while True:
            await send({"type": "http.response.body", "body": b"data: {}\n\n", "more_body": True})
            await asyncio.sleep(0.01)

    task = asyncio.create_task(stream())
    assert (await receive())["type"] == "http.disconnect"
    task.cancel()


async def test_an_sse_stream_still_running_after_the_grace_period_ends_with_an_error_event():
    app = GracefulApp(sse_app)
    queue, receive, send, sent = _channel()
    queue.put_nowait({"type": "http.request", "body": b"{}", "more_body": False})
    served = asyncio.create_task(app({"type": "http", "path": "/v1/chat/completions"}, receive, send))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(app.shutdown(grace=0.2), 5)
    await asyncio.wait_for(served, 1)
    last = sent[-1]
    assert last["type"] == "http.response.body" and last["more_body"] is False
    error = json.loads(last["body"].split(b"\n\n")[0].removeprefix(b"data: "))
    assert error["error"]["code"] == "shutting_down"
    assert last["body"].endswith(b"data: [DONE]\n\n")


async def test_a_request_that_finishes_within_the_grace_period_is_untouched():
    async def quick(scope, receive, send):
        await receive()
        await asyncio.sleep(0.1)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})

    app = GracefulApp(quick)
    queue, receive, send, sent = _channel()
    queue.put_nowait({"type": "http.request", "body": b"", "more_body": False})
    served = asyncio.create_task(app({"type": "http", "path": "/api/chat"}, receive, send))
    await asyncio.sleep(0.01)
    await asyncio.wait_for(app.shutdown(grace=2), 5)
    await served
    assert [m.get("body") for m in sent] == [None, b"ok"]


async def test_a_request_arriving_while_draining_gets_a_json_503():
    app = GracefulApp(sse_app)
    app.draining = True
    _, receive, send, sent = _channel()
    await app({"type": "http", "path": "/v1/models"}, receive, send)
    assert sent[0]["status"] == 503
    assert json.loads(sent[1]["body"])["code"] == "shutting_down"


async def test_a_websocket_gets_chat_error_for_each_open_chat_then_close_4503():
    async def consumer(scope, receive, send):
        assert (await receive())["type"] == "websocket.connect"
        await send({"type": "websocket.accept"})
        while True:
            message = await receive()
            if message["type"] == "websocket.disconnect":
                return
            frame = json.loads(message["text"])
            rid = frame["id"]
            await send(
                {
                    "type": "websocket.send",
                    "text": json.dumps({"type": "chat.delta", "id": rid, "text": "x"}, separators=(",", ":")),
                }
            )
            if rid == "quick":
                await send({"type": "websocket.send", "text": json.dumps({"type": "chat.done", "id": rid})})

    app = GracefulApp(consumer)
    queue, receive, send, sent = _channel()
    queue.put_nowait({"type": "websocket.connect"})
    for rid in ("slow", "quick"):
        queue.put_nowait({"type": "websocket.receive", "text": json.dumps({"type": "chat.request", "id": rid})})
    served = asyncio.create_task(app({"type": "websocket", "path": "/ws/chat/"}, receive, send))
    await asyncio.sleep(0.05)
    await asyncio.wait_for(app.shutdown(grace=0.2), 5)
    await asyncio.wait_for(served, 1)
    frames = [json.loads(m["text"]) for m in sent if m["type"] == "websocket.send"]
    errors = [f for f in frames if f["type"] == "chat.error"]
    assert errors == [
        {
            "type": "chat.error",
            "id": "slow",
            "code": "shutting_down",
            "retryable": True,
            "partial": True,
            "message": errors[0]["message"],
        }
    ]
    assert sent[-1] == {"type": "websocket.close", "code": 4503}
