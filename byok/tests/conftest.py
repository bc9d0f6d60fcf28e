"""Shared test actors and helpers: alice (staff), bob (not staff), and a canary key."""

from __future__ import annotations

import pytest
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

CANARY = "sk-canary-7f3a9c1e5b2d4f6a8c0e1b3d5f7a9c2e"


@pytest.fixture
def alice(django_user_model):
    return django_user_model.objects.create_user("alice", password="alice-pass-123", is_staff=True, is_superuser=True)


@pytest.fixture
def bob(django_user_model):
    return django_user_model.objects.create_user("bob", password="bob-pass-123")


@pytest.fixture
def alice_client(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {Token.objects.create(user=alice).key}")
    return client


@pytest.fixture
def bob_client(bob):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Token {Token.objects.create(user=bob).key}")
    return client


@pytest.fixture
def admin_browser(client, alice):
    client.force_login(alice)
    return client
