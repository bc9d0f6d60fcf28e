"""`make demo`: byok serving four providers (openai, anthropic, deepseek, gemini) played by the fake provider.

No real key and no internet: the fake provider (`devtools.fakeprovider`) answers in each provider's wire
format on 127.0.0.1, so a new user can chat through every front end within a minute:

1. start the fake provider on a free loopback port (answers stream 20 words, 50 ms apart);
2. a database of the demo's own (`demo.sqlite3`, made anew each run, so a real set-up in `db.sqlite3` is
   never touched): migrate, a staff user `demo` (password `demo`) and its API token;
3. start the server (`python -m byok_project.serve`, as `make serve`) with `BYOK_LOCAL_SECRETS=1` and
   `BYOK_ALLOW_PRIVATE_BASE_URLS=true` (the fake provider is on a loopback address);
4. register the four providers through the API (`POST /api/providers/register`), openai the default;
5. print `BYOK_DEMO_READY <url> <token>` and how to chat; run until Ctrl-C (or SIGTERM), then stop both.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parents[1]
USER = PASSWORD = "demo"
FAKE_CONFIG = {"chunks": 20, "delay_ms": 50}
# name (= kind) -> (base URL path at the fake provider, default model)
PROVIDERS = {
    "openai": ("/v1", "gpt-4o-mini"),
    "anthropic": ("/anthropic", "claude-sonnet-4-5"),
    "deepseek": ("/deepseek", "deepseek-chat"),
    "gemini": ("/v1beta", "gemini-2.0-flash"),
}
DEMO_KEY = "sk-demo-not-a-real-key-0123456789"  # the fake provider accepts any key

_SETUP = """
from django.contrib.auth import get_user_model
from rest_framework.authtoken.models import Token
user = get_user_model().objects.create_superuser({user!r}, email="", password={password!r})
print("DEMO_TOKEN", Token.objects.create(user=user).plaintext)
"""


class DemoError(RuntimeError):
    pass


def demo_env(db: Path, host: str, port: int) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    env.update(
        BYOK_LOCAL_SECRETS="1",
        BYOK_ALLOW_PRIVATE_BASE_URLS="true",
        DATABASE_URL=f"sqlite:///{db}",
        HOST=host,
        PORT=str(port),
        PYTHONUNBUFFERED="1",
    )
    return env


def start_fake_provider(env: dict[str, str]) -> tuple[subprocess.Popen[str], str]:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "devtools.fakeprovider",
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--config",
            json.dumps(FAKE_CONFIG),
        ],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if not line.startswith("FAKEPROVIDER_LISTENING "):
        stop(proc)
        raise DemoError(f"the fake provider did not start: {line!r}")
    return proc, line.split()[1]


def manage(env: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    if done.returncode != 0:
        raise DemoError(f"manage.py {args[0]} failed:\n{done.stdout}{done.stderr}")
    return done.stdout


def set_up_database(env: dict[str, str], db: Path) -> str:
    """A new demo database with the demo user; the user's API token."""
    for path in (db, db.with_name(db.name + "-journal")):
        path.unlink(missing_ok=True)
    manage(env, "migrate", "--noinput", "-v", "0")
    manage(env, "collectstatic", "--noinput", "-v", "0")
    out = manage(env, "shell", "-c", _SETUP.format(user=USER, password=PASSWORD))
    return next(line.split()[1] for line in out.splitlines() if line.startswith("DEMO_TOKEN "))


def wait_until_up(url: str, server: subprocess.Popen[bytes], timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise DemoError(f"the server exited with {server.returncode} before answering")
        try:
            if httpx.get(f"{url}/healthz", timeout=2).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise DemoError(f"the server did not answer on {url} within {timeout:.0f} s")


def register_providers(url: str, token: str, fake_url: str) -> None:
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for name, (path, model) in PROVIDERS.items():
            body = {
                "provider": name,
                "name": name,
                "base_url": fake_url + path,
                "model": model,
                "api_key": DEMO_KEY,
                "is_default": name == "openai",
            }
            answer = client.post("/api/providers/register", json=body)
            if answer.status_code != 201:
                raise DemoError(f"registering {name} failed: {answer.status_code} {answer.text}")


def stop(proc: subprocess.Popen | None, timeout: float = 15) -> None:
    if proc is None or proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def instructions(url: str, token: str) -> str:
    models = ", ".join(f"{name}/{model}" for name, (_, model) in PROVIDERS.items())
    return f"""
byok demo on {url}/ : four providers played by the fake provider ({models}).
  token:   {token}
  browser: {url}/chat/  (log in as {USER} / {PASSWORD})
  curl:    curl -s {url}/v1/chat/completions -H 'Authorization: Bearer {token}' \\
             -H 'Content-Type: application/json' \\
             -d '{{"model": "anthropic/claude-sonnet-4-5", "messages": [{{"role": "user", "content": "Hello"}}]}}'
Ctrl-C stops the demo.
"""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.demo", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default=os.environ.get("HOST", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    parser.add_argument("--db", type=Path, default=ROOT / "demo.sqlite3", help="the demo's database (made anew)")
    args = parser.parse_args(argv)
    env = demo_env(args.db.resolve(), args.host, args.port)
    url = f"http://{args.host}:{args.port}"
    fake = server = None
    stopping = False

    def on_signal(signum: int, frame: object) -> None:
        nonlocal stopping
        stopping = True
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, on_signal)
    try:
        fake, fake_url = start_fake_provider(env)
        token = set_up_database(env, args.db.resolve())
        server = subprocess.Popen([sys.executable, "-m", "byok_project.serve"], cwd=ROOT, env=env, stdout=sys.stderr)
        wait_until_up(url, server)
        register_providers(url, token, fake_url)
        print(instructions(url, token), file=sys.stderr, flush=True)
        print(f"BYOK_DEMO_READY {url} {token}", flush=True)
        while server.poll() is None and fake.poll() is None:
            time.sleep(0.5)
        return 0 if stopping else 1
    except KeyboardInterrupt:
        return 0
    except DemoError as exc:
        print(f"demo: {exc}", file=sys.stderr)
        return 1
    finally:
        stop(server)
        stop(fake)


if __name__ == "__main__":
    sys.exit(main())
