"""The chat websocket end to end: real daphne processes, the `websockets` client, the fake provider streaming slowly.

The fake provider paces its answers through its `/cfg/` base-URL prefix, so
tokens really arrive over time and a cancel really closes an open upstream
request (the fake records it as `cancelled`). With `REDIS_URL` set (CI's
second run) two daphne processes share Redis: a key revoked through one of
them, or a `manage.py ws_stop` from a third process, reaches a socket on the
other.
"""

from __future__ import annotations

import asyncio
import json
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import httpx
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed, InvalidStatus

from byok.tests.conftest import test_redis_url
from byok.tests.live import (
    ADMIN_PASSWORD,
    ADMIN_USER,
    drop_live_env,
    live_env,
    manage,
    register,
    start_daphne,
    start_fake_provider,
)
from devtools.fakeprovider.answer import filler_text

PACED_CHUNKS = 20


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("wslive")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    # Key ids restart with each live database: keep this run's rate windows and cooldowns apart in a shared Redis.
    env["BYOK_STATE_PREFIX"] = f"byok-wslive-{uuid.uuid4().hex[:8]}:"
    keys = {
        "paced": register(
            env, "paced", f"{fake.url}/cfg/chunks={PACED_CHUNKS};delay_ms=20/v1", "sk-live-paced-0123456789"
        ),
        "slow": register(env, "slow", f"{fake.url}/cfg/chunks=600;delay_ms=20/v1", "sk-live-slow-0123456789"),
        "spare": register(env, "spare", f"{fake.url}/cfg/chunks=600;delay_ms=20/v1", "sk-live-spare-0123456789"),
    }  # registered before daphne starts: without Redis a server learns of changes made elsewhere only on restart
    server = start_daphne(env, tmp)
    yield server, fake, env, keys, tmp
    server.stop()
    fake.stop()
    drop_live_env(env)


def ws_url(server) -> str:
    return server.ws_url + "/ws/chat/"


def token_header(server) -> dict:
    return {"Authorization": f"Token {server.admin_token}"}


async def frame(ws, timeout: float = 10) -> dict:
    return json.loads(await asyncio.wait_for(ws.recv(), timeout))


async def until(ws, predicate, timeout: float = 15) -> list[dict]:
    """Frames up to and including the first one `predicate` accepts."""
    frames = []
    deadline = time.monotonic() + timeout
    while True:
        frames.append(await frame(ws, max(0.1, deadline - time.monotonic())))
        if predicate(frames[-1]):
            return frames


def terminal(rid: str):
    return lambda f: f["type"] in ("chat.done", "chat.error") and f.get("id") == rid


def records(fake, **params) -> list[dict]:
    """The fake provider's request records (its API answers a bare list)."""
    with fake.control() as control:
        body = control.get("/_control/requests", params=params).json()
    return body["requests"] if isinstance(body, dict) else body


def wait_for_outcome(fake, outcome: str, since_id: int = 0, timeout: float = 5) -> list[dict]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = [r for r in records(fake, outcome=outcome) if r["id"] > since_id]
        if found:
            return found
        time.sleep(0.05)
    raise AssertionError(f"the fake provider recorded no {outcome!r} request: {records(fake)[-3:]}")


def last_request_id(fake) -> int:
    found = records(fake)
    return found[-1]["id"] if found else 0


@contextmanager
def admin_session(server) -> Iterator[httpx.Client]:
    """An HTTP client logged in to the admin with a session cookie (as a browser would be)."""
    with httpx.Client(base_url=server.url, timeout=30) as client:
        page = client.get("/admin/login/")
        csrf = re.findall(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)[0]
        answer = client.post(
            "/admin/login/",
            data={"username": ADMIN_USER, "password": ADMIN_PASSWORD, "csrfmiddlewaretoken": csrf, "next": "/admin/"},
        )
        assert answer.status_code == 302, answer.text[:500]
        yield client


