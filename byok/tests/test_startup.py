"""Start-up outside `make serve`: secrets required, bad configuration named, never a deep traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from byok_project.envconfig import new_master_key

ROOT = Path(__file__).resolve().parents[2]
GOOD = {"DJANGO_SECRET_KEY": "x" * 50, "BYOK_MASTER_KEY": new_master_key()}


def _start(env: dict[str, str]) -> subprocess.CompletedProcess:
    """Import the ASGI application the way daphne does in production."""
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_", "DATABASE_URL", "REDIS_URL"))}
    clean.update(env)
    return subprocess.run(
        [sys.executable, "-c", "import byok_project.asgi"],
        cwd=ROOT,
        env=clean,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "BYOK_MASTER_KEY"])
def test_a_production_start_refuses_without_each_secret(missing):
    env = {k: v for k, v in GOOD.items() if k != missing}
    result = _start(env)
    assert result.returncode != 0
    assert f"{missing} is not set" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    "env,named",
    [
        ({"BYOK_MASTER_KEY": "too-short"}, "BYOK_MASTER_KEY must be 32 random bytes"),
        ({"DATABASE_URL": "nonsense://"}, "DATABASE_URL"),
        ({"DATABASE_URL": "postgres://u@h:notaport/db"}, "DATABASE_URL"),
        ({"REDIS_URL": "http://127.0.0.1:6379"}, "REDIS_URL"),
        ({"REDIS_URL": "redis://127.0.0.1:notaport/0"}, "REDIS_URL"),
        ({"DEBUG": "maybe"}, "DEBUG"),
    ],
)
def test_bad_configuration_stops_start_up_naming_the_variable(env, named):
    result = _start({**GOOD, **env})
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_a_complete_configuration_starts():
    result = _start(GOOD)
    assert result.returncode == 0, result.stderr


def test_manage_py_names_the_missing_secret():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
