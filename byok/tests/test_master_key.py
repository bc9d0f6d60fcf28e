"""Master-key rotation: every key re-encrypted in one transaction, or nothing changed."""

from __future__ import annotations

import pytest
from django.core.management import CommandError, call_command

from byok import registry
from byok.crypto import fernet_for
from byok.models import ApiKey, AuditEvent
from byok_project.envconfig import new_master_key

pytestmark = pytest.mark.django_db

SECRETS = ["sk-first-0123456789abcdef", "sk-ant-second-0123456789", "AIzaThird0123456789abcdefghij"]


@pytest.fixture
def keys(settings):
    old = new_master_key()
    settings.BYOK_MASTER_KEY = old
    provider = registry.register_provider(kind="openai", api_key=SECRETS[0])
    registry.add_key(provider.pk, SECRETS[1])
    registry.add_key(provider.pk, SECRETS[2])
    return old


def test_rotation_re_encrypts_every_key_under_the_new_master_key(keys, settings, monkeypatch):
    new = new_master_key()
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", keys)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new)
    call_command("rotate_master_key")
    stored = list(ApiKey.objects.order_by("pk"))
    assert [k.secret.reveal(fernet_for(new)) for k in stored] == SECRETS
    with pytest.raises(Exception):
        stored[0].secret.reveal(fernet_for(keys))
    settings.BYOK_MASTER_KEY = new
    assert ApiKey.objects.order_by("pk").first().secret.reveal() == SECRETS[0]
    assert AuditEvent.objects.filter(action="master_key.rotate").get().details == {"keys": 3}


def test_a_wrong_old_key_aborts_without_changing_anything(keys, monkeypatch):
    before = [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")]
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", new_master_key())
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new_master_key())
    with pytest.raises(CommandError, match="cannot be decrypted"):
        call_command("rotate_master_key")
    assert [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")] == before
    assert [k.secret.reveal() for k in ApiKey.objects.order_by("pk")] == SECRETS
    assert not AuditEvent.objects.filter(action="master_key.rotate").exists()


def test_a_failure_midway_rolls_every_key_back(keys, monkeypatch):
    """An interrupted run leaves every key readable with the old key."""
    from byok.crypto import SealedSecret

    before = [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")]
    calls = {"n": 0}
    real_seal = SealedSecret.seal.__func__

    def failing_seal(cls, secret, fernet=None):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt  # the operator pressed Ctrl-C after the first key
        return real_seal(cls, secret, fernet)

    monkeypatch.setattr(SealedSecret, "seal", classmethod(failing_seal))
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", keys)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new_master_key())
    with pytest.raises(KeyboardInterrupt):
        call_command("rotate_master_key")
    assert [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")] == before


@pytest.mark.parametrize(
    "old,new,message",
    [
        (None, "x", "BYOK_OLD_MASTER_KEY is not set"),
        ("not-a-key", "x", "BYOK_OLD_MASTER_KEY must be 32 random bytes"),
    ],
)
def test_bad_master_keys_are_refused_by_name(keys, monkeypatch, old, new, message):
    if old is None:
        monkeypatch.delenv("BYOK_OLD_MASTER_KEY", raising=False)
    else:
        monkeypatch.setenv("BYOK_OLD_MASTER_KEY", old)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new)
    with pytest.raises(CommandError, match=message):
        call_command("rotate_master_key")


def test_the_same_key_twice_is_refused(keys, monkeypatch):
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", keys)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", keys)
    with pytest.raises(CommandError, match="the same"):
        call_command("rotate_master_key")


def test_generate_master_key_prints_a_valid_key(capsys):
    call_command("generate_master_key")
    fernet_for(capsys.readouterr().out.strip())  # raises if invalid


def test_generate_master_key_runs_with_an_empty_environment(tmp_path):
    """The README's production step: no DJANGO_SECRET_KEY, no BYOK_MASTER_KEY, no local secrets file."""
    import subprocess
    import sys
    from pathlib import Path

    manage = Path(__file__).resolve().parents[2] / "manage.py"
    result = subprocess.run(
        [sys.executable, str(manage), "generate_master_key"],
        env={},
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    fernet_for(result.stdout.strip())  # raises if invalid


def test_rotation_refuses_a_usable_key_that_an_http_header_cannot_carry(keys, monkeypatch):
    from byok.models import ApiKey
    from byok.secrets import fingerprint, hint

    provider = ApiKey.objects.first().provider
    bad = "sk-caf\u00e9-0123456789abcdef"  # stored before keys were checked
    ApiKey.objects.create(provider=provider, secret=bad, hint=hint(bad), fingerprint=fingerprint(bad))
    before = [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")]
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", keys)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new_master_key())
    with pytest.raises(CommandError, match="HTTP header.*Revoke or replace it first"):
        call_command("rotate_master_key")
    assert [bytes(k.secret.token) for k in ApiKey.objects.order_by("pk")] == before
    ApiKey.objects.filter(fingerprint=fingerprint(bad)).update(status="revoked")
    call_command("rotate_master_key")  # a revoked key is never sent: re-encrypted as it is


def test_keys_written_under_the_new_key_during_a_rollout_are_left_as_they_are(keys, settings, monkeypatch):
    new = new_master_key()
    settings.BYOK_MASTER_KEY, settings.BYOK_MASTER_KEY_PREVIOUS = new, keys  # a process already rolled out
    provider = ApiKey.objects.first().provider
    registry.add_key(provider.pk, "sk-during-rollout-0123456789")
    monkeypatch.setenv("BYOK_OLD_MASTER_KEY", keys)
    monkeypatch.setenv("BYOK_NEW_MASTER_KEY", new)
    call_command("rotate_master_key")
    assert sorted(k.secret.reveal(fernet_for(new)) for k in ApiKey.objects.all()) == sorted(
        [*SECRETS, "sk-during-rollout-0123456789"]
    )
    assert AuditEvent.objects.get(action="master_key.rotate").details == {"keys": 3, "already_new": 1}
