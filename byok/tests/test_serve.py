"""`make serve`'s launcher (`byok_project.serve`): the server and worker settings, and each server serving byok.

The settings are checked without starting anything; then uvicorn and granian
each serve a real chat (non-streaming, streaming, and over the websocket)
from the fake provider, so the servers other than daphne (which every other
live test runs) are tested too. Two workers behind one socket are the
end-to-end suite's (`byok/tests/e2e/test_workers.py`).
"""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import uuid

import httpx
import pytest

from byok.tests.live import ROOT, drop_live_env, live_env, manage, start_fake_provider, start_served
from byok_project import serve
from byok_project.serve import Plan, ServeError, plan
from devtools.fakeprovider.answer import filler_text


def test_the_defaults_are_one_daphne_process_on_loopback_port_8000():
    assert plan({}) == Plan("daphne", 1, "127.0.0.1", 8000)


def test_server_workers_host_and_port_come_from_the_environment():
    env = {
        "BYOK_SERVER": " Uvicorn ",
        "BYOK_WORKERS": "3",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "HOST": "0.0.0.0",
        "PORT": "9000",
    }
    assert plan(env) == Plan("uvicorn", 3, "0.0.0.0", 9000)


def test_several_workers_without_redis_are_refused_naming_redis_url():
    with pytest.raises(ServeError, match=r"BYOK_WORKERS=2 needs REDIS_URL.*rate limits.*BYOK_WORKERS=1"):
        plan({"BYOK_WORKERS": "2"})
    with pytest.raises(ServeError, match="needs REDIS_URL"):
        plan({"BYOK_WORKERS": "2", "REDIS_URL": "  "})


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"BYOK_SERVER": "gunicorn"}, r"BYOK_SERVER='gunicorn' is not one of daphne, uvicorn, granian"),
        ({"BYOK_WORKERS": "two"}, r"BYOK_WORKERS must be a whole number of processes, not 'two'"),
        ({"BYOK_WORKERS": "0"}, r"BYOK_WORKERS must be at least 1, not 0"),
        ({"PORT": "http"}, r"PORT must be a number, not 'http'"),
    ],
)
def test_settings_that_cannot_be_served_are_refused_with_what_to_change(env, message):
    with pytest.raises(ServeError, match=message):
        plan(env)


def test_a_server_that_is_not_installed_names_what_to_install(monkeypatch):
    monkeypatch.setattr(serve.importlib.util, "find_spec", lambda name: None if name == "granian" else object())
    with pytest.raises(ServeError, match=r"BYOK_SERVER=granian needs granian: pip install -r requirements.txt"):
        plan({"BYOK_SERVER": "granian"})


