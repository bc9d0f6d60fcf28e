"""Shared test actors and helpers: alice (staff), bob (not staff), and a canary key."""

from __future__ import annotations

import pytest

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


def _api_client(user, scheme: str):
    # Imported here so Django-free test runs (`-p no:django`) can still load this file.
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {Token.objects.create(user=user).key}")
    return client


@pytest.fixture
def alice_client(alice):
    return _api_client(alice, "Bearer")


@pytest.fixture
def bob_client(bob):
    return _api_client(bob, "Token")


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
