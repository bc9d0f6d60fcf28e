"""The production set-up of `deploy/`, run: nginx (Debian's package) in front of two byok workers.

byok is started with the systemd unit's `ExecStart` and `Environment`
(`deploy/systemd/byok.service`) and the example environment file
(`deploy/byok.env.example`), with only what a test must change overridden
(secrets, database, Redis, ports): `BYOK_WORKERS=2` on one port, over
PostgreSQL when the run has it (else SQLite) and Redis. nginx runs as this
test's own process with the site file `deploy/nginx/byok.conf`, its listen
address and upstream rewritten to free ports on 127.0.0.1.

Through nginx: `/healthz` and `/readyz`; a stream whose upstream stalls after
three chunks (the three arrive while the upstream still holds the stream:
nginx passes SSE through unbuffered), then the client leaves and the
upstream request is cancelled; a websocket chat and a `chat.cancel`; a body
over the limit (JSON 413); `/metrics` refused without the token (a proxied
request is not loopback), then read with it and parsed by prometheus_client:
the count of the burst's requests is the same whichever worker answers.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import shutil
import subprocess
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families
from websockets.sync.client import connect

from byok.tests.conftest import IN_CI, test_redis_url
from byok.tests.e2e import db_rows, register, uid, upstream_outcome, wait_for
from byok.tests.live import (
    ROOT,
    FakeProvider,
    LiveServer,
    _start_server,
    _stop,
    drop_live_env,
    free_port,
    live_env,
    python_command,
    start_fake_provider,
)
from devtools.fakeprovider.answer import filler_text

pytestmark = [pytest.mark.redis]

DEPLOY = ROOT / "deploy"
NGINX = shutil.which("nginx") or next((p for p in ("/usr/sbin/nginx",) if os.path.exists(p)), None)
MESSAGES = [{"role": "user", "content": "Tell me a story."}]


def env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines of an environment file (systemd's EnvironmentFile), comments skipped."""
    found = {}
    for line in path.read_text().splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            key, _, value = line.partition("=")
            found[key.strip()] = value.strip()
    return found


def unit_service(path: Path) -> tuple[list[str], dict[str, str]]:
    """The unit's ExecStart (split) and its Environment= assignments."""
    exec_start, environment = [], {}
    for line in path.read_text().splitlines():
        if line.startswith("ExecStart="):
            exec_start = line.removeprefix("ExecStart=").split()
        elif line.startswith("Environment="):
            key, _, value = line.removeprefix("Environment=").partition("=")
            environment[key] = value
    return exec_start, environment


def nginx_site(port: int, upstream: int) -> str:
    """deploy/nginx/byok.conf listening on 127.0.0.1:`port`, in front of 127.0.0.1:`upstream`."""
    site = (DEPLOY / "nginx" / "byok.conf").read_text()
    site, listens = re.subn(r"^\s*listen 80;.*$", f"    listen 127.0.0.1:{port};", site, flags=re.M)
    site, v6 = re.subn(r"^\s*listen \[::\]:80;.*$", "", site, flags=re.M)
    site, servers = re.subn(r"server 127\.0\.0\.1:8000;", f"server 127.0.0.1:{upstream};", site)
    assert (listens, v6, servers) == (1, 1, 1), "deploy/nginx/byok.conf no longer has the lines the test rewrites"
    return site


@dataclass
class Proxy:
    url: str
    proc: subprocess.Popen
    byok: LiveServer
    fake: FakeProvider
    metrics_dir: Path
    token: str

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.byok.admin_token}"}


