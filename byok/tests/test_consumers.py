"""The chat websocket through the real ASGI stack (origin check, auth, routing) with respx as the upstream.

Each test drives `byok_project.asgi.application` with Channels'
`WebsocketCommunicator`; the handler is a fresh `BYOKHandler` on in-memory
shared state, and OpenAI's endpoint is faked with respx, streaming through
gated byte streams so tests decide when each token arrives and can see the
upstream response being closed.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async
from channels.testing import WebsocketCommunicator
from django.core.management import call_command

from byok import registry
from byok.gateway.handler import BYOKHandler
from byok.models import UsageRecord
from byok.state import MemoryStateBackend, MemoryStore
from byok.ws import broadcast, consumer
from byok.ws.auth import Credential
from byok.ws.broadcast import abroadcast_stop, broadcast_stop
from byok.ws.consumer import CLOSE_UNAUTHENTICATED
from byok.ws.frames import FrameError, parse_chat_request
from byok.ws.outbox import Outbox
from byok_project.asgi import application

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
ORIGIN = (b"origin", b"http://testserver")
HI = [{"role": "user", "content": "Hi"}]


# -- upstream fakes -------------------------------------------------------------------------------


def sse(*payloads: dict, done: bool = True) -> bytes:
    body = b"".join(b"data: " + json.dumps(p).encode() + b"\n\n" for p in payloads)
    return body + (b"data: [DONE]\n\n" if done else b"")


def chunk(delta: dict | None = None, finish: str | None = None, usage: tuple[int, int] | None = None) -> dict:
    out: dict[str, Any] = {
        "id": "c1",
        "model": "gpt-4o",
        "choices": []
        if delta is None and finish is None
        else [{"index": 0, "delta": delta or {}, "finish_reason": finish}],
    }
    if usage:
        out["usage"] = {"prompt_tokens": usage[0], "completion_tokens": usage[1], "total_tokens": sum(usage)}
    return out


def text_parts(*texts: str, finish: str = "stop") -> list[bytes]:
    """An OpenAI stream cut into one network chunk per token."""
    parts = [sse(chunk({"role": "assistant", "content": ""}), done=False)]
    parts += [sse(chunk({"content": t}), done=False) for t in texts]
    parts.append(sse(chunk({}, finish), chunk(usage=(5, len(texts)))))
    return parts


class Upstream(httpx.AsyncByteStream):
    """A streamed response body whose chunks wait for `release(n)`; records when it is closed."""

    def __init__(self, parts: list[bytes], *, held: int = 0) -> None:
        self.parts = parts
        self.allowed = asyncio.Semaphore(len(parts) - held)
        self.closed = asyncio.Event()

    def release(self, n: int = 1) -> None:
        for _ in range(n):
            self.allowed.release()

    async def __aiter__(self):
        for part in self.parts:
            await self.allowed.acquire()
            yield part

    async def aclose(self) -> None:
        self.closed.set()


def respond(stream: Upstream) -> httpx.Response:
    return httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=stream)


# -- fixtures and helpers ------------------------------------------------------------------------------


@pytest.fixture
def handler(monkeypatch):
    store = MemoryStore()
    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store))
    monkeypatch.setattr(consumer, "get_handler", lambda: h)
    return h


@pytest.fixture
async def openai(handler):
    provider = await sync_to_async(registry.register_provider)(
        kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o"
    )
    return provider


@pytest.fixture
def upstream():
    with respx.mock(assert_all_called=False) as mock:
        yield mock


async def connect(user=None, headers=(), origin=True, path="/ws/chat/") -> WebsocketCommunicator:
    hdrs = ([ORIGIN] if origin else []) + list(headers)
    comm = WebsocketCommunicator(application, path, headers=hdrs)
    if user is not None:
        comm.scope["user"] = user
    connected, _ = await comm.connect()
    assert connected
    return comm


async def recv(comm: WebsocketCommunicator, timeout: float = 3) -> dict:
    return await comm.receive_json_from(timeout=timeout)


async def ready(comm: WebsocketCommunicator) -> dict:
    frame = await recv(comm)
    assert frame["type"] == "chat.ready", frame
    return frame


async def until_terminal(comm: WebsocketCommunicator, *ids: str, timeout: float = 5) -> list[dict]:
    """Frames up to and including the terminal frame of every id."""
    frames, waiting = [], set(ids)
    while waiting:
        frame = await recv(comm, timeout)
        frames.append(frame)
        if frame["type"] in ("chat.done", "chat.error") and frame.get("id") in waiting:
            waiting.discard(frame["id"])
    return frames


def text_of(frames: list[dict], rid: str, field: str = "text") -> str:
    return "".join(f.get(field, "") for f in frames if f["type"] == "chat.delta" and f["id"] == rid)


async def closed_with(comm: WebsocketCommunicator) -> int:
    """The code the server closed the socket with; then the client side goes too, so the consumer ends."""
    output = await comm.receive_output(timeout=3)
    assert output["type"] == "websocket.close", output
    await comm.disconnect()  # a consumer left receiving on the (Redis) channel layer would outlive the test's loop
    return output["code"]


@pytest.fixture
async def alice_ws(alice, handler):
    comm = await connect(alice)
    await ready(comm)
    yield comm
    await comm.disconnect()


# -- streaming: every frame type ----------------------------------------------------------------------


async def test_it_streams_deltas_then_one_done(alice_ws, openai, upstream):
    upstream.post(OPENAI).mock(return_value=respond(Upstream(text_parts("Hel", "lo", " there"))))
    await alice_ws.send_json_to(
        {"type": "chat.request", "id": "r1", "messages": HI, "temperature": 0.3, "max_tokens": 50}
    )
    frames = await until_terminal(alice_ws, "r1")
    assert text_of(frames, "r1") == "Hello there"
    done = frames[-1]
    assert done["type"] == "chat.done" and done["id"] == "r1"
    assert done["finish_reason"] == "stop" and done["provider"] == "openai" and done["model"] == "gpt-4o"
    assert done["usage"]["input_tokens"] == 5 and done["usage"]["output_tokens"] == 3
    assert done["attempts"] == 1 and done["latency_ms"] >= done["ttft_ms"] >= 0
    assert [f["type"] for f in frames].count("chat.done") == 1
    body = json.loads(upstream.calls.last.request.content)
    assert body["temperature"] == 0.3 and body["stream"] is True
    assert await alice_ws.receive_nothing(timeout=0.1)


async def test_it_sends_tool_calls_reasoning_and_refusals(alice_ws, openai, upstream):
    parts = [
        sse(
            chunk({"role": "assistant", "reasoning_content": "thinking"}),
            chunk(
                {
                    "tool_calls": [
                        {
                            "index": 0,
                            "id": "call_1",
                            "type": "function",
                            "function": {"name": "weather", "arguments": ""},
                        }
                    ]
                }
            ),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '{"city":'}}]}),
            chunk({"tool_calls": [{"index": 0, "function": {"arguments": '"Paris"}'}}]}),
            chunk({}, "tool_calls"),
            done=True,
        )
    ]
    upstream.post(OPENAI).mock(return_value=respond(Upstream(parts)))
    tools = [
        {
            "type": "function",
            "function": {
                "name": "weather",
                "parameters": {"type": "object", "properties": {"city": {"type": "string"}}},
            },
        }
    ]
    await alice_ws.send_json_to(
        {"type": "chat.request", "id": "t", "messages": [{"role": "user", "content": "weather?"}], "tools": tools}
    )
    frames = await until_terminal(alice_ws, "t")
    calls = [f for f in frames if f["type"] == "chat.tool_call"]
    assert calls[0]["tool_call_id"] == "call_1" and calls[0]["name"] == "weather" and calls[0]["index"] == 0
    assert "".join(c["arguments"] for c in calls) == '{"city":"Paris"}'
    assert frames[-1]["type"] == "chat.done" and frames[-1]["finish_reason"] == "tool_calls"
    sent = json.loads(upstream.calls.last.request.content)
    assert sent["tools"][0]["function"]["name"] == "weather"

    upstream.post(OPENAI).mock(return_value=respond(Upstream([sse(chunk({"refusal": "I can't"}), chunk({}, "stop"))])))
    await alice_ws.send_json_to({"type": "chat.request", "id": "no", "messages": HI})
    frames = await until_terminal(alice_ws, "no")
    assert text_of(frames, "no", "refusal") == "I can't"


async def test_it_sends_reasoning_deltas(alice_ws, handler, upstream):
    await sync_to_async(registry.register_provider)(
        kind="deepseek", api_key="sk-deepseek-0123456789abcdef", default_model="deepseek-reasoner"
    )
    parts = [
        sse(
            {"id": "d", "model": "deepseek-reasoner", "choices": [{"index": 0, "delta": {"reasoning_content": r}}]},
            done=False,
        )
        for r in ("Let me ", "think.")
    ]
    parts.append(
        sse(
            {
                "id": "d",
                "model": "deepseek-reasoner",
                "choices": [{"index": 0, "delta": {"content": "42"}, "finish_reason": "stop"}],
            }
        )
    )
    upstream.post("https://api.deepseek.com/chat/completions").mock(return_value=respond(Upstream(parts)))
    await alice_ws.send_json_to({"type": "chat.request", "id": "d", "messages": HI, "provider": "deepseek"})
    frames = await until_terminal(alice_ws, "d")
    assert text_of(frames, "d", "reasoning") == "Let me think."
    assert text_of(frames, "d") == "42"
    assert frames[-1]["provider"] == "deepseek"


async def test_an_upstream_failure_is_one_error_frame(alice_ws, openai, upstream):
    upstream.post(OPENAI).respond(400, json={"error": {"message": "Bad model", "type": "invalid_request_error"}})
    await alice_ws.send_json_to({"type": "chat.request", "id": "e", "messages": HI})
    [error] = await until_terminal(alice_ws, "e")
    assert error["type"] == "chat.error" and error["partial"] is False
    assert "Bad model" in error["message"] and error["retryable"] is False


async def test_an_error_after_tokens_is_marked_partial(alice_ws, openai, upstream):
    parts = [
        sse(chunk({"content": "Hal"}), done=False),
        b'data: {"error": {"message": "overloaded", "type": "server_error"}}\n\n',
    ]
    upstream.post(OPENAI).mock(return_value=respond(Upstream(parts)))
    await alice_ws.send_json_to({"type": "chat.request", "id": "p", "messages": HI})
    frames = await until_terminal(alice_ws, "p")
    assert text_of(frames, "p") == "Hal"
    assert frames[-1]["type"] == "chat.error" and frames[-1]["partial"] is True


async def test_an_unknown_provider_is_an_error_without_upstream_call(alice_ws, openai, upstream):
    route = upstream.post(OPENAI)
    await alice_ws.send_json_to({"type": "chat.request", "id": "u", "messages": HI, "provider": "nope"})
    [error] = await until_terminal(alice_ws, "u")
    assert error["code"] == "provider_not_found" and not route.called


async def test_a_crash_in_the_handler_is_an_internal_error(alice_ws, handler, monkeypatch):
    async def broken(*args, **kwargs):
        raise RuntimeError("boom")
        yield  # pragma: no cover

    monkeypatch.setattr(handler, "stream", broken)
    await alice_ws.send_json_to({"type": "chat.request", "id": "x", "messages": HI})
    [error] = await until_terminal(alice_ws, "x")
    assert error["code"] == "internal_error" and "boom" not in error["message"]


# -- authentication ---------------------------------------------------------------------------------


async def test_a_session_cookie_authenticates(alice, handler, client):
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = await connect(headers=[(b"cookie", cookie)])
    assert (await ready(comm))["user"] == "alice"
    await comm.disconnect()


@pytest.mark.parametrize("scheme", ["Token", "Bearer"])
async def test_an_authorization_header_authenticates(bob, handler, scheme):
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(Token.objects.create)(user=bob)
    comm = await connect(headers=[(b"authorization", f"{scheme} {token.plaintext}".encode())])
    frame = await ready(comm)
    assert frame["user"] == "bob" and frame["limits"] == {"max_in_flight": 8, "max_frame_bytes": 256 * 1024}
    await comm.disconnect()


@pytest.mark.parametrize("header", [b"Token not-a-real-token", b"Bearer", b"Bearer \xff\xfe"])
async def test_a_bad_authorization_header_is_closed_with_4401(alice, handler, client, header):
    # A session cookie does not rescue a wrong explicit credential.
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = await connect(headers=[(b"authorization", header), (b"cookie", cookie)])
    error = await recv(comm)
    assert error["type"] == "chat.error" and error["code"] == "auth_failed" and error["id"] is None
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_other_authorization_schemes_are_ignored(alice, handler, client):
    await sync_to_async(client.force_login)(alice)
    cookie = f"sessionid={client.cookies['sessionid'].value}".encode()
    comm = await connect(headers=[(b"authorization", b"Basic YTpi"), (b"cookie", cookie)])
    assert (await ready(comm))["user"] == "alice"
    await comm.disconnect()


async def test_a_first_frame_token_authenticates(bob, handler, openai, upstream):
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(Token.objects.create)(user=bob)
    comm = await connect()
    await comm.send_json_to({"type": "chat.request", "id": "early", "messages": HI})
    early = await recv(comm)
    assert early["code"] == "unauthenticated" and early["id"] == "early"
    await comm.send_json_to({"type": "auth", "token": token.plaintext})
    assert (await ready(comm))["user"] == "bob"
    await comm.send_json_to({"type": "auth", "token": token.plaintext})
    assert (await recv(comm))["code"] == "already_authenticated"
    upstream.post(OPENAI).mock(return_value=respond(Upstream(text_parts("ok"))))
    await comm.send_json_to({"type": "chat.request", "id": "r", "messages": HI})
    frames = await until_terminal(comm, "r")
    assert frames[-1]["type"] == "chat.done"
    await consumer.get_handler().flush_usage()
    row = await sync_to_async(UsageRecord.objects.get)()
    assert row.user_id == bob.pk and row.interface == "websocket"
    await comm.disconnect()


@pytest.mark.parametrize("token", ["wrong-token", None, 12, "x" * 500])
async def test_a_bad_first_frame_token_is_closed_with_4401(handler, token):
    comm = await connect()
    await comm.send_json_to({"type": "auth", "token": token})
    error = await recv(comm)
    assert error["code"] == "auth_failed"
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_an_inactive_users_token_is_refused(bob, handler):
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(Token.objects.create)(user=bob)
    bob.is_active = False
    await sync_to_async(bob.save)()
    comm = await connect()
    await comm.send_json_to({"type": "auth", "token": token.plaintext})
    assert (await recv(comm))["code"] == "auth_failed"
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_an_unauthenticated_socket_is_closed_after_the_deadline(handler, settings):
    settings.BYOK_WS = {"AUTH_TIMEOUT_S": 0.2}
    comm = await connect()
    error = await recv(comm)
    assert error["type"] == "chat.error" and error["code"] == "unauthenticated" and "0.2 s" in error["message"]
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_authenticating_in_time_beats_the_deadline(bob, handler, settings):
    from rest_framework.authtoken.models import Token

    settings.BYOK_WS = {"AUTH_TIMEOUT_S": 0.3}
    token = await sync_to_async(Token.objects.create)(user=bob)
    comm = await connect()
    await comm.send_json_to({"type": "auth", "token": token.plaintext})
    await ready(comm)
    assert await comm.receive_nothing(timeout=0.5)
    await comm.disconnect()


async def test_origins_other_than_allowed_hosts_are_refused(alice, handler):
    comm = WebsocketCommunicator(application, "/ws/chat/", headers=[(b"origin", b"https://evil.example")])
    comm.scope["user"] = alice
    connected, _ = await comm.connect()
    assert not connected
    await comm.disconnect()
    no_origin = await connect(alice, origin=False)  # not a browser: no Origin header, token or cookie auth still needed
    await ready(no_origin)
    await no_origin.disconnect()


# -- bad frames ---------------------------------------------------------------------------------------


async def test_bad_frames_get_an_error_and_the_socket_stays_open(alice_ws, openai, upstream, settings):
    async def error_for(**send) -> dict:
        await alice_ws.send_to(**send)
        frame = await recv(alice_ws)
        assert frame["type"] == "chat.error", frame
        return frame

    assert (await error_for(text_data="{not json"))["code"] == "bad_frame"
    assert (await error_for(text_data="[1, 2]"))["code"] == "bad_frame"
    assert (await error_for(bytes_data=b"\x00\x01"))["code"] == "bad_frame"
    unknown = await error_for(text_data=json.dumps({"type": "chat.frobnicate", "id": "z"}))
    assert unknown["code"] == "unknown_type" and unknown["id"] == "z"
    assert (await error_for(text_data=json.dumps({"id": 5})))["id"] is None
    missing = await error_for(text_data=json.dumps({"type": "chat.request", "messages": HI}))
    assert missing["code"] == "bad_request" and missing["id"] is None
    assert (await error_for(text_data=json.dumps({"type": "chat.request", "id": "", "messages": HI})))[
        "code"
    ] == "bad_request"
    assert (await error_for(text_data=json.dumps({"type": "chat.cancel"})))["code"] == "bad_request"
    big = json.dumps({"type": "chat.request", "id": "big", "messages": [{"role": "user", "content": "x" * 300_000}]})
    assert (await error_for(text_data=big))["code"] == "frame_too_large"
    multibyte = json.dumps(
        {"type": "chat.request", "id": "mb", "messages": [{"role": "user", "content": "€" * 100_000}]},
        ensure_ascii=False,
    )
    assert len(multibyte) < 256 * 1024 < len(multibyte.encode())
    assert (await error_for(text_data=multibyte))["code"] == "frame_too_large"
    bad_field = await error_for(
        text_data=json.dumps({"type": "chat.request", "id": "f", "messages": HI, "temperature": 9})
    )
    assert bad_field["code"] == "bad_request" and bad_field["id"] == "f" and "temperature" in bad_field["message"]

    upstream.post(OPENAI).mock(return_value=respond(Upstream(text_parts("still", " here"))))
    await alice_ws.send_json_to({"type": "chat.request", "id": "ok", "messages": HI})
    frames = await until_terminal(alice_ws, "ok")
    assert text_of(frames, "ok") == "still here"


@pytest.mark.parametrize(
    "frame, fragment",
    [
        ({"messages": []}, "messages"),
        ({"messages": "hi"}, "messages"),
        ({"messages": [{"role": "robot", "content": "x"}]}, "role"),
        ({"messages": [{"role": "user", "content": 5}]}, "content"),
        ({"messages": [{"role": "user", "content": [{"type": "audio"}]}]}, "kind of content part"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url"}]}]}, "content[0].image_url"),
        ({"messages": [{"role": "user", "content": [{"type": "image_url", "image_url": {"url": "ftp://x"}}]}]}, "http"),
        ({"messages": [{"role": "assistant", "content": "x", "thinking": [{"type": "redacted_thinking"}]}]}, "data"),
        ({"response_format": {"type": "xml"}}, "response_format"),
        ({"reasoning_effort": "max"}, "reasoning_effort"),
        ({"messages": [{"role": "tool", "content": "x", "tool_call_id": 3}]}, "tool_call_id"),
        ({"messages": [{"role": "assistant", "tool_calls": "x"}]}, "tool_calls"),
        ({"messages": [{"role": "assistant", "tool_calls": [{"function": {}}]}]}, "function name"),
        ({"messages": [{"role": "user", "content": "x"}] * 1001}, "At most"),
        ({"top_p": 1.5}, "top_p"),
        ({"temperature": True}, "temperature"),
        ({"temperature": float("nan")}, "temperature"),
        ({"max_tokens": 0}, "max_tokens"),
        ({"max_tokens": 1.5}, "max_tokens"),
        ({"stop": [""]}, "stop"),
        ({"stop": 4}, "stop"),
        ({"tools": {}}, "tools"),
        ({"tools": [{"function": {"name": ""}}]}, "function name"),
        ({"tools": [{"name": "f", "parameters": "x"}]}, "parameters"),
        ({"tool_choice": 3}, "tool_choice"),
        ({"tool_choice": {"type": "function"}}, "tool_choice"),
        ({"model": 3}, "model"),
        ({"provider": "p" * 65}, "provider"),
    ],
)
def test_parse_chat_request_refuses_bad_fields(frame, fragment):
    frame = {"messages": HI, **frame}
    with pytest.raises(FrameError) as caught:
        parse_chat_request(frame)
    assert caught.value.code == "bad_request" and fragment in caught.value.message


def test_parse_chat_request_reads_openai_shaped_fields():
    req, provider = parse_chat_request(
        {
            "provider": "openai",
            "model": "gpt-4o",
            "stop": "END",
            "top_p": 0.5,
            "max_tokens": 10,
            "tool_choice": {"type": "function", "function": {"name": "lookup"}},
            "messages": [
                {"role": "system", "content": "Be brief."},
                {"role": "user", "content": [{"type": "text", "text": "Hel"}, {"type": "text", "text": "lo"}]},
                {
                    "role": "assistant",
                    "content": None,
                    "tool_calls": [
                        {"id": "c1", "type": "function", "function": {"name": "lookup", "arguments": {"q": 1}}}
                    ],
                },
                {"role": "tool", "tool_call_id": "c1", "name": "lookup", "content": "42"},
                {"role": "assistant", "tool_calls": [{"id": "c2", "function": {"name": "lookup", "arguments": "{}"}}]},
            ],
            "tools": [{"name": "lookup", "description": "Look up", "parameters": None}],
        }
    )
    assert provider == "openai" and req.model == "gpt-4o" and req.stream is True
    assert req.stop == ("END",) and req.top_p == 0.5 and req.max_tokens == 10 and req.tool_choice == "lookup"
    assert req.messages[1].content == "Hel\nlo" and req.system == "Be brief."
    assert req.messages[2].tool_calls[0].arguments == '{"q":1}' and req.messages[3].tool_call_id == "c1"
    assert req.tools[0].parameters == {"type": "object", "properties": {}}
    assert parse_chat_request({"messages": HI, "provider": "", "tool_choice": "auto"})[1] is None


# -- cancel, concurrency, disconnect -------------------------------------------------------------------


async def test_cancel_closes_the_upstream_and_ends_with_cancelled(alice_ws, openai, upstream, handler):
    body = Upstream(text_parts("one", "two", "three"), held=3)  # "one" then the stream waits
    upstream.post(OPENAI).mock(return_value=respond(body))
    await alice_ws.send_json_to({"type": "chat.request", "id": "c", "messages": HI})
    first = await recv(alice_ws)
    assert first == {"type": "chat.delta", "id": "c", "text": "one"}
    await alice_ws.send_json_to({"type": "chat.cancel", "id": "c"})
    error = await recv(alice_ws)
    assert error["type"] == "chat.error" and error["code"] == "cancelled" and error["partial"] is True
    await asyncio.wait_for(body.closed.wait(), 2)
    assert await alice_ws.receive_nothing(timeout=0.2)  # one terminal frame, nothing after it
    await handler.flush_usage()
    row = await sync_to_async(UsageRecord.objects.get)()
    assert row.status == "cancelled" and row.interface == "websocket"

    await alice_ws.send_json_to({"type": "chat.cancel", "id": "c"})
    notice = await recv(alice_ws)
    assert notice["type"] == "chat.notice" and notice["event"] == "cancel_ignored" and notice["id"] == "c"


async def test_cancel_before_any_token_is_not_partial(alice_ws, openai, upstream):
    body = Upstream(text_parts("late"), held=3)
    upstream.post(OPENAI).mock(return_value=respond(body))
    await alice_ws.send_json_to({"type": "chat.request", "id": "c0", "messages": HI})
    await asyncio.sleep(0.1)
    await alice_ws.send_json_to({"type": "chat.cancel", "id": "c0"})
    error = await recv(alice_ws)
    assert error["code"] == "cancelled" and error["partial"] is False
    await asyncio.wait_for(body.closed.wait(), 2)


async def test_a_cancel_in_the_same_tick_as_the_request_still_ends_it_once(alice, handler):
    """A task cancelled before it ever ran sends its terminal frame from its done callback."""
    sent: list[dict] = []

    async def record(frame):
        sent.append(frame)

    ws = consumer.ChatConsumer()
    ws.user, ws.credential, ws.max_in_flight = alice, Credential(user_id=alice.pk), 8
    ws.outbox = Outbox(record, high_water=1000)
    ws.outbox.start()
    await ws.receive_json({"type": "chat.request", "id": "now", "messages": HI})
    await ws.receive_json({"type": "chat.cancel", "id": "now"})
    await asyncio.sleep(0.05)
    assert sent == [
        {
            "type": "chat.error",
            "id": "now",
            "code": "cancelled",
            "message": "Cancelled by the client.",
            "retryable": False,
            "partial": False,
        }
    ]
    assert ws.tasks == {} and not ws._all_tasks
    ws.outbox.close()


async def test_concurrent_requests_interleave_and_stay_isolated(alice_ws, openai, upstream):
    slow = Upstream(text_parts("a1", "a2", "a3"), held=3)  # up to "a1", then waits
    fast = Upstream(text_parts("b1", "b2"), held=2)  # up to "b1", then waits
    bodies = {"A": slow, "B": fast}
    upstream.post(OPENAI).mock(
        side_effect=lambda request: respond(bodies[json.loads(request.content)["messages"][0]["content"]])
    )
    await alice_ws.send_json_to({"type": "chat.request", "id": "ra", "messages": [{"role": "user", "content": "A"}]})
    await alice_ws.send_json_to({"type": "chat.request", "id": "rb", "messages": [{"role": "user", "content": "B"}]})
    seen = [await recv(alice_ws), await recv(alice_ws)]
    assert sorted(f["id"] for f in seen) == ["ra", "rb"]  # both running at once
    dup = {"type": "chat.request", "id": "ra", "messages": HI}
    await alice_ws.send_json_to(dup)
    assert (await recv(alice_ws))["code"] == "duplicate_id"
    fast.release(2)
    seen += await until_terminal(alice_ws, "rb")
    slow.release(3)
    seen += await until_terminal(alice_ws, "ra")
    order = [(f["type"], f["id"]) for f in seen if f["type"] == "chat.done"]
    assert order == [("chat.done", "rb"), ("chat.done", "ra")]
    assert text_of(seen, "ra") == "a1a2a3" and text_of(seen, "rb") == "b1b2"
    # The id is free again once its terminal frame went out.
    upstream.post(OPENAI).mock(return_value=respond(Upstream(text_parts("again"))))
    await alice_ws.send_json_to(dup)
    assert text_of(await until_terminal(alice_ws, "ra"), "ra") == "again"


async def test_in_flight_requests_per_socket_are_capped(alice, handler, openai, upstream, settings):
    settings.BYOK_WS = {"MAX_IN_FLIGHT": 2}
    bodies = [Upstream(text_parts("x"), held=3) for _ in range(2)]
    upstream.post(OPENAI).mock(side_effect=[respond(b) for b in bodies])
    comm = await connect(alice)
    assert (await ready(comm))["limits"]["max_in_flight"] == 2
    for rid in ("1", "2", "3"):
        await comm.send_json_to({"type": "chat.request", "id": rid, "messages": HI})
    refused = await recv(comm)
    assert refused == {**refused, "type": "chat.error", "id": "3", "code": "too_many_requests", "retryable": True}
    for body in bodies:
        body.release(3)
    await until_terminal(comm, "1", "2")
    await comm.disconnect()


async def test_disconnect_cancels_every_upstream_call(alice, handler, openai, upstream):
    bodies = [Upstream(text_parts("x", "y"), held=2) for _ in range(2)]
    upstream.post(OPENAI).mock(side_effect=[respond(b) for b in bodies])
    comm = await connect(alice)
    await ready(comm)
    await comm.send_json_to({"type": "chat.request", "id": "1", "messages": HI})
    await comm.send_json_to({"type": "chat.request", "id": "2", "messages": HI})
    await recv(comm), await recv(comm)
    await comm.disconnect()
    await asyncio.wait_for(asyncio.gather(*(b.closed.wait() for b in bodies)), 3)
    await handler.flush_usage()
    statuses = await sync_to_async(lambda: sorted(UsageRecord.objects.values_list("status", flat=True)))()
    assert statuses == ["cancelled", "cancelled"]


# -- the credential, re-checked (issue 11 point 5) -----------------------------------------------------------


async def test_a_deleted_token_closes_the_socket_at_its_next_request_with_4401(
    bob, handler, openai, upstream, monkeypatch
):
    """The token is re-checked on every chat.request; here its deletion is announced to no socket (as if the
    channel layer were down), so the check itself must find it gone, through the token cache HTTP uses."""
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(Token.objects.create)(user=bob)
    comm = await connect(headers=[(b"authorization", f"Token {token.plaintext}".encode())])
    await ready(comm)
    upstream.post(OPENAI).mock(
        return_value=httpx.Response(
            200, stream=Upstream(text_parts("ok")), headers={"content-type": "text/event-stream"}
        )
    )
    await comm.send_json_to({"type": "chat.request", "id": "before", "messages": HI})
    assert (await until_terminal(comm, "before"))[-1]["type"] == "chat.done"
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: None)
    await sync_to_async(token.delete)()
    await comm.send_json_to({"type": "chat.request", "id": "after", "messages": HI})
    error = await recv(comm)
    assert error["type"] == "chat.error" and error["code"] == "credentials_revoked"
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_a_token_delete_announced_stops_running_requests_and_closes(bob, handler, openai, upstream):
    from rest_framework.authtoken.models import Token

    token = await sync_to_async(Token.objects.create)(user=bob)
    comm = await connect(headers=[(b"authorization", f"Bearer {token.plaintext}".encode())])
    await ready(comm)
    body = Upstream(text_parts("x", "y"), held=2)
    upstream.post(OPENAI).mock(return_value=respond(body))
    await comm.send_json_to({"type": "chat.request", "id": "r", "messages": HI})
    await recv(comm)
    await sync_to_async(token.delete)()  # post_delete -> after commit -> the user's group on the channel layer
    error = await recv(comm)
    assert error["id"] == "r" and error["code"] == "unauthenticated" and error["partial"] is True
    assert (await recv(comm))["code"] == "credentials_revoked"
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED
    await asyncio.wait_for(body.closed.wait(), 2)


async def test_a_deactivated_session_user_is_closed_with_4401(alice, bob, handler):
    alice_ws, bob_ws = await connect(alice), await connect(bob)
    await ready(alice_ws), await ready(bob_ws)
    alice.is_active = False
    await sync_to_async(alice.save)()
    assert (await recv(alice_ws))["code"] == "credentials_revoked"
    assert await closed_with(alice_ws) == CLOSE_UNAUTHENTICATED
    assert await bob_ws.receive_nothing(timeout=0.2)  # only that user's sockets
    await bob_ws.disconnect()


async def test_a_session_user_deactivated_unannounced_is_refused_at_the_next_request(alice, handler, monkeypatch):
    comm = await connect(alice)
    await ready(comm)
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: None)  # as if announced to no one
    from byok.ws import auth

    await sync_to_async(type(alice).objects.filter(pk=alice.pk).update)(is_active=False)
    monkeypatch.setattr(auth, "TOKEN_CACHE_TTL", 0.0)  # past the cache's TTL
    await comm.send_json_to({"type": "chat.request", "id": "late", "messages": HI})
    assert (await recv(comm))["code"] == "credentials_revoked"
    assert await closed_with(comm) == CLOSE_UNAUTHENTICATED


async def test_a_credential_check_that_cannot_reach_the_database_refuses_the_request_and_keeps_the_socket(
    alice_ws, monkeypatch
):
    from byok.ws import auth

    async def down(self, *, fresh=False):
        raise ConnectionError("database away")

    monkeypatch.setattr(auth.Credential, "holds", down)
    await alice_ws.send_json_to({"type": "chat.request", "id": "x", "messages": HI})
    error = await recv(alice_ws)
    assert error["id"] == "x" and error["code"] == "service_unavailable" and error["retryable"] is True
    await alice_ws.send_json_to({"type": "chat.cancel", "id": "x"})
    assert (await recv(alice_ws))["event"] == "cancel_ignored"  # the socket is still there


# -- channel layer: stops and revoked keys ----------------------------------------------------------------


async def test_a_broadcast_stop_reaches_the_socket_and_stops_its_requests(alice_ws, openai, upstream):
    body = Upstream(text_parts("x", "y"), held=2)
    upstream.post(OPENAI).mock(return_value=respond(body))
    await alice_ws.send_json_to({"type": "chat.request", "id": "s", "messages": HI})
    await recv(alice_ws)
    assert await abroadcast_stop(reason="Maintenance in 1 minute.")
    notice = await recv(alice_ws)
    assert notice == {
        "type": "chat.notice",
        "event": "stopped",
        "message": "Maintenance in 1 minute.",
        "stopped": ["s"],
    }
    error = await recv(alice_ws)
    assert error["code"] == "stopped" and error["id"] == "s" and error["partial"] is True
    await asyncio.wait_for(body.closed.wait(), 2)


async def test_a_stop_for_one_user_reaches_only_their_sockets(alice, bob, handler):
    alice_ws, bob_ws = await connect(alice), await connect(bob)
    await ready(alice_ws), await ready(bob_ws)
    assert await sync_to_async(broadcast_stop)(bob.pk, "")
    notice = await recv(bob_ws)
    assert (
        notice["event"] == "stopped" and notice["message"] == "Stopped by an administrator." and notice["stopped"] == []
    )
    assert await alice_ws.receive_nothing(timeout=0.2)
    await alice_ws.disconnect(), await bob_ws.disconnect()


async def test_the_ws_stop_command_broadcasts(alice, bob, handler):
    alice_ws = await connect(alice)
    await ready(alice_ws)
    await sync_to_async(call_command)("ws_stop", "--reason", "Deploying.")
    assert (await recv(alice_ws))["message"] == "Deploying."
    await sync_to_async(call_command)("ws_stop", "--user", "alice")
    assert (await recv(alice_ws))["event"] == "stopped"
    from django.core.management import CommandError

    with pytest.raises(CommandError, match="No user"):
        await sync_to_async(call_command)("ws_stop", "--user", "nobody")
    await alice_ws.disconnect()


async def test_revoking_a_key_notifies_sockets_and_stops_requests_on_that_provider(alice_ws, openai, handler, upstream):
    other = await sync_to_async(registry.register_provider)(
        kind="anthropic", name="claude", api_key="sk-ant-0123456789abcdef", default_model="claude-x"
    )
    assert other
    body = Upstream(text_parts("x", "y"), held=2)
    upstream.post(OPENAI).mock(return_value=respond(body))
    await alice_ws.send_json_to({"type": "chat.request", "id": "k", "messages": HI, "model": "openai/gpt-4o"})
    await recv(alice_ws)
    key = await sync_to_async(lambda: openai.keys.get())()
    await sync_to_async(registry.revoke_key)(openai.pk, key.pk)
    notice = await recv(alice_ws)
    assert notice["type"] == "chat.notice" and notice["event"] == "key_revoked"
    assert notice["provider"] == "openai" and notice["key_hint"] == key.hint and notice["stopped"] == ["k"]
    error = await recv(alice_ws)
    assert error["code"] == "key_revoked" and error["retryable"] is True
    await asyncio.wait_for(body.closed.wait(), 2)

    claude_key = await sync_to_async(lambda: other.keys.get())()
    await sync_to_async(registry.revoke_key)(other.pk, claude_key.pk)
    notice = await recv(alice_ws)
    assert notice["provider"] == "claude" and notice["stopped"] == [] and "stopped" not in notice["message"]


async def test_the_chat_works_when_the_channel_layer_fails(alice, handler, monkeypatch):
    from channels.layers import get_channel_layer

    layer = get_channel_layer()

    async def broken(*args, **kwargs):
        raise ConnectionError("layer down")

    monkeypatch.setattr(layer, "group_discard", broken)
    joined = await connect(alice)
    await ready(joined)
    await joined.disconnect()  # leaving the groups fails: logged, the socket still closes cleanly
    monkeypatch.setattr(layer, "group_add", broken)
    monkeypatch.setattr(layer, "group_send", broken)
    comm = await connect(alice)
    await ready(comm)
    assert await abroadcast_stop() is False
    await comm.disconnect()


async def test_without_a_channel_layer_sockets_still_chat(alice, handler, settings):
    settings.CHANNEL_LAYERS = {}
    comm = await connect(alice)
    await ready(comm)
    await comm.disconnect()


async def test_without_a_channel_layer_there_is_nothing_to_broadcast(monkeypatch):
    monkeypatch.setattr(broadcast, "get_channel_layer", lambda: None)
    assert await abroadcast_stop() is False


# -- the outbox (back-pressure) -------------------------------------------------------------------------


class SlowSocket:
    """A send function that blocks until released, like a server whose send waits for the client."""

    def __init__(self) -> None:
        self.sent: list[dict] = []
        self.gate = asyncio.Event()

    async def __call__(self, frame: dict) -> None:
        await self.gate.wait()
        self.sent.append(frame)


async def test_the_outbox_merges_deltas_while_the_socket_is_slow():
    socket = SlowSocket()
    box = Outbox(socket, high_water=10_000)
    box.start()
    box.put_nowait({"type": "chat.delta", "id": "a", "text": "first"})
    await asyncio.sleep(0)  # the sender takes "first" and waits on the socket
    for i in range(100):
        await box.put({"type": "chat.delta", "id": "a", "text": str(i % 10)})
        await box.put({"type": "chat.delta", "id": "b", "reasoning": "r"})
    await box.put({"type": "chat.delta", "id": "b", "text": "T"})  # text after reasoning: merged in order
    await box.put({"type": "chat.delta", "id": "b", "reasoning": "late"})  # reasoning after text: a new frame
    box.put_nowait({"type": "chat.tool_call", "id": "a", "index": 0, "tool_call_id": "c", "name": "f", "arguments": ""})
    for part in ('{"x"', ": 1}"):
        await box.put({"type": "chat.tool_call", "id": "a", "index": 0, "arguments": part})
    await box.put(
        {"type": "chat.tool_call", "id": "a", "index": 1, "tool_call_id": "d", "name": "g", "arguments": "{}"}
    )
    box.put_nowait({"type": "chat.done", "id": "a"})
    assert len(box) == 6  # one delta per request and kind, one frame per tool call, the done
    socket.gate.set()
    while len(socket.sent) < 7:
        await asyncio.sleep(0.01)
    a_text = "".join(f.get("text", "") for f in socket.sent if f["id"] == "a" and f["type"] == "chat.delta")
    assert a_text == "first" + "0123456789" * 10
    b = [f for f in socket.sent if f["id"] == "b"]
    assert b == [
        {"type": "chat.delta", "id": "b", "reasoning": "r" * 100, "text": "T"},
        {"type": "chat.delta", "id": "b", "reasoning": "late"},
    ]
    assert [f["arguments"] for f in socket.sent if f["type"] == "chat.tool_call"] == ['{"x": 1}', "{}"]
    assert socket.sent[-1] == {"type": "chat.done", "id": "a"}
    assert box.queued_chars == 0
    box.close()


async def test_the_outbox_blocks_producers_at_the_high_water_mark():
    socket = SlowSocket()
    box = Outbox(socket, high_water=200)
    box.start()
    box.put_nowait({"type": "chat.delta", "id": "a", "text": "x"})
    await asyncio.sleep(0)
    await box.put({"type": "chat.delta", "id": "a", "text": "y" * 300})  # over the mark now
    producer = asyncio.create_task(box.put({"type": "chat.delta", "id": "a", "text": "z"}))
    await asyncio.sleep(0.05)
    assert not producer.done()  # waiting for the socket: the upstream is not read meanwhile
    box.put_nowait({"type": "chat.error", "id": "b", "code": "cancelled"})  # terminal frames are never held back
    socket.gate.set()
    await asyncio.wait_for(producer, 1)
    while box.queued_chars:
        await asyncio.sleep(0.01)
    assert "".join(f.get("text", "") for f in socket.sent) == "x" + "y" * 300 + "z"
    box.close()


async def test_the_outbox_closes_after_what_is_queued_and_then_drops_frames():
    socket = SlowSocket()
    socket.gate.set()
    box = Outbox(socket, high_water=100)
    box.start()
    box.put_nowait({"type": "chat.error", "id": None, "code": "unauthenticated"})
    box.close_after(4401)
    box.close_after(4000)
    box.put_nowait({"type": "chat.delta", "id": "late", "text": "x"})
    await asyncio.wait_for(box._task, 1)
    assert socket.sent == [{"type": "chat.error", "id": None, "code": "unauthenticated"}, {"__close__": 4401}]
    await box.put({"type": "chat.delta", "id": "x", "text": "dropped"})  # closed: returns at once
    assert len(box) == 0
    box.close()


async def test_the_outbox_stops_when_the_socket_fails():
    async def gone(frame):
        raise OSError("socket closed")

    box = Outbox(gone, high_water=100)
    box.start()
    box.put_nowait({"type": "chat.notice", "event": "x", "message": "y"})
    await asyncio.wait_for(box._task, 1)
    box.put_nowait({"type": "chat.notice", "event": "x", "message": "y"})
    assert len(box) == 0


def test_redis_channel_layers_read_longer_than_they_block():
    from byok_project.asgi import _layer_read_timeouts

    layers = {
        "default": {
            "BACKEND": "channels_redis.core.RedisChannelLayer",
            "CONFIG": {"hosts": ["redis://h:6379/0", {"address": "redis://x"}]},
        },
        "memory": {"BACKEND": "channels.layers.InMemoryChannelLayer"},
    }
    _layer_read_timeouts(layers)
    assert layers["default"]["CONFIG"]["hosts"] == [
        {"address": "redis://h:6379/0", "socket_timeout": 15.0},
        {"address": "redis://x"},
    ]
    assert layers["memory"] == {"BACKEND": "channels.layers.InMemoryChannelLayer"}