def test_the_launcher_exits_with_the_message_before_starting_anything():
    env = {"PATH": "/usr/bin:/bin", "BYOK_WORKERS": "4"}
    done = subprocess.run(
        [sys.executable, "-m", "byok_project.serve"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 2
    assert done.stderr.startswith("byok: BYOK_WORKERS=4 needs REDIS_URL")


def test_workers_share_the_launchers_socket_by_file_descriptor():
    assert Plan("daphne", 2, "127.0.0.1", 8000).command(7)[-3:] == ["--fd", "7", "byok_project.asgi:application"]
    assert Plan("daphne", 2, "::1", 8000).command(7)[-3:] == [
        "-e",
        "fd:fileno=7:domain=INET6",
        "byok_project.asgi:application",
    ]
    uvicorn = Plan("uvicorn", 2, "127.0.0.1", 8000).command(7)
    assert uvicorn[uvicorn.index("--fd") + 1] == "7"
    assert {"uvloop", "httptools"} <= set(uvicorn)
    # granian starts its own workers on one socket
    granian = Plan("granian", 2, "127.0.0.1", 8000)
    assert not granian.shares_socket
    assert granian.command()[granian.command().index("--workers") + 1] == "2"
    assert not Plan("daphne", 1, "127.0.0.1", 8000).shares_socket
    assert Plan("daphne", 2, "127.0.0.1", 8000).shares_socket


def test_the_shared_socket_listens_and_can_be_inherited():
    sock = serve.bind("127.0.0.1", 0)
    try:
        assert sock.get_inheritable()
        with httpx.Client() as client, pytest.raises(httpx.HTTPError):
            client.get(f"http://127.0.0.1:{sock.getsockname()[1]}/", timeout=0.2)  # accepted, never answered
    finally:
        sock.close()


# -- uvicorn and granian serve byok ------------------------------------------------------------


@pytest.fixture(scope="module")
def upstream(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("serve")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    env["BYOK_STATE_PREFIX"] = f"byok-serve-{uuid.uuid4().hex[:8]}:"
    manage(
        env,
        "shell",
        "-c",
        (
            "from byok import registry; registry.register_provider(kind='openai', name='up', "
            f"base_url={fake.url + '/v1'!r}, default_model='gpt-4o-mini', api_key='sk-serve-0123456789abcdef')"
        ),
    )
    yield env, tmp
    fake.stop()
    drop_live_env(env)


async def _ws_chat(url: str, token: str) -> str:
    from websockets.asyncio.client import connect

    text = ""
    async with connect(url.replace("http://", "ws://") + "/ws/chat/", open_timeout=20) as ws:
        await ws.send(json.dumps({"type": "auth", "token": token}))
        await ws.send(
            json.dumps(
                {
                    "type": "chat.request",
                    "id": "r1",
                    "model": "up/gpt-4o-mini",
                    "messages": [{"role": "user", "content": "hi"}],
                }
            )
        )
        async with asyncio.timeout(20):
            async for raw in ws:
                frame = json.loads(raw)
                if frame.get("id") != "r1":
                    continue
                if frame["type"] == "chat.delta":
                    text += frame["text"]
                elif frame["type"] in ("chat.done", "chat.error"):
                    assert frame["type"] == "chat.done", frame
                    return text
    raise AssertionError("the socket closed before chat.done")


@pytest.mark.parametrize("server_name", ["uvicorn", "granian"])
def test_uvicorn_and_granian_serve_chat_over_http_sse_and_websocket(upstream, server_name):
    env, tmp = upstream
    server = start_served(env, tmp, server=server_name, extra_env={"LOG_LEVEL": "WARNING"})
    try:
        body = {"model": "up/gpt-4o-mini", "messages": [{"role": "user", "content": "hi"}]}
        with server.admin() as client:
            answer = client.post("/v1/chat/completions", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["choices"][0]["message"]["content"] == filler_text(8)
            with client.stream("POST", "/v1/chat/completions", json={**body, "stream": True}) as streamed:
                assert streamed.headers["content-type"].startswith("text/event-stream")
                lines = [line for line in streamed.iter_lines() if line.startswith("data: ")]
        assert lines[-1] == "data: [DONE]"
        deltas = [json.loads(line[6:]) for line in lines[:-1]]
        assert "".join(d["choices"][0]["delta"].get("content") or "" for d in deltas if d["choices"]) == filler_text(8)
        assert asyncio.run(_ws_chat(server.url, server.admin_token)) == filler_text(8)
    finally:
        server.stop()


def test_several_workers_get_a_fresh_metrics_directory_and_stale_counts_are_removed(tmp_path):
    env: dict[str, str] = {}
    directory, temporary = serve.metrics_dir(Plan("daphne", 2, "127.0.0.1", 8000), env)
    try:
        assert temporary and directory == env["PROMETHEUS_MULTIPROC_DIR"]
    finally:
        import shutil

        shutil.rmtree(directory)
    given = tmp_path / "metrics"
    given.mkdir()
    (given / "counter_123.db").write_bytes(b"stale")
    (given / "keep.txt").write_text("not ours")
    env = {"PROMETHEUS_MULTIPROC_DIR": str(given)}
    assert serve.metrics_dir(Plan("daphne", 1, "127.0.0.1", 8000), env) == (str(given), False)
    assert sorted(p.name for p in given.iterdir()) == ["keep.txt"]
    assert serve.metrics_dir(Plan("daphne", 1, "127.0.0.1", 8000), {}) == (None, False)
