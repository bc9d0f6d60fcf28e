"""Authentication of the management API: Token/Bearer with an in-process cache, sessions with CSRF."""

from __future__ import annotations

import pytest
from django.test.utils import CaptureQueriesContext
from django.db import connection
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from byok.api import authentication

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture(autouse=True)
def empty_cache():
    authentication.clear_token_cache()
    yield
    authentication.clear_token_cache()


def client_for(token: str, scheme: str = "Bearer") -> APIClient:
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
    return client


def token_queries(client) -> int:
    with CaptureQueriesContext(connection) as queries:
        assert client.get("/api/providers").status_code == 200
    return sum("authtoken_token" in q["sql"] for q in queries.captured_queries)


def test_a_token_is_looked_up_once_within_the_ttl(alice):
    client = client_for(Token.objects.create(user=alice).key)
    assert token_queries(client) == 1
    assert token_queries(client) == 0
    assert token_queries(client_for(Token.objects.get(user=alice).key, "Token")) == 0


def test_the_cache_expires(alice, monkeypatch):
    client = client_for(Token.objects.create(user=alice).key)
    clock = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock[0])
    assert token_queries(client) == 1
    clock[0] += authentication.TOKEN_CACHE_TTL + 0.1
    assert token_queries(client) == 1


def test_a_deleted_token_is_refused_at_once(alice):
    token = Token.objects.create(user=alice)
    client = client_for(token.key)
    assert client.get("/api/providers").status_code == 200
    token.delete()
    response = client.get("/api/providers")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


def test_a_demoted_or_deactivated_user_loses_access_at_once(alice):
    client = client_for(Token.objects.create(user=alice).key)
    assert client.get("/api/providers").status_code == 200
    alice.is_staff = False
    alice.save()
    assert client.get("/api/providers").status_code == 403
    alice.is_active = False
    alice.save()
    assert client.get("/api/providers").status_code == 401
    alice.delete()
    assert client.get("/api/providers").status_code == 401


def test_the_cached_user_is_a_copy_per_request(alice):
    key = Token.objects.create(user=alice).key
    auth = authentication.BearerOrTokenAuthentication()
    first, _ = auth.authenticate_credentials(key)
    first.username = "mallory"
    second, token = auth.authenticate_credentials(key)
    assert second.username == "alice" and token.key == key


def test_the_cache_is_bounded(alice, monkeypatch):
    monkeypatch.setattr(authentication, "TOKEN_CACHE_MAX", 2)
    auth = authentication.BearerOrTokenAuthentication()
    keys = [Token.objects.create(user=u).key for u in [alice] + [type(alice).objects.create_user(f"u{i}") for i in range(2)]]
    for key in keys:
        auth.authenticate_credentials(key)
    assert len(authentication._cache) <= 2


@pytest.mark.parametrize("header", ["Bearer a\x00b", "Token " + "x" * 300])
def test_strange_tokens_are_401_not_500(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    assert client.get("/api/providers").status_code == 401


def test_other_schemes_are_not_ours(alice):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION="Basic YWxpY2U6YWxpY2UtcGFzcy0xMjM=")
    response = client.get("/api/providers")
    assert response.status_code == 401 and response["WWW-Authenticate"].startswith("Bearer")


def test_session_users_need_staff_too(bob):
    client = APIClient()
    client.force_login(bob)
    assert client.get("/api/providers").status_code == 403
