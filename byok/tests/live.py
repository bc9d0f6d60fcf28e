"""Real processes for end-to-end tests: the fake provider, a database of their own, daphne.

    fake = start_fake_provider(tmp)                      # FakeProvider(url, proc)
    env = live_env(tmp)                                  # a fresh SQLite file or PostgreSQL database, migrated
    server = start_daphne(env, tmp)                      # LiveServer(url, ws_url, proc, admin_token)
    ...
    server.stop(); fake.stop(); drop_live_env(env)

With `DATABASE_URL` set (CI's second run) each `live_env` is a new
PostgreSQL database on that server; with `REDIS_URL` set, the servers share
it. Every process listens on 127.0.0.1 only and is stopped by its PID. When
the test run measures coverage (`make test`), the child processes are
measured too.
"""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import httpx

from byok_project.envconfig import new_master_key

ROOT = Path(__file__).resolve().parents[2]
ADMIN_USER = "live-admin"
ADMIN_PASSWORD = "live-admin-password-1"


def python_command(*args: str) -> list[str]:
    """`python <args>`, run under coverage when this test run measures coverage."""
    try:
        import coverage

        cov = coverage.Coverage.current()
    except ImportError:
        cov = None
    if cov is None:
        return [sys.executable, *args]
    opts = ["--parallel-mode", f"--data-file={Path(cov.config.data_file).resolve()}"]
    if cov.config.branch:
        opts.append("--branch")
    if cov.config.source:
        opts.append("--source=" + ",".join(cov.config.source))
    return [sys.executable, "-m", "coverage", "run", *opts, *args]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _stop(proc: subprocess.Popen, timeout: float = 10) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@dataclass
class FakeProvider:
    url: str
    proc: subprocess.Popen
    log: Path

    def control(self) -> httpx.Client:
        return httpx.Client(base_url=self.url, timeout=10)

    def requests(self, **params) -> list[dict]:
        with self.control() as c:
            return c.get("/_control/requests", params=params).json()

    def reset(self) -> None:
        with self.control() as c:
            c.post("/_control/reset")

    def stop(self) -> None:
        _stop(self.proc)


def start_fake_provider(tmp: Path, *args: str) -> FakeProvider:
    log = tmp / f"fakeprovider-{uuid.uuid4().hex[:6]}.log"
    with log.open("w") as err:
        proc = subprocess.Popen(
            python_command("-m", "devtools.fakeprovider", "--host", "127.0.0.1", "--port", "0", *args),
            cwd=ROOT,
            stdout=subprocess.PIPE,
            stderr=err,
            text=True,
        )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("FAKEPROVIDER_LISTENING "):
        _stop(proc)
        raise RuntimeError(f"fake provider did not start: {line!r} {log.read_text()}")
    return FakeProvider(line.split()[1], proc, log)


def _base_env() -> dict[str, str]:
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_", "DATABASE_URL", "COV_CORE"))}
    keep.update(
        DJANGO_SECRET_KEY=secrets.token_urlsafe(40),
        BYOK_MASTER_KEY=new_master_key(),
        BYOK_ALLOW_PRIVATE_BASE_URLS="true",
        ALLOWED_HOSTS="127.0.0.1,localhost",
        BYOK_ADMIN_USER=ADMIN_USER,
        BYOK_ADMIN_PASSWORD=ADMIN_PASSWORD,
        PYTHONUNBUFFERED="1",
    )
    return keep


def live_env(tmp: Path) -> dict[str, str]:
    """Environment for server processes with a database of their own, migrated, with an admin user."""
    env = _base_env()
    # Each live database gets its own Redis namespace: key ids restart at 1 in every database,
    # and a cooldown or rate window left by one test module must not land on another's key.
    env["BYOK_STATE_PREFIX"] = f"byok-live-{uuid.uuid4().hex[:10]}:"
    outer = os.environ.get("DATABASE_URL", "")
    if outer.startswith(("postgres://", "postgresql://")):
        name = f"byok_live_{uuid.uuid4().hex[:10]}"
        parts = urlsplit(outer)
        admin = urlunsplit(parts._replace(path="/postgres"))
        subprocess.run(["psql", admin, "-qc", f'CREATE DATABASE "{name}"'], check=True, capture_output=True)
        env["DATABASE_URL"] = urlunsplit(parts._replace(path=f"/{name}"))
        env["BYOK_LIVE_DROP"] = admin + "|" + name
    else:
        env["DATABASE_URL"] = f"sqlite:///{tmp / ('live-' + uuid.uuid4().hex[:8] + '.sqlite3')}"
    manage(env, "migrate", "--noinput")
    manage(env, "ensure_admin")
    return env


