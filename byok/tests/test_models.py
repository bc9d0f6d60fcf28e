"""Keys at rest, and the append-only audit log."""

from __future__ import annotations

import pytest
from django.db import connection

from byok import registry
from byok.crypto import SealedSecret
from byok.models import ApiKey, AuditEvent
from byok.secrets import fingerprint
from byok.tests.conftest import CANARY

pytestmark = pytest.mark.django_db


def _raw_secret_column(key_id: int) -> bytes:
    with connection.cursor() as cursor:
        cursor.execute("SELECT secret FROM byok_apikey WHERE id = %s", [key_id])
        return bytes(cursor.fetchone()[0])


def test_the_raw_column_holds_no_slice_of_the_secret():
    provider = registry.register_provider(kind="openai", api_key=CANARY)
    raw = _raw_secret_column(provider.keys.get().pk)
    assert raw
    for start in range(len(CANARY) - 7):
        assert CANARY[start : start + 8].encode() not in raw


def test_a_key_round_trips_with_its_hint_and_fingerprint():
    provider = registry.register_provider(kind="anthropic", api_key="sk-ant-api03-abcdefghijklmnop1234")
    key = ApiKey.objects.get(provider=provider)
    assert isinstance(key.secret, SealedSecret)
    assert key.secret.reveal() == "sk-ant-api03-abcdefghijklmnop1234"
    assert key.hint == "sk-ant-…1234"
    assert key.fingerprint == fingerprint("sk-ant-api03-abcdefghijklmnop1234")
    assert len(key.fingerprint) == 16


def test_saving_a_loaded_key_keeps_its_ciphertext():
    provider = registry.register_provider(kind="openai", api_key=CANARY)
    key = provider.keys.get()
    before = _raw_secret_column(key.pk)
    key.label = "renamed"
    key.save()
    assert _raw_secret_column(key.pk) == before
    assert ApiKey.objects.get(pk=key.pk).secret.reveal() == CANARY


def test_repr_and_str_never_show_the_secret():
    provider = registry.register_provider(kind="openai", api_key=CANARY)
    key = provider.keys.get()
    for text in (repr(key), str(key), repr(key.secret), str(key.secret), repr(provider), str(provider)):
        assert CANARY not in text
        assert CANARY[3:15] not in text


def test_audit_events_cannot_be_updated_or_deleted():
    registry.register_provider(kind="openai", api_key=CANARY)
    event = AuditEvent.objects.get()
    event.action = "tampered"
    with pytest.raises(PermissionError):
        event.save()
    with pytest.raises(PermissionError):
        event.delete()
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().update(action="tampered")
    with pytest.raises(PermissionError):
        AuditEvent.objects.all().delete()
    assert AuditEvent.objects.get().action == "provider.create"


def test_no_audit_row_holds_the_secret():
    provider = registry.register_provider(kind="openai", api_key=CANARY)
    registry.rotate_key(provider.pk, CANARY + "x2")
    registry.revoke_key(provider.pk, provider.keys.order_by("-id").first().pk)
    for event in AuditEvent.objects.all():
        text = repr(event.__dict__)
        assert CANARY not in text