async def test_tokens_arrive_over_time_over_a_real_socket(live):
    server, fake, *_ = live
    async with connect(ws_url(server), additional_headers=token_header(server)) as ws:
        assert (await frame(ws))["type"] == "chat.ready"
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "t1",
                    "provider": "paced",
                    "messages": [{"role": "user", "content": "Hello"}],
                }
            )
        )
        frames, times = [], []
        while True:
            frames.append(await frame(ws))
            times.append(time.monotonic())
            if terminal("t1")(frames[-1]):
                break
    deltas = [(f, t) for f, t in zip(frames, times) if f["type"] == "chat.delta"]
    assert "".join(f["text"] for f, _ in deltas) == filler_text(PACED_CHUNKS)
    assert len(deltas) >= PACED_CHUNKS // 2  # paced upstream: frames are not merged into one
    assert deltas[-1][1] - deltas[0][1] > 0.15  # 20 chunks 20 ms apart: spread over time, not one burst
    done = frames[-1]
    assert done["type"] == "chat.done" and done["provider"] == "paced" and done["finish_reason"] == "stop"
    assert done["usage"]["output_tokens"] == PACED_CHUNKS and done["ttft_ms"] < done["latency_ms"]


async def test_cancel_closes_the_upstream_request(live):
    server, fake, *_ = live
    since = last_request_id(fake)
    async with connect(ws_url(server), additional_headers=token_header(server)) as ws:
        await frame(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "c1",
                    "provider": "slow",
                    "messages": [{"role": "user", "content": "Tell me"}],
                }
            )
        )
        deltas = await until(ws, lambda f: f["type"] == "chat.delta" and f["id"] == "c1")
        assert deltas[-1]["text"]
        await ws.send(json.dumps({"type": "chat.cancel", "id": "c1"}))
        frames = await until(ws, terminal("c1"))
        assert (
            frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "cancelled" and frames[-1]["partial"] is True
        )
    [record] = wait_for_outcome(fake, "cancelled", since)
    assert record["chunks_sent"] < 600


async def test_two_requests_on_one_socket_and_a_disconnect_cancelling_both(live):
    server, fake, *_ = live
    since = last_request_id(fake)
    async with connect(ws_url(server), additional_headers=token_header(server)) as ws:
        await frame(ws)
        for rid in ("a", "b"):
            await ws.send(
                json.dumps(
                    {
                        "type": "chat.request",
                        "id": rid,
                        "provider": "slow",
                        "messages": [{"role": "user", "content": rid}],
                    }
                )
            )
        seen = set()
        while seen != {"a", "b"}:
            f = await frame(ws)
            if f["type"] == "chat.delta":
                seen.add(f["id"])
    # The socket closed with both answers running: both upstream requests end as cancelled.
    deadline = time.monotonic() + 5
    while len([r for r in records(fake, outcome="cancelled") if r["id"] > since]) < 2:
        assert time.monotonic() < deadline, records(fake)[-3:]
        time.sleep(0.05)


async def test_session_cookie_first_frame_token_and_origin_over_daphne(live):
    server, *_ = live
    with admin_session(server) as browser:
        cookie = f"sessionid={browser.cookies['sessionid']}"
    async with connect(ws_url(server), additional_headers={"Cookie": cookie}, origin=server.url) as ws:
        assert (await frame(ws))["user"] == ADMIN_USER
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": server.admin_token}))
        assert (await frame(ws))["type"] == "chat.ready"
    async with connect(ws_url(server)) as ws:
        await ws.send(json.dumps({"type": "auth", "token": "wrong"}))
        assert (await frame(ws))["code"] == "auth_failed"
        with pytest.raises(ConnectionClosed) as closed:
            await frame(ws)
        assert closed.value.rcvd.code == 4401
    with pytest.raises(InvalidStatus) as refused:
        async with connect(ws_url(server), origin="http://evil.example"):
            pass  # pragma: no cover
    assert refused.value.response.status_code == 403


async def test_a_revoked_key_stops_requests_on_its_provider(live):
    """In one process (the in-memory layer in the first CI run, Redis in the second)."""
    server, fake, env, keys, tmp = live
    since = last_request_id(fake)
    async with connect(ws_url(server), additional_headers=token_header(server)) as ws:
        await frame(ws)
        await ws.send(
            json.dumps(
                {"type": "chat.request", "id": "k", "provider": "spare", "messages": [{"role": "user", "content": "x"}]}
            )
        )
        await until(ws, lambda f: f["type"] == "chat.delta")
        with admin_session(server) as admin:
            revoke_in_admin(admin, keys["spare"])
        frames = await until(ws, terminal("k"))
        notice = next(f for f in frames if f["type"] == "chat.notice")
        assert notice["event"] == "key_revoked" and notice["provider"] == "spare" and notice["stopped"] == ["k"]
        assert frames[-1]["code"] == "key_revoked"
    wait_for_outcome(fake, "cancelled", since)


