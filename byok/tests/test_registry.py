"""byok.registry and byok.changes: validation, one audit event per real change, announcements after commit."""

from __future__ import annotations

import threading

import pytest
from django.db import connection, transaction

from byok import registry
from byok.audit import Actor
from byok.changes import audited_change
from byok.exceptions import ConflictError, DuplicateNameError, InvalidConfigError, NotFound
from byok.models import ApiKey, AuditEvent, Provider
from byok.signals import config_changed

pytestmark = pytest.mark.django_db

SECRET = "sk-registry-0123456789abcdef"
ALICE = Actor("alice", "127.0.0.1")


@pytest.fixture
def announced():
    seen: list[int | None] = []

    def receiver(sender, provider_id=None, **kwargs):
        seen.append(provider_id)

    config_changed.connect(receiver, weak=False)
    yield seen
    config_changed.disconnect(receiver)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# -- validation -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "values,field",
    [
        ({"kind": "nope"}, "kind"),
        ({"kind": "openai", "name": "has space"}, "name"),
        ({"kind": "openai_compatible"}, "base_url"),
        ({"kind": "openai", "timeout": 0}, "timeout"),
        ({"kind": "openai", "max_retries": 11}, "max_retries"),
        ({"kind": "openai", "priority": True}, "priority"),
        ({"kind": "openai", "colour": "red"}, "colour"),
    ],
)
def test_register_refuses_invalid_values_by_field(values, field):
    with pytest.raises(InvalidConfigError) as info:
        registry.register_provider(**values)
    assert field in info.value.errors
    assert not Provider.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "secret",
    [
        "sk-caf\u00e9-0123456789",  # é
        "sk-\u043a\u043b\u044e\u0447-0123456789",  # Cyrillic
        "sk-abc\u200b0123456789",  # zero-width space
        "\ufeffsk-abc0123456789",  # byte-order mark
        "sk-abc\x7f0123456789",  # DEL, a control character
    ],
)
def test_a_key_that_cannot_travel_in_an_http_header_is_refused_naming_the_field(secret):
    with pytest.raises(InvalidConfigError) as info:
        registry.register_provider(kind="openai", api_key=secret)
    assert list(info.value.errors) == ["api_key"] and "HTTP header" in info.value.errors["api_key"][0]
    provider = registry.register_provider(kind="openai")
    with pytest.raises(InvalidConfigError):
        registry.add_key(provider.pk, secret)
    with pytest.raises(InvalidConfigError):
        registry.rotate_key(provider.pk, secret)
    assert not ApiKey.objects.exists()
    with pytest.raises(InvalidConfigError) as info:
        registry.validate_secret(secret, "new_api_key")
    assert list(info.value.errors) == ["new_api_key"]
    assert secret not in str(info.value.errors)


def test_a_duplicate_name_is_a_conflict_and_rolls_back():
    registry.register_provider(kind="openai", name="one")
    with pytest.raises(DuplicateNameError):
        registry.register_provider(kind="anthropic", name="one", api_key=SECRET)
    other = registry.register_provider(kind="anthropic", name="two")
    with pytest.raises(DuplicateNameError):
        registry.update_provider(other.pk, {"name": "one"})
    assert actions() == ["provider.create", "provider.create"] and not ApiKey.objects.exists()


def test_unknown_ids_are_not_found():
    for call in (
        lambda: registry.get_provider(99),
        lambda: registry.get_provider("nope"),
        lambda: registry.delete_provider(99),
        lambda: registry.add_key(99, SECRET),
    ):
        with pytest.raises(NotFound):
            call()
    provider = registry.register_provider(kind="openai")
    with pytest.raises(NotFound):
        registry.revoke_key(provider.pk, 12345)


# -- one event per real change, announced after commit --------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_every_change_is_one_event_and_one_announcement_after_commit(announced):
    provider = registry.register_provider(kind="openai", api_key=SECRET, actor=ALICE)
    assert announced == [provider.pk]
    key = provider.keys.get()
    registry.update_provider(provider.pk, {"priority": 5}, actor=ALICE)
    new = registry.rotate_key(provider.pk, SECRET + "-2", actor=ALICE)
    registry.revoke_key(provider.pk, new.pk, actor=ALICE)
    registry.delete_provider(provider.pk, actor=ALICE)
    assert actions() == ["provider.create", "provider.update", "key.rotate", "key.revoke", "provider.delete"]
    assert announced == [provider.pk] * 5
    assert set(AuditEvent.objects.values_list("actor", flat=True)) == {"alice"}
    assert AuditEvent.objects.get(action="provider.delete").details["keys_deleted"] == [
        key.fingerprint,
        new.fingerprint,
    ]


