"""Shared test actors and fixtures: alice (staff), bob (not staff), a canary key, a handler on a fake clock; markers."""

from __future__ import annotations

import functools
import os
from pathlib import Path

import pytest

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def carol(django_user_model):
    """Another ordinary user (self-service tests: what bob must never see)."""
    return django_user_model.objects.create_user("carol", password="carol-pass-123")


def _api_client(user, scheme: str):
    # Imported here so Django-free test runs (`-p no:django`) can still load this file.
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {Token.objects.create(user=user).plaintext}")  # type: ignore[attr-defined]
    return client


@pytest.fixture
def alice_client(alice):
    return _api_client(alice, "Bearer")


@pytest.fixture
def bob_client(bob):
    return _api_client(bob, "Token")


class FakeTime:
    """A clock that only moves when the handler sleeps."""

    def __init__(self) -> None:
        self.now = 1_700_000_000.0
        self.slept: list[float] = []

    def wall(self) -> float:
        return self.now

    def mono(self) -> float:
        return self.now

    async def sleep(self, seconds: float) -> None:
        self.slept.append(seconds)
        self.now += seconds


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def handler(fake_time):
    """A BYOKHandler on in-process state and `fake_time`: no real sleeps, no jitter."""
    from byok.gateway.handler import BYOKHandler
    from byok.state import MemoryStateBackend, MemoryStore

    store = MemoryStore()
    return BYOKHandler(
        state_factory=lambda: MemoryStateBackend(now=fake_time.wall, store=store),
        clock=fake_time.mono,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
        rand=lambda: 0.5,
    )


@pytest.fixture
def admin_browser(client, alice):
    client.force_login(alice)
    return client


@pytest.fixture(scope="session", autouse=True)
def _close_worker_connections(django_db_setup, django_db_blocker):
    """Close the DB connection of asgiref's worker thread before the test database is dropped.

    Async tests reach the ORM through `sync_to_async`, whose thread keeps its
    own connection; PostgreSQL refuses to drop a database that is still in use.
    """
    yield
    from asgiref.sync import SyncToAsync
    from django.db import connections

    with django_db_blocker.unblock():
        SyncToAsync.single_thread_executor.submit(connections.close_all).result(timeout=10)


@pytest.fixture(scope="session", autouse=True)
def _own_redis_namespace():
    """This run's shared state lives under its own Redis prefix, apart from servers and earlier runs."""
    import uuid

    from django.conf import settings

    settings.BYOK["STATE_PREFIX"] = f"byok-test-{uuid.uuid4().hex[:10]}:"
    yield


@pytest.fixture(autouse=True)
def _usage_written_before_the_database_goes():
    """Usage is written by a background thread: let it finish a test's records before the test's database is torn down
    (pytest-django's database fixture is set up before this one, so it is torn down after)."""
    yield
    from byok.gateway.usage import flush_all

    flush_all()


@pytest.fixture
def memory_handler():
    """A BYOKHandler of its own: in-process state, no real sleeping between retries."""
    from byok.gateway.handler import BYOKHandler
    from byok.state import MemoryStateBackend, MemoryStore

    store = MemoryStore()

    async def no_sleep(seconds):
        return None

    return BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), sleep=no_sleep, rand=lambda: 0.5)


# -- markers: what a test needs beyond this checkout ------------------------------------------
#
# `postgres`, `redis` and `browser` tests need a service. On a developer's machine without it they are
# skipped, each with its reason (`-rs` lists them at the end of the run); in CI (CI=true), which has every
# service, a missing one fails the test instead: a skip there would hide it. `live` tests start real
# processes on 127.0.0.1 and need nothing else; `-m "not live"` leaves them out of a quick run.

IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")
CHROMIUM = "/usr/bin/chromium"


