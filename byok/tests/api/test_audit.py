"""GET /api/audit-events: the trail, newest first, paginated, filtered by action, actor, provider and time."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from byok import registry
from byok.audit import Actor
from byok.models import AuditEvent

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def trail():
    alice, carol = Actor("alice", "192.0.2.1"), Actor("carol")
    openai = registry.register_provider(kind="openai", name="openai", api_key="sk-test-aaaaaaaaaaaaaaaa", actor=alice)
    registry.register_provider(kind="gemini", name="gemini", actor=carol)
    key = registry.add_key(openai.pk, "sk-test-bbbbbbbbbbbbbbbb", actor=carol)
    registry.revoke_key(openai.pk, key.pk, actor=alice)
    registry.update_provider("gemini", {"priority": 1}, actor=carol)
    return list(AuditEvent.objects.order_by("id"))


def page(client, **params) -> dict:
    response = client.get("/api/audit-events", params)
    assert response.status_code == 200, response.content
    return response.json()


def test_newest_first_with_every_field(alice_client, trail):
    body = page(alice_client)
    assert body["count"] == 5 and body["next"] is None and body["previous"] is None
    actions = [e["action"] for e in body["results"]]
    assert actions == ["provider.update", "key.revoke", "key.create", "provider.create", "provider.create"]
    first = body["results"][-1]
    assert first["actor"] == "alice" and first["source_address"] == "192.0.2.1" and first["provider"] == "openai"
    assert first["target_type"] == "provider" and first["details"]["with_key"] is True and first["key_fingerprint"]
    assert "sk-test-aaaaaaaaaaaaaaaa" not in str(body)


def test_pagination(alice_client, trail):
    first = page(alice_client, limit=2)
    assert first["count"] == 5 and len(first["results"]) == 2 and "offset=2" in first["next"]
    last = page(alice_client, limit=2, offset=4)
    assert len(last["results"]) == 1 and last["next"] is None and last["previous"]
    assert page(alice_client, offset=10**12)["results"] == []


@pytest.mark.parametrize(
    "params, expected",
    [
        ({"action": "key.revoke"}, ["key.revoke"]),
        ({"action": "key.*"}, ["key.revoke", "key.create"]),
        ({"action": "provider.update,key.create"}, ["provider.update", "key.create"]),
        ({"action": "key.*,provider.update"}, ["provider.update", "key.revoke", "key.create"]),
        ({"action": ","}, ["provider.update", "key.revoke", "key.create", "provider.create", "provider.create"]),
        ({"actor": "carol"}, ["provider.update", "key.create", "provider.create"]),
        ({"provider": "gemini"}, ["provider.update", "provider.create"]),
        ({"target_type": "apikey"}, ["key.revoke", "key.create"]),
        ({"actor": "nobody"}, []),
        ({"actor": ""}, ["provider.update", "key.revoke", "key.create", "provider.create", "provider.create"]),
    ],
)
def test_filters(alice_client, trail, params, expected):
    assert [e["action"] for e in page(alice_client, **params)["results"]] == expected


def test_filter_by_key_fingerprint(alice_client, trail):
    revoke = next(e for e in trail if e.action == "key.revoke")
    assert [e["action"] for e in page(alice_client, key=revoke.key_fingerprint)["results"]] == [
        "key.revoke",
        "key.create",
    ]


def test_time_range(alice_client, trail):
    now = datetime.now(UTC)
    assert page(alice_client, since=(now - timedelta(hours=1)).isoformat())["count"] == 5
    assert page(alice_client, since=(now + timedelta(hours=1)).isoformat())["count"] == 0
    assert page(alice_client, until=(now - timedelta(hours=1)).isoformat())["count"] == 0
    middle = trail[2].created_at
    assert page(alice_client, until=middle.isoformat())["count"] == 2  # `until` is exclusive
    assert page(alice_client, since=middle.isoformat())["count"] == 3  # `since` is inclusive


@pytest.mark.parametrize(
    "params, field",
    [
        ({"since": "last week"}, "since"),
        ({"until": ""}, "until"),
        ({"since": "2025-02-01", "until": "2025-01-01"}, "until"),
        ({"limit": "0"}, "limit"),
        ({"limit": "501"}, "limit"),
        ({"offset": "-1"}, "offset"),
        ({"limit": "ten"}, "limit"),
        ({"actor": "x" * 151}, "actor"),
        ({"provider": "a\x00"}, "provider"),
    ],
)
def test_invalid_queries_are_422(alice_client, params, field):
    response = alice_client.get("/api/audit-events", params)
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]


def test_the_trail_is_read_only(alice_client, trail):
    for method in ("post", "put", "patch", "delete"):
        assert getattr(alice_client, method)("/api/audit-events", {}, format="json").status_code == 405
    assert AuditEvent.objects.count() == 5