@pytest.mark.django_db(transaction=True)
def test_a_rolled_back_change_records_and_announces_nothing(announced):
    provider = registry.register_provider(kind="openai")
    announced.clear()
    with pytest.raises(RuntimeError):
        with transaction.atomic():
            registry.add_key(provider.pk, SECRET)
            raise RuntimeError("the caller's transaction fails after the change")
    assert announced == [] and actions() == ["provider.create"] and not ApiKey.objects.exists()


def test_a_change_has_at_most_one_event():
    provider = registry.register_provider(kind="openai")
    with pytest.raises(RuntimeError, match="one audit event per change"):
        with audited_change(ALICE) as change:
            change.record("provider.update", target=provider)
            change.record("provider.update", target=provider)
    assert actions() == ["provider.create"]


def test_audited_change_maps_integrity_errors_to_the_given_conflict():
    registry.register_provider(kind="openai", name="taken")
    with pytest.raises(ConflictError, match="taken"):
        with audited_change(conflict=lambda: ConflictError("taken")):
            Provider.objects.create(kind="openai", name="taken")


def test_a_repeated_revoke_is_the_key_as_it_is_with_no_new_event():
    provider = registry.register_provider(kind="openai", api_key=SECRET)
    key = provider.keys.get()
    first = registry.revoke_key(provider.pk, key.pk)
    again = registry.revoke_key(provider.pk, key.pk)
    assert first.status == again.status == "revoked"
    assert actions() == ["provider.create", "key.revoke"]


def test_set_key_status_records_only_real_changes():
    provider = registry.register_provider(kind="openai", api_key=SECRET)
    key = provider.keys.get()
    registry.set_key_status(key.pk, "invalid", reason="401 from the provider")
    registry.set_key_status(key.pk, "invalid", reason="401 again")
    assert registry.set_key_status(10**9, "invalid", reason="gone") is None
    key.refresh_from_db()
    assert (key.status, key.last_error) == ("invalid", "401 from the provider")
    assert actions() == ["provider.create", "key.invalid"]


def test_rotating_a_key_that_is_not_active_is_a_conflict():
    provider = registry.register_provider(kind="openai", api_key=SECRET)
    key = provider.keys.get()
    registry.revoke_key(provider.pk, key.pk)
    with pytest.raises(ConflictError):
        registry.rotate_key(provider.pk, SECRET + "-2", key_id=key.pk)
    registry.add_key(provider.pk, SECRET + "-3")
    registry.add_key(provider.pk, SECRET + "-4")
    with pytest.raises(InvalidConfigError) as info:
        registry.rotate_key(provider.pk, SECRET + "-5")
    assert "key_id" in info.value.errors


# -- real concurrency (PostgreSQL: row locks) -----------------------------------------------------


def _concurrently(n: int, call) -> list:
    """Run ``call(i)`` in ``n`` threads released together; each thread's result or exception, in order."""
    barrier = threading.Barrier(n)
    results: list = [None] * n

    def run(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            results[i] = call(i)
        except BaseException as exc:  # collected and asserted by the caller
            results[i] = exc
        finally:
            connection.close()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(n)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    return results


def _clients(user, n: int) -> list:
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    token = Token.objects.create(user=user).plaintext  # type: ignore[attr-defined]  # set on save (byok.keys.tokens)
    clients = [APIClient() for _ in range(n)]
    for client in clients:
        client.credentials(HTTP_AUTHORIZATION=f"Bearer {token}")
    return clients


postgres_only = pytest.mark.postgres  # row locks are PostgreSQL's


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_revokes_through_the_api_write_one_event(alice):
    provider = registry.register_provider(kind="openai", api_key=SECRET)
    key = provider.keys.get()
    clients = _clients(alice, 20)
    responses = _concurrently(20, lambda i: clients[i].delete(f"/api/providers/{provider.pk}/keys/{key.pk}"))
    assert [getattr(r, "status_code", r) for r in responses] == [200] * 20
    assert all(r.json()["status"] == "revoked" for r in responses)
    assert AuditEvent.objects.filter(action="key.revoke").count() == 1


@postgres_only
@pytest.mark.django_db(transaction=True)
def test_twenty_concurrent_provider_deletes_through_the_api_write_one_event(alice):
    provider = registry.register_provider(kind="openai", api_key=SECRET)
    clients = _clients(alice, 20)
    responses = _concurrently(20, lambda i: clients[i].delete(f"/api/providers/{provider.pk}"))
    statuses = sorted(getattr(r, "status_code", r) for r in responses)
    assert statuses == [204] + [404] * 19, statuses
    assert AuditEvent.objects.filter(action="provider.delete").count() == 1
    assert not Provider.objects.filter(pk=provider.pk).exists()
