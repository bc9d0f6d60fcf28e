"""`make demo` and `make token`, as a new user runs them: chat within a minute without a real key.

`python -m devtools.demo` (what `make demo` runs) starts the fake provider and the server, registers the four
provider kinds against it and prints `BYOK_DEMO_READY <url> <token>`; the test then chats through each of
them with the printed token, streams one answer, and stops the demo with SIGTERM (both processes end).
Every step has a deadline, so a demo that hangs fails the test instead of blocking the run.
"""

from __future__ import annotations

import json
import os
import selectors
import signal
import subprocess
import sys
import time

import httpx
import pytest

from byok.tests.live import ROOT, free_port
from devtools.demo import FAKE_CONFIG, PROVIDERS
from devtools.fakeprovider.answer import filler_text

START_DEADLINE_S = 120  # a fresh database, migrations and two processes, on a loaded 2-core machine


def _read_line(proc: subprocess.Popen[str], deadline: float) -> str:
    assert proc.stdout is not None
    with selectors.DefaultSelector() as sel:
        sel.register(proc.stdout, selectors.EVENT_READ)
        while time.monotonic() < deadline:
            if sel.select(timeout=0.5):
                return proc.stdout.readline()
            if proc.poll() is not None:
                return ""
    return ""


@pytest.fixture
def demo(tmp_path):
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("COV_CORE")}
    log = (tmp_path / "demo.log").open("w")
    proc = subprocess.Popen(
        [sys.executable, "-m", "devtools.demo", "--port", str(port), "--db", str(tmp_path / "demo.sqlite3")],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=log,
        text=True,
        start_new_session=True,
    )
    try:
        line = _read_line(proc, time.monotonic() + START_DEADLINE_S)
        assert line.startswith("BYOK_DEMO_READY "), f"{line!r}\n{(tmp_path / 'demo.log').read_text()[-3000:]}"
        _, url, token = line.split()
        yield proc, url, token
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        log.close()


def test_the_demo_chats_through_the_four_provider_kinds_without_a_real_key(demo):
    proc, url, token = demo
    expected = filler_text(FAKE_CONFIG["chunks"], 0)
    with httpx.Client(base_url=url, headers={"Authorization": f"Bearer {token}"}, timeout=30) as client:
        for name, (_, model) in PROVIDERS.items():
            answer = client.post(
                "/v1/chat/completions",
                json={
                    "model": f"{name}/{model}",
                    "messages": [{"role": "user", "content": "Hello"}],
                },
            )
            assert answer.status_code == 200, answer.text
            assert answer.headers["x-byok-provider"] == name
            assert answer.json()["choices"][0]["message"]["content"] == expected
        # A bare model goes to the default provider (openai); the answer streams.
        text = ""
        with client.stream(
            "POST",
            "/v1/chat/completions",
            json={
                "model": "gpt-4o-mini",
                "stream": True,
                "messages": [{"role": "user", "content": "Hello"}],
            },
        ) as stream:
            assert stream.status_code == 200
            for line in stream.iter_lines():
                if line.startswith("data: {"):
                    text += "".join(c["delta"].get("content") or "" for c in json.loads(line[6:])["choices"])
        assert text == expected
        assert client.get("/api/providers").json()  # the token is a staff token: management works too

    proc.send_signal(signal.SIGTERM)
    assert proc.wait(timeout=30) == 0
    with pytest.raises(httpx.ConnectError):
        httpx.get(f"{url}/healthz", timeout=2)


def test_make_token_prints_a_working_token_for_a_user(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_", "COV_CORE", "REDIS_URL"))}
    env.update(DATABASE_URL=f"sqlite:///{tmp_path / 'token.sqlite3'}", BYOK_LOCAL_SECRETS="1")
    manage = [sys.executable, "manage.py"]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], cwd=ROOT, env=env, check=True, timeout=300)
    subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from django.contrib.auth import get_user_model; "
            "get_user_model().objects.create_user('carol', password='carol-pass-123')",
        ],
        cwd=ROOT,
        env=env,
        check=True,
        timeout=120,
    )
    # -o: the virtualenv counts as installed (this run is using it), so make never reinstalls it here.
    make = ["make", "-s", "-o", ".venv/.runtime", "token"]
    done = subprocess.run([*make, "USER=carol"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    token = done.stdout.strip()
    assert len(token) == 40 and token.isalnum()
    again = subprocess.run([*make, "USER=carol"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert again.returncode != 0 and "cannot be shown again" in again.stderr  # stored hashed: printed once
    reset = subprocess.run([*make, "USER=carol", "RESET=1"], cwd=ROOT, env=env, capture_output=True, text=True)
    assert reset.returncode == 0 and len(reset.stdout.strip()) == 40 and reset.stdout.strip() != token
    token = reset.stdout.strip()
    check = subprocess.run(
        [
            *manage,
            "shell",
            "-c",
            "from rest_framework.authtoken.models import Token; from byok.keys.tokens import stored_form; "
            f"print(Token.objects.get(key=stored_form('{token}')).user.username)",
        ],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.stdout.split()[-1] == "carol"
    missing = subprocess.run([*make, "USER=nobody"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert missing.returncode != 0 and "nobody" in missing.stderr and not missing.stdout.strip()
