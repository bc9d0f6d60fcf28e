"""Gateway keys on the websocket: in the `Authorization` header, `x-api-key` or the first `auth` frame; the
allow-list per request (a `chat.error` model_not_allowed, no upstream call); a revoked key closes the socket
at its next request; usage names the key."""

from __future__ import annotations

import pytest
import respx
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator

from byok import registry
from byok.audit import Actor
from byok.gateway.handler import BYOKHandler
from byok.keys import lookup, store
from byok.models import UsageRecord
from byok.state import MemoryStateBackend, MemoryStore
from byok.ws import consumer
from byok.ws.consumer import CLOSE_UNAUTHENTICATED
from byok_project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
HI = [{"role": "user", "content": "Hi"}]
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "ok"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
SSE = (
    b'data: {"id":"c","model":"gpt-4o","choices":[{"index":0,"delta":{"content":"ok"},"finish_reason":"stop"}]}\n\n'
    b"data: [DONE]\n\n"
)


@pytest.fixture
def handler(monkeypatch):
    lookup.clear_cache()
    store_ = MemoryStore()
    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store_))
    monkeypatch.setattr(consumer, "get_handler", lambda: h)
    return h


@pytest.fixture
async def key(handler, django_user_model):
    def make():
        django_user_model.objects.create_user("carol")
        registry.register_provider(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        registry.register_provider(
            kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-3-5-haiku-latest"
        )
        return store.create_key(actor=Actor("alice"), name="ws", user="carol", models=["openai/*"])

    return await sync_to_async(make)()


async def connect(headers=()) -> WebsocketCommunicator:
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"http://testserver"), *headers])
    connected, _ = await comm.connect()
    assert connected
    return comm


async def frames_until_end(comm: WebsocketCommunicator, rid: str) -> list[dict]:
    frames: list[dict] = []
    while not frames or not (frames[-1]["type"] in ("chat.done", "chat.error") and frames[-1].get("id") == rid):
        frames.append(await comm.receive_json_from(timeout=5))
    return frames


@pytest.mark.parametrize("how", ["authorization", "x-api-key", "auth-frame"])
async def test_a_gateway_key_authenticates_and_its_allow_list_holds(key, how):
    row, plain = key
    headers = {
        "authorization": [(b"authorization", f"Bearer {plain}".encode())],
        "x-api-key": [(b"x-api-key", plain.encode())],
    }
    comm = await connect(headers.get(how, ()))
    if how == "auth-frame":
        await comm.send_json_to({"type": "auth", "token": plain})
    assert (await comm.receive_json_from(timeout=5))["type"] == "chat.ready"
    with respx.mock(assert_all_called=False) as upstream:
        route = upstream.post(OPENAI).respond(200, content=SSE, headers={"content-type": "text/event-stream"})
        anthropic = upstream.post("https://api.anthropic.com/v1/messages").respond(500)
        await comm.send_json_to(
            {"type": "chat.request", "id": "no", "model": "anthropic/claude-3-5-haiku-latest", "messages": HI}
        )
        refused = (await frames_until_end(comm, "no"))[-1]
        assert refused["type"] == "chat.error" and refused["code"] == "model_not_allowed"
        await comm.send_json_to({"type": "chat.request", "id": "yes", "model": "openai/gpt-4o", "messages": HI})
        assert (await frames_until_end(comm, "yes"))[-1]["type"] == "chat.done"
        assert route.call_count == 1 and anthropic.call_count == 0
    await consumer.get_handler().flush_usage()
    record = await UsageRecord.objects.aget(status="ok")
    assert record.gateway_key_id == row.pk and record.interface == "websocket"
    await comm.disconnect()


async def test_a_revoked_key_closes_the_socket_at_its_next_request(key):
    row, plain = key
    comm = await connect([(b"authorization", f"Bearer {plain}".encode())])
    assert (await comm.receive_json_from(timeout=5))["type"] == "chat.ready"
    await sync_to_async(store.revoke_key)(row.pk, actor=Actor("alice"))
    await comm.send_json_to({"type": "chat.request", "id": "r", "model": "openai/gpt-4o", "messages": HI})
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == "chat.error" and frame["code"] == "credentials_revoked"
    assert (await comm.receive_output(timeout=5))["code"] == CLOSE_UNAUTHENTICATED


async def test_a_bad_key_in_the_header_is_refused(key):
    comm = await connect([(b"authorization", b"Bearer byok_notakey")])
    frame = await comm.receive_json_from(timeout=5)
    assert frame["type"] == "chat.error"
    assert (await comm.receive_output(timeout=5))["code"] == CLOSE_UNAUTHENTICATED