def revoke_in_admin(admin: httpx.Client, key_id: int) -> None:
    answer = admin.post(
        "/admin/byok/apikey/",
        data={
            "action": "revoke_keys",
            "_selected_action": str(key_id),
            "index": "0",
            "select_across": "0",
            "csrfmiddlewaretoken": admin.cookies["csrftoken"],
        },
    )
    assert answer.status_code == 302, answer.text[:500]


@pytest.mark.redis  # two server processes share the channel layer only through Redis
async def test_a_revoke_on_one_process_and_ws_stop_reach_sockets_on_another(live):
    server_a, fake, env, keys, tmp = live
    own_a = None
    if not env.get("REDIS_URL"):  # a run without REDIS_URL (SQLite, in-process state): two servers of this test's own
        env = {**env, "REDIS_URL": test_redis_url()}
        server_a = own_a = start_daphne(env, tmp)
    server_b = start_daphne(env, tmp)
    try:
        since = last_request_id(fake)
        async with (
            connect(ws_url(server_b), additional_headers=token_header(server_b)) as on_b,
            connect(ws_url(server_a), additional_headers=token_header(server_a)) as on_a,
        ):
            await frame(on_b), await frame(on_a)
            await on_b.send(
                json.dumps(
                    {
                        "type": "chat.request",
                        "id": "b1",
                        "provider": "slow",
                        "messages": [{"role": "user", "content": "x"}],
                    }
                )
            )
            await until(on_b, lambda f: f["type"] == "chat.delta")
            with admin_session(server_a) as admin:  # the revoke happens in process A
                revoke_in_admin(admin, keys["slow"])
            frames = await until(on_b, terminal("b1"))
            notice = next(f for f in frames if f["type"] == "chat.notice")
            assert notice["event"] == "key_revoked" and notice["provider"] == "slow" and notice["stopped"] == ["b1"]
            assert frames[-1]["type"] == "chat.error" and frames[-1]["code"] == "key_revoked"
            wait_for_outcome(fake, "cancelled", since)
            assert (await until(on_a, lambda f: f["type"] == "chat.notice"))[-1]["event"] == "key_revoked"

            manage(env, "ws_stop", "--reason", "Stopping for maintenance.")  # a third process
            for ws in (on_a, on_b):
                stop = await until(ws, lambda f: f["type"] == "chat.notice")
                assert stop[-1]["event"] == "stopped" and stop[-1]["message"] == "Stopping for maintenance."
    finally:
        server_b.stop()
        if own_a is not None:
            own_a.stop()


def new_user_token(env: dict, username: str) -> str:
    """A user of its own and a DRF token for it, made by another process (`manage.py shell`)."""
    code = (
        "from django.contrib.auth import get_user_model\n"
        "from rest_framework.authtoken.models import Token\n"
        f"u = get_user_model().objects.create_user({username!r})\n"
        "print('TOKEN', Token.objects.create(user=u).plaintext)\n"
    )
    return re.findall(r"TOKEN (\w+)", manage(env, "shell", "-c", code))[0]


async def closed_code(ws, timeout: float) -> int:
    """Read frames until the server closes the socket; its close code (frames before it are ignored)."""
    deadline = time.monotonic() + timeout
    try:
        while True:
            await asyncio.wait_for(ws.recv(), max(0.1, deadline - time.monotonic()))
    except ConnectionClosed as closed:
        return closed.rcvd.code if closed.rcvd else -1


