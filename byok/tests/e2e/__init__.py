"""End-to-end tests: real daphne processes, the fake provider, and real clients (the openai SDK, websockets).

One cluster serves every e2e module of a test run (see `cluster()`): the fake
provider and one daphne process; with PostgreSQL (`DATABASE_URL`) and Redis
(`REDIS_URL`) set, as in CI's second run, a second daphne process sharing
that database and Redis, for the tests marked `needs_shared_state`. Each test
registers providers of its own (unique names, explicit `<provider>/<model>`
routing), so tests sharing the servers do not see each other's keys.

Every process listens on 127.0.0.1 and is stopped by its PID when the run ends.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from byok.tests.conftest import _missing, test_redis_url
from byok.tests.live import FakeProvider, LiveServer, drop_live_env, live_env, manage, start_daphne, start_fake_provider

__all__ = [
    "Cluster",
    "cluster",
    "db_rows",
    "fake_fp",
    "needs_shared_state",
    "records",
    "register",
    "uid",
    "upstream_outcome",
    "wait_for",
]

POSTGRES = os.environ.get("DATABASE_URL", "").startswith(("postgres://", "postgresql://"))
# Two daphne processes share limits, cooldowns and configuration only through PostgreSQL and Redis
# (DATABASE_URL=postgres://... and REDIS_URL=redis://..., as in CI's second run): see the markers in conftest.py.
needs_shared_state = [pytest.mark.postgres, pytest.mark.redis]


@dataclass
class Cluster:
    """The fake provider and one or two daphne processes over one database (and Redis when shared)."""

    fake: FakeProvider
    env: dict[str, str]
    servers: list[LiveServer] = field(default_factory=list)

    @property
    def a(self) -> LiveServer:
        return self.servers[0]

    @property
    def b(self) -> LiveServer:
        return self.servers[-1]

    def stop(self) -> None:
        for server in self.servers:
            server.stop()
        self.fake.stop()
        drop_live_env(self.env)
        prefix = self.env.get("BYOK_STATE_PREFIX")
        if prefix and self.env.get("REDIS_URL"):
            import redis

            with redis.Redis.from_url(self.env["REDIS_URL"], socket_timeout=2) as client:
                for key in client.scan_iter(f"{prefix}*", count=1000):
                    client.delete(key)


_CLUSTER: Cluster | None = None


def cluster(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Cluster:
    """The run's cluster, started on first use and stopped when pytest ends."""
    global _CLUSTER
    if _CLUSTER is None:
        tmp = tmp_path_factory.mktemp("e2e")
        found = Cluster(start_fake_provider(tmp), {})
        try:
            found.env = live_env(tmp)
            shared = POSTGRES and _missing("redis") is None
            if shared:
                found.env["REDIS_URL"] = test_redis_url()
                found.env["BYOK_STATE_PREFIX"] = f"byok-e2e-{uuid.uuid4().hex[:8]}:"
            else:
                found.env.pop("REDIS_URL", None)
            for _ in range(2 if shared else 1):
                found.servers.append(start_daphne(found.env, tmp))
        except BaseException:
            found.stop()
            raise
        _CLUSTER = found

        def stop() -> None:
            global _CLUSTER
            if _CLUSTER is not None:
                _CLUSTER.stop()
                _CLUSTER = None

        request.config.add_cleanup(stop)
    return _CLUSTER


def uid() -> str:
    return uuid.uuid4().hex[:8]


def fake_fp(secret: str) -> str:
    """How the fake provider's recorder names a key: the first 12 hex digits of its SHA-256."""
    return hashlib.sha256(secret.encode()).hexdigest()[:12]


def register(server: LiveServer, **body: Any) -> dict:
    """`POST /api/providers/register` as the staff user; the provider as the API returns it."""
    with server.admin() as client:
        response = client.post("/api/providers/register", json=body)
    assert response.status_code == 201, response.text
    return response.json()


def make_policy(cluster_: Cluster, name: str, primary: str, fallbacks: list[str], *, max_retries: int = 0) -> None:
    """A failover policy (no public API: the admin's job), written to the database, then announced.

    The change is announced by a no-op PATCH through the API, which makes
    every server reload its configuration (through Redis when shared).
    """
    steps = "; ".join(
        f"FailoverStep.objects.create(policy=p, provider=Provider.objects.get(name={f!r}), position={i})"
        for i, f in enumerate(fallbacks)
    )
    manage(
        cluster_.env,
        "shell",
        "-c",
        (
            "from byok.models import FailoverPolicy, FailoverStep, Provider; "
            f"p = FailoverPolicy.objects.create(name={name!r}, primary=Provider.objects.get(name={primary!r}), "
            f"max_retries={max_retries}); {steps}"
        ),
    )
    with cluster_.a.admin() as client:
        found = client.get("/api/providers").json()
        pid = next(p["id"] for p in found if p["name"] == primary)
        assert client.patch(f"/api/providers/{pid}", json={"priority": 100}).status_code == 200


def records(fake: FakeProvider, **filters: Any) -> list[dict]:
    """The fake provider's recorded requests (oldest first), filtered as its control API allows."""
    with httpx.Client(base_url=fake.url, timeout=10) as client:
        found = client.get("/_control/requests", params={"limit": 10000, **filters}).json()
    return found["requests"] if isinstance(found, dict) else found


def upstream_outcome(fake: FakeProvider, key: str) -> str | None:
    """How the fake provider's first request with `key` ended (`done`, `cancelled`, …), None while open."""
    found = records(fake, key_fp=fake_fp(key))
    return found[0]["outcome"] if found and found[0]["outcome"] != "open" else None


def wait_for(check, *, timeout: float = 10.0, interval: float = 0.1, message: str = "condition"):
    """Poll `check()` until it returns something truthy; fail the test after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail(f"timed out after {timeout:.0f} s waiting for {message} (last: {value!r})")
        time.sleep(interval)


def db_rows(env: dict[str, str], sql: str, params: tuple = ()) -> list[tuple]:
    """Rows from the servers' own database (SQLite file or PostgreSQL); `%s` placeholders."""
    url = env["DATABASE_URL"]
    if url.startswith("sqlite:///"):
        with sqlite3.connect(Path(url.removeprefix("sqlite:///")), timeout=10) as conn:
            return conn.execute(sql.replace("%s", "?"), params).fetchall()
    import psycopg

    with psycopg.connect(url) as conn:
        return conn.execute(sql, params).fetchall()