def test_redis_url() -> str:
    """The Redis a test uses: REDIS_URL when the run has one, else BYOK_TEST_REDIS_URL (a local default)."""
    return os.environ.get("REDIS_URL") or os.environ.get("BYOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


test_redis_url.__test__ = False  # type: ignore[attr-defined]  # a helper, not a test


@functools.cache
def _missing(service: str) -> str | None:
    """Why `service` cannot be used by this run, or None when it can (asked once per run)."""
    if service == "postgres":
        from django.db import connection

        if connection.vendor != "postgresql":
            return f"needs PostgreSQL: this run uses {connection.vendor} (set DATABASE_URL=postgres://...)"
        return None
    if service == "redis":
        import redis

        urls = dict.fromkeys(
            u
            for u in (
                os.environ.get("REDIS_URL"),
                test_redis_url(),
                os.environ.get("BYOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15"),
            )
            if u
        )
        for url in urls:
            try:
                with redis.Redis.from_url(url, socket_connect_timeout=2, socket_timeout=2) as client:
                    client.ping()
            except Exception as exc:  # any failure to reach it means the same here
                return f"needs Redis: none answers at {url} ({type(exc).__name__}; start one or set REDIS_URL)"
        return None
    if service == "browser":
        if not os.path.exists(CHROMIUM):
            return f"needs Chromium at {CHROMIUM} (apt-get install -y chromium)"
        try:
            import playwright.sync_api  # noqa: F401
        except ImportError:
            return "needs Playwright (pip install -r requirements-dev.txt)"
        return None
    raise ValueError(service)


def pytest_runtest_setup(item: pytest.Item) -> None:
    for service in ("postgres", "redis", "browser"):
        if item.get_closest_marker(service) is None:
            continue
        reason = _missing(service)
        if reason is None:
            continue
        if IN_CI:
            pytest.fail(f"CI has every service, but this test {reason}", pytrace=False)
        pytest.skip(reason)


# The modules whose tests start real processes (daphne, the fake provider, manage.py) are `live`.
LIVE_MODULES = (
    "e2e/",
    "api/test_live_management.py",
    "test_bench_smoke.py",
    "test_chat_page_browser.py",
    "test_demo.py",
    "test_fakeprovider.py",
    "test_live_server.py",
    "test_openai_sdk_live.py",
    "test_anthropic_sdk_live.py",
    "test_serve.py",
    "test_startup.py",
    "test_ws_live.py",
)


# A test using one of these fixtures talks to a Redis server: it is a `redis` test without saying so.
REDIS_FIXTURES = frozenset({"redis_state", "redis_settings"})


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if REDIS_FIXTURES.intersection(getattr(item, "fixturenames", ())):
            item.add_marker(pytest.mark.redis)
        try:
            where = item.path.relative_to(here).as_posix()
        except ValueError:
            continue
        if where.startswith(LIVE_MODULES):
            item.add_marker(pytest.mark.live)


# -- the chat endpoints (test_chat_api, test_request_rules, ...) --------------------------------------


@pytest.fixture
def chat_handler(monkeypatch):
    """A handler with in-memory state, no backoff sleeps, served by the chat views (`chat_entry.get_handler`)."""
    from byok.api import chat_entry
    from byok.gateway.handler import BYOKHandler
    from byok.state import MemoryStateBackend, MemoryStore

    store = MemoryStore()

    async def no_sleep(seconds):
        return None

    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), sleep=no_sleep, rand=lambda: 0.5)
    monkeypatch.setattr(chat_entry, "get_handler", lambda: h)
    return h


@pytest.fixture
async def token(django_user_model):
    """A plain API token of a user without a password (no slow hashing)."""
    from asgiref.sync import sync_to_async
    from rest_framework.authtoken.models import Token

    def make():
        user = django_user_model.objects.create_user("carol")  # no password: no slow hashing
        return Token.objects.create(user=user).plaintext

    return await sync_to_async(make)()


@pytest.fixture
def sdk(token):
    """The official async OpenAI SDK, in process: byok's ASGI app behind an in-memory transport, sending that token."""
    import httpx2
    import openai
    from django.core.handlers.asgi import ASGIHandler

    transport = httpx2.ASGITransport(app=ASGIHandler())
    return openai.AsyncOpenAI(
        base_url="http://testserver/v1",
        api_key=token,
        max_retries=0,
        http_client=httpx2.AsyncClient(transport=transport),
    )


@pytest.fixture
def api(token):
    """An async client sending that token."""
    from django.test import AsyncClient

    return AsyncClient(AUTHORIZATION=f"Bearer {token}")
