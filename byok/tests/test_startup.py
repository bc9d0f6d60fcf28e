"""Start-up outside `make serve`: secrets required, bad configuration named, never a deep traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from byok.tests.live import STARTUP_ENV, import_asgi

ROOT = Path(__file__).resolve().parents[2]


@pytest.mark.parametrize("missing", ["DJANGO_SECRET_KEY", "BYOK_MASTER_KEY"])
def test_a_production_start_refuses_without_each_secret(missing):
    env = {k: v for k, v in STARTUP_ENV.items() if k != missing}
    result = import_asgi(env)
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
    result = import_asgi({**STARTUP_ENV, **env})
    assert result.returncode != 0
    assert named in result.stderr
    assert "Traceback" not in result.stderr


def test_a_complete_configuration_starts():
    result = import_asgi(STARTUP_ENV)
    assert result.returncode == 0, result.stderr


def test_manage_py_names_the_missing_secret():
    clean = {k: v for k, v in os.environ.items() if not k.startswith(("BYOK_", "DJANGO_"))}
    result = subprocess.run(
        [sys.executable, "manage.py", "check"], cwd=ROOT, env=clean, capture_output=True, text=True, timeout=60
    )
    assert result.returncode != 0
    assert "DJANGO_SECRET_KEY is not set" in result.stderr
