"""ensure_admin: the superuser from the environment, created once."""

from __future__ import annotations

import pytest
from django.contrib.auth import get_user_model
from django.core.management import CommandError, call_command

pytestmark = pytest.mark.django_db


def test_it_creates_the_superuser_once(monkeypatch, capsys):
    monkeypatch.setenv("BYOK_ADMIN_USER", "root-admin")
    monkeypatch.setenv("BYOK_ADMIN_PASSWORD", "a-long-password-1")
    call_command("ensure_admin")
    call_command("ensure_admin")
    user = get_user_model().objects.get(username="root-admin")
    assert user.is_superuser and user.check_password("a-long-password-1")
    assert "exists" in capsys.readouterr().out


def test_it_does_nothing_without_a_user(monkeypatch):
    monkeypatch.delenv("BYOK_ADMIN_USER", raising=False)
    call_command("ensure_admin")
    assert not get_user_model().objects.exists()


def test_it_refuses_a_user_without_a_password(monkeypatch):
    monkeypatch.setenv("BYOK_ADMIN_USER", "root-admin")
    monkeypatch.setenv("BYOK_ADMIN_PASSWORD", "")
    with pytest.raises(CommandError, match="BYOK_ADMIN_PASSWORD"):
        call_command("ensure_admin")
