"""`/healthz` and `/readyz`: no authentication, JSON, a reason per failed check, nothing revealing."""

from __future__ import annotations

import pytest
from django.conf import settings
from django.db import OperationalError
from django.test import override_settings

from byok import health, registry
from byok.crypto import SealedSecret, fernet_for
from byok.gateway import handler as handler_module
from byok.gateway.handler import BYOKHandler
from byok.models import ApiKey
from byok.state import MemoryStateBackend, MemoryStore
from byok.tests.live import free_port
from byok_project.envconfig import new_master_key

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def fresh_handler(monkeypatch):
    """A handler of this test's own (its snapshot and state start empty)."""
    monkeypatch.setattr(handler_module, "_handler", None)


def _register():
    return registry.register_provider(kind="openai", name="pn", api_key="sk-test-0123456789abcdef")


def test_healthz_answers_without_authentication(client):
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


def test_readyz_is_ready_with_a_working_database_and_keys_it_can_decrypt(client):
    _register()
    response = client.get("/readyz")
    assert response.status_code == 200, response.content
    expected = {"database": {"ok": True}, "config": {"ok": True}, "master_key": {"ok": True}}
    if settings.REDIS_URL:
        expected["redis"] = {"ok": True}
    assert response.json() == {"status": "ready", "checks": expected}


def test_readyz_fails_when_a_stored_key_was_sealed_under_another_master_key(client):
    provider = _register()
    ApiKey.objects.filter(provider=provider).update(
        secret=SealedSecret.seal("sk-test-other-0123456789", fernet_for(new_master_key()))
    )
    response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "not_ready"
    assert body["checks"]["master_key"] == {
        "ok": False,
        "reason": "1 stored key(s) cannot be decrypted with this process's master key",
    }
    assert body["checks"]["database"] == {"ok": True}


def test_readyz_fails_naming_the_database_but_not_its_address(client, monkeypatch):
    def refused():
        raise OperationalError('connection to server at "10.9.8.7", port 5433 failed: Connection refused')

    monkeypatch.setattr(health, "_select_one", refused)
    response = client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["checks"]["database"] == {"ok": False, "reason": "the database does not answer"}
    assert b"10.9.8.7" not in response.content and b"5433" not in response.content


def test_readyz_fails_when_redis_is_configured_but_unreachable(client):
    port = free_port()  # nothing listens here
    with override_settings(REDIS_URL=f"redis://127.0.0.1:{port}/0"):
        response = client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["checks"]["redis"] == {"ok": False, "reason": "Redis does not answer"}
    assert body["checks"]["database"] == {"ok": True}
    assert str(port).encode() not in response.content and b"127.0.0.1" not in response.content


def test_readyz_without_redis_configured_has_no_redis_check(client, monkeypatch):
    store = MemoryStore()
    monkeypatch.setattr(handler_module, "_handler", BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store)))
    with override_settings(REDIS_URL=None):
        body = client.get("/readyz").json()
    assert "redis" not in body["checks"]


@pytest.mark.parametrize("path", ["/healthz", "/readyz", "/metrics"])
def test_probes_answer_other_methods_with_a_json_405(path):
    from django.test import Client

    response = Client(enforce_csrf_checks=True).post(path)
    assert response.status_code == 405
    assert response.json()["code"] == "method_not_allowed" and response["Allow"] == "GET, HEAD"