def drop_live_env(env: dict[str, str]) -> None:
    drop = env.get("BYOK_LIVE_DROP")
    if drop:
        admin, name = drop.split("|")
        subprocess.run(["psql", admin, "-qc", f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'], capture_output=True)


def manage(env: dict[str, str], *args: str) -> str:
    result = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120
    )
    if result.returncode != 0:
        raise RuntimeError(f"manage.py {' '.join(args)} failed: {result.stderr[-2000:]}")
    return result.stdout


@dataclass
class LiveServer:
    url: str
    proc: subprocess.Popen
    env: dict[str, str]
    log: Path
    admin_token: str = field(default="")

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://", 1)

    def admin(self) -> httpx.Client:
        """An HTTP client authenticated as the staff user."""
        return httpx.Client(base_url=self.url, headers={"Authorization": f"Token {self.admin_token}"}, timeout=30)

    def stop(self) -> None:
        _stop(self.proc)


def start_daphne(env: dict[str, str], tmp: Path, *, extra_env: dict[str, str] | None = None) -> LiveServer:
    """A daphne process serving byok on a free loopback port, answering before this returns."""
    from byok_project.serve import Plan

    port = free_port()
    command = python_command(*Plan("daphne", 1, "127.0.0.1", port).command()[1:])  # as `make serve` starts it
    return _start_server(command, port, env, tmp, "daphne", extra_env)


def start_served(
    env: dict[str, str],
    tmp: Path,
    *,
    server: str = "daphne",
    workers: int = 1,
    extra_env: dict[str, str] | None = None,
) -> LiveServer:
    """byok as `make serve` starts it (`python -m byok_project.serve`): `server`, `workers` processes."""
    port = free_port()
    launch = {"BYOK_SERVER": server, "BYOK_WORKERS": str(workers), "HOST": "127.0.0.1", "PORT": str(port)}
    command = python_command("-m", "byok_project.serve")
    return _start_server(command, port, env, tmp, f"{server}-x{workers}", {**launch, **(extra_env or {})})


def _start_server(
    command: list[str],
    port: int,
    env: dict[str, str],
    tmp: Path,
    name: str,
    extra_env: dict[str, str] | None,
) -> LiveServer:
    log = tmp / f"{name}-{port}.log"
    full_env = {**env, **(extra_env or {})}
    with log.open("w") as out:
        proc = subprocess.Popen(command, cwd=ROOT, env=full_env, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 60
    while True:
        try:
            if httpx.get(url + "/admin/login/", timeout=2).status_code == 200:
                break
        except httpx.TransportError:
            pass
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop(proc)
            raise RuntimeError(f"{name} did not start: {log.read_text()[-3000:]}")
        time.sleep(0.2)
    database = full_env.get("DATABASE_URL", "")
    if database not in _ADMIN_TOKENS:  # servers sharing a database share the admin's token (stored hashed: once)
        _ADMIN_TOKENS[database] = manage(full_env, "drf_create_token", "-r", ADMIN_USER).split()[2]
    return LiveServer(url, proc, full_env, log, _ADMIN_TOKENS[database])


_ADMIN_TOKENS: dict[str, str] = {}


CHROMIUM = "/usr/bin/chromium"


def launch_chromium(playwright):
    """Debian's Chromium, headless, as every browser test drives it (no sandbox or GPU in containers)."""
    return playwright.chromium.launch(
        executable_path=CHROMIUM,
        headless=True,
        args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
    )


def log_in(page, server_url: str, path: str, user: str = ADMIN_USER, password: str = ADMIN_PASSWORD) -> None:
    """Open ``path`` as an anonymous visitor, log in as ``user`` (the live admin by default) on the sign-in form it
    is sent to (the admin's for /admin/ paths, byok's /login/ for the others), land back on ``path``.
    """
    page.goto(server_url + path)
    assert f"login/?next={path}" in page.url, page.url
    page.fill("#id_username", user)
    page.fill("#id_password", password)
    page.click("[type=submit]")
    page.wait_for_url(server_url + path)


# -- start-up and registration helpers shared by the live tests ---------------------------------------

ROOT_DIR = Path(__file__).resolve().parents[2]
# The least configuration a production start needs (test_startup, test_debug_page).
STARTUP_ENV = {"DJANGO_SECRET_KEY": "x" * 50, "BYOK_MASTER_KEY": new_master_key()}


def import_asgi(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the ASGI application the way daphne does in production."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import byok_project.asgi"],
        cwd=ROOT_DIR,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


def register(env: dict, name: str, base_url: str, api_key: str) -> int:
    """Register an OpenAI-format provider in the live database; returns its key's id."""
    code = (
        "from byok import registry\n"
        f"p = registry.register_provider(kind='openai', name={name!r}, base_url={base_url!r}, "
        f"default_model='gpt-4o-mini', api_key={api_key!r})\n"
        "print('KEY_ID', p.keys.get().pk)\n"
    )
    out = manage(env, "shell", "-c", code)
    return int(re.findall(r"KEY_ID (\d+)", out)[0])