def start_nginx(tmp: Path, upstream: int) -> tuple[str, subprocess.Popen]:
    assert NGINX is not None
    port = free_port()
    (tmp / "site.conf").write_text(nginx_site(port, upstream))
    temp = {name: tmp / name for name in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")}
    for path in temp.values():
        path.mkdir(exist_ok=True)
    user = "user root;\n" if os.geteuid() == 0 else ""  # root's workers would otherwise run as nobody
    (tmp / "nginx.conf").write_text(
        f"{user}worker_processes 1;\npid {tmp}/nginx.pid;\nerror_log {tmp}/error.log warn;\n"
        "events { worker_connections 1024; }\n"
        f"http {{\n  access_log {tmp}/access.log;\n"
        + "".join(f"  {name}_temp_path {path};\n" for name, path in temp.items())
        + f"  include {tmp}/site.conf;\n}}\n"
    )
    check = subprocess.run([NGINX, "-t", "-p", str(tmp), "-c", str(tmp / "nginx.conf")], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr
    proc = subprocess.Popen(
        [NGINX, "-p", str(tmp), "-c", str(tmp / "nginx.conf"), "-g", "daemon off;"],
        stdout=subprocess.DEVNULL,
        stderr=(tmp / "nginx.stderr").open("w"),
    )
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 20
    while True:
        try:
            if httpx.get(url + "/healthz", timeout=2).status_code == 200:
                return url, proc
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"nginx did not start: {(tmp / 'error.log').read_text()[-2000:]}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def proxy(tmp_path_factory) -> Iterator[Proxy]:
    if NGINX is None:
        message = "needs nginx (apt-get install -y nginx)"
        if IN_CI:
            pytest.fail(f"CI has every service, but this test {message}", pytrace=False)
        pytest.skip(message)
    tmp = tmp_path_factory.mktemp("nginx")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    procs: list[subprocess.Popen] = []
    try:
        exec_start, unit_env = unit_service(DEPLOY / "systemd" / "byok.service")
        assert exec_start[0] == "/srv/byok/.venv/bin/python", exec_start
        metrics_dir = tmp / "run" / "metrics"
        token = secrets.token_urlsafe(24)
        port = free_port()
        served = {
            **env_file(DEPLOY / "byok.env.example"),
            **{k: v.replace("/run/byok", str(tmp / "run")) for k, v in unit_env.items()},
            # What a test must change: its own secrets, database, Redis, ports and host names.
            **{k: env[k] for k in ("DJANGO_SECRET_KEY", "BYOK_MASTER_KEY", "DATABASE_URL", "BYOK_STATE_PREFIX")},
            "REDIS_URL": test_redis_url(),
            "PORT": str(port),
            "ALLOWED_HOSTS": "127.0.0.1,localhost",
            "CSRF_TRUSTED_ORIGINS": "",
            "BYOK_METRICS_TOKEN": token,
        }
        assert served["BYOK_WORKERS"] == "2" and served["BYOK_LOG_FORMAT"] == "json"
        assert served["PROMETHEUS_MULTIPROC_DIR"] == str(metrics_dir)
        command = python_command(*exec_start[1:])
        byok = _start_server(command, port, env, tmp, "byok-unit", served)
        procs.append(byok.proc)
        url, nginx = start_nginx(tmp, port)
        procs.append(nginx)
        yield Proxy(url, nginx, byok, fake, metrics_dir, token)
    finally:
        for proc in reversed(procs):
            _stop(proc)
        fake.stop()
        drop_live_env(env)


def _provider(proxy: Proxy, settings: str = "") -> tuple[str, str]:
    name, key = f"nginx-{uid()}", f"sk-nginx-{uid()}-0000"
    register(
        proxy.byok,
        provider="openai",
        name=name,
        base_url=f"{proxy.fake.url}{'/cfg/' + settings if settings else ''}/v1",
        model="gpt-4o-mini",
        api_key=key,
    )
    return name, key


def _upstream_outcome(proxy: Proxy, key: str) -> str | None:
    return upstream_outcome(proxy.fake, key)


def test_health_probes_answer_through_nginx(proxy):
    assert httpx.get(proxy.url + "/healthz", timeout=10).json() == {"status": "ok"}
    ready = httpx.get(proxy.url + "/readyz", timeout=10)
    assert ready.status_code == 200, ready.text
    assert ready.json()["status"] == "ready" and ready.json()["checks"]["redis"] == {"ok": True}


def test_a_stream_arrives_as_it_is_made_and_leaving_cancels_upstream(proxy):
    # The upstream sends three chunks, then holds the stream open: buffered, none would arrive.
    name, key = _provider(proxy, "chunks=8;fault=stall;fault_after=3;stall_max_s=60")
    body = {"model": f"{name}/gpt-4o-mini", "messages": MESSAGES, "stream": True}
    texts = []
    with httpx.Client(timeout=httpx.Timeout(20.0)) as client:
        with client.stream("POST", proxy.url + "/v1/chat/completions", json=body, headers=proxy.headers()) as response:
            assert response.status_code == 200
            assert response.headers["content-type"].startswith("text/event-stream")
            request_id = response.headers["x-byok-request-id"]
            for line in response.iter_lines():
                if line.startswith("data:") and '"content"' in line:
                    texts.append(json.loads(line[5:])["choices"][0]["delta"]["content"])
                    if len(texts) == 3:
                        break  # three chunks while the upstream holds the rest: unbuffered; now leave
    assert "".join(texts) == filler_text(8)[: len("".join(texts))]
    assert wait_for(lambda: _upstream_outcome(proxy, key), timeout=10, message="the upstream to end") == "cancelled"
    sql = "SELECT status FROM byok_usagerecord WHERE request_id = %s"
    rows = wait_for(lambda: db_rows(proxy.byok.env, sql, (request_id,)), timeout=10, message="the usage record")
    assert rows == [("cancelled",)]
    # BYOK_LOG_FORMAT=json (the example environment): the request's line is a JSON object with its fields.
    lines = [json.loads(line) for line in proxy.byok.log.read_text().splitlines() if line.startswith("{")]
    [line] = [x for x in lines if x.get("request_id") == request_id]
    assert line["logger"] == "byok.request" and line["dialect"] == "openai" and line["provider"] == name
    assert (line["status"], line["outcome"], line["attempts"]) == (499, "cancelled", 1)
    assert isinstance(line["overhead_ms"], float) and isinstance(line["user"], int)


def test_a_websocket_chat_and_a_cancel_through_nginx(proxy):
    quick, _ = _provider(proxy)
    slow, slow_key = _provider(proxy, "chunks=200;delay_ms=50")
    with connect(proxy.ws_url + "/ws/chat/", open_timeout=10, close_timeout=5) as ws:
        ws.send(json.dumps({"type": "auth", "token": proxy.byok.admin_token}))
        assert json.loads(ws.recv(timeout=10))["type"] == "chat.ready"

        def frames(rid: str, *, deltas: int | None = None) -> list[dict]:
            got: list[dict] = []
            while True:
                frame = json.loads(ws.recv(timeout=20))
                if frame.get("id") != rid:
                    continue
                got.append(frame)
                if frame["type"] in ("chat.done", "chat.error"):
                    return got
                if deltas is not None and sum(f["type"] == "chat.delta" for f in got) >= deltas:
                    return got

        ws.send(json.dumps({"type": "chat.request", "id": "q", "model": f"{quick}/gpt-4o-mini", "messages": MESSAGES}))
        done = frames("q")
        assert done[-1]["type"] == "chat.done"
        assert "".join(f.get("text", "") for f in done if f["type"] == "chat.delta") == filler_text(8)

        ws.send(json.dumps({"type": "chat.request", "id": "s", "model": f"{slow}/gpt-4o-mini", "messages": MESSAGES}))
        frames("s", deltas=2)
        ws.send(json.dumps({"type": "chat.cancel", "id": "s"}))
        end = frames("s")[-1]
        assert (end["type"], end["code"], end["partial"]) == ("chat.error", "cancelled", True)
    assert wait_for(lambda: _upstream_outcome(proxy, slow_key), timeout=10, message="the upstream") == "cancelled"


def test_a_body_over_the_limit_is_refused_by_nginx_as_json(proxy):
    big = {"model": "x", "messages": [{"role": "user", "content": "a" * (3 * 1024 * 1024)}]}
    response = httpx.post(proxy.url + "/v1/chat/completions", json=big, headers=proxy.headers(), timeout=30)
    assert response.status_code == 413
    assert response.json()["error"]["code"] == "payload_too_large"


def _scrape(proxy: Proxy) -> str:
    response = httpx.get(proxy.url + "/metrics", headers={"Authorization": f"Bearer {proxy.token}"}, timeout=10)
    assert response.status_code == 200, response.text
    return response.text


def _count(text: str, name: str, **labels: str) -> float:
    return sum(
        s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items())
    )


def test_metrics_through_nginx_need_the_token_and_add_up_every_worker(proxy):
    refused = httpx.get(proxy.url + "/metrics", timeout=10)
    assert refused.status_code == 401 and refused.json()["code"] == "unauthenticated"
    wrong = httpx.get(proxy.url + "/metrics", headers={"Authorization": "Bearer nope"}, timeout=10)
    assert wrong.status_code == 403
    name, _ = _provider(proxy, "chunks=8;delay_ms=40")  # answers that overlap: several upstream connections

    def chat(i: int) -> int:
        body = {"model": f"{name}/gpt-4o-mini", "messages": MESSAGES, "stream": i % 2 == 1}
        with httpx.Client(timeout=30) as client:
            return client.post(proxy.url + "/v1/chat/completions", json=body, headers=proxy.headers()).status_code

    def workers_that_counted() -> set[str]:
        return {p.stem.rsplit("_", 1)[-1] for p in proxy.metrics_dir.glob("counter_*.db")}

    # Bursts of concurrent chats until both workers have served some (the kernel picks who accepts).
    burst = 0
    with ThreadPoolExecutor(8) as pool:
        for _ in range(10):
            assert list(pool.map(chat, range(8))) == [200] * 8
            burst += 8
            if len(workers_that_counted()) >= 2:
                break
    assert len(workers_that_counted()) == 2, workers_that_counted()
    # Each worker keeps its own files; every scrape adds them up, whichever worker answers it.
    for _ in range(4):
        text = _scrape(proxy)
        assert _count(text, "byok_requests_total", provider=name, status="200", outcome="ok") == burst
    assert _count(text, "byok_tokens_total", provider=name, direction="out") > 0
    assert _count(text, "byok_request_duration_seconds_count", provider=name) == burst
    assert _count(text, "byok_keys_usable", provider=name) == 1
    assert _count(text, "byok_usage_queue_depth") >= 0
    out = os.environ.get("BYOK_TEST_SCRAPE_OUT")
    if out:  # a sample scrape for the docs
        Path(out).write_text(text)