async def test_a_token_deleted_by_another_process_closes_the_socket_at_its_next_request(live):
    """No channel layer needed: each chat.request re-checks the token through the HTTP token cache, whose
    refresh drops a token deleted elsewhere within its TTL (5 s), so a request after that is refused with 4401."""
    server, fake, env, keys, tmp = live
    name = f"ws-{uuid.uuid4().hex[:6]}"
    token = new_user_token(env, name)
    async with connect(ws_url(server), additional_headers={"Authorization": f"Bearer {token}"}) as ws:
        assert (await frame(ws))["type"] == "chat.ready"
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "ok",
                    "provider": "paced",
                    "messages": [{"role": "user", "content": "x"}],
                }
            )
        )
        assert (await until(ws, terminal("ok")))[-1]["type"] == "chat.done"
        # In a thread: the client keeps reading while the other process runs (a blocked loop would miss
        # the server's close handshake, which daphne gives up on after a second).
        await asyncio.to_thread(
            manage,
            env,
            "shell",
            "-c",
            f"from rest_framework.authtoken.models import Token; "
            f"Token.objects.filter(user__username={name!r}).delete()",
        )
        deleted = time.monotonic()
        code = None
        for attempt in range(30):  # one request every 0.25 s until refused
            try:
                await ws.send(
                    json.dumps(
                        {
                            "type": "chat.request",
                            "id": f"r{attempt}",
                            "provider": "paced",
                            "messages": [{"role": "user", "content": "x"}],
                        }
                    )
                )
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else -1
                break
            try:
                got = await until(ws, lambda f: f["type"] in ("chat.done", "chat.error"), timeout=5)
            except ConnectionClosed as closed:
                code = closed.rcvd.code if closed.rcvd else -1
                break
            if got[-1].get("code") == "credentials_revoked":
                code = await closed_code(ws, 5)
                break
            await asyncio.sleep(0.25)
        assert code == 4401
        assert time.monotonic() - deleted < 5 + 2 + 2  # the cache's TTL, plus a request's length and slack


@pytest.mark.redis  # two server processes share the channel layer only through Redis
async def test_a_token_delete_or_user_deactivation_elsewhere_closes_open_sockets_on_every_process_at_once(live):
    server_a, fake, env, keys, tmp = live
    # A provider of its own (earlier tests revoke the module's slow ones), known to B from its start.
    register(env, "slow2", f"{fake.url}/cfg/chunks=600;delay_ms=20/v1", "sk-live-slow2-0123456789")
    own_a = None
    if not env.get("REDIS_URL"):  # a run without REDIS_URL (SQLite, in-process state): two servers of this test's own
        env = {**env, "REDIS_URL": test_redis_url()}
        server_a = own_a = start_daphne(env, tmp)
    server_b = start_daphne(env, tmp)
    try:
        first, second = f"ws-{uuid.uuid4().hex[:6]}", f"ws-{uuid.uuid4().hex[:6]}"
        token_1, token_2 = new_user_token(env, first), new_user_token(env, second)
        async with (
            connect(ws_url(server_a), additional_headers={"Authorization": f"Token {token_1}"}) as on_a,
            connect(ws_url(server_b), additional_headers={"Authorization": f"Token {token_2}"}) as on_b,
        ):
            await frame(on_a), await frame(on_b)
            await on_b.send(
                json.dumps(
                    {
                        "type": "chat.request",
                        "id": "b1",
                        "provider": "slow2",
                        "messages": [{"role": "user", "content": "x"}],
                    }
                )
            )
            await until(on_b, lambda f: f["type"] == "chat.delta")
            # A third process deletes the token of the socket on A, deactivates the user of the socket on B.
            await asyncio.to_thread(
                manage,
                env,
                "shell",
                "-c",
                f"from rest_framework.authtoken.models import Token; "
                f"Token.objects.get(user__username={first!r}).delete()",
            )
            started = time.monotonic()
            assert await closed_code(on_a, 5) == 4401
            await asyncio.to_thread(
                manage,
                env,
                "shell",
                "-c",
                f"from django.contrib.auth import get_user_model; u = "
                f"get_user_model().objects.get(username={second!r}); u.is_active = False; u.save()",
            )
            frames = await until(on_b, terminal("b1"), timeout=5)
            assert frames[-1]["code"] == "unauthenticated"
            assert await closed_code(on_b, 5) == 4401
            assert time.monotonic() - started < 5 + 5  # pushed, not waited for: two manage.py starts are most of it
    finally:
        server_b.stop()
        if own_a is not None:
            own_a.stop()
