"""Authentication of the management API: Token/Bearer with an in-process cache, sessions with CSRF."""

from __future__ import annotations

import asyncio

import pytest
from django.core.exceptions import SynchronousOnlyOperation
from django.db import connection
from django.test.utils import CaptureQueriesContext
from rest_framework.authtoken.models import Token
from rest_framework.test import APIClient

from byok.api import authentication
from byok.keys.tokens import stored_form

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
    plain = Token.objects.create(user=alice).plaintext
    client = client_for(plain)
    assert token_queries(client) == 1
    assert token_queries(client) == 0
    assert token_queries(client_for(plain, "Token")) == 0


def test_the_cache_expires(alice, monkeypatch):
    client = client_for(Token.objects.create(user=alice).plaintext)
    clock = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock[0])
    assert token_queries(client) == 1
    clock[0] += authentication.TOKEN_CACHE_TTL + 0.1
    assert token_queries(client) == 1


def test_a_deleted_token_is_refused_at_once(alice):
    token = Token.objects.create(user=alice)
    client = client_for(token.plaintext)
    assert client.get("/api/providers").status_code == 200
    token.delete()
    response = client.get("/api/providers")
    assert response.status_code == 401 and response.json()["code"] == "authentication_failed"


def test_a_demoted_or_deactivated_user_loses_access_at_once(alice):
    client = client_for(Token.objects.create(user=alice).plaintext)
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
    key = Token.objects.create(user=alice).plaintext
    auth = authentication.BearerOrTokenAuthentication()
    first, _ = auth.authenticate_credentials(key)
    first.username = "mallory"
    second, token = auth.authenticate_credentials(key)
    assert second.username == "alice" and token.key == stored_form(key)


def test_the_cache_is_bounded(alice, monkeypatch):
    monkeypatch.setattr(authentication, "TOKEN_CACHE_MAX", 2)
    auth = authentication.BearerOrTokenAuthentication()
    keys = [
        Token.objects.create(user=u).plaintext
        for u in [alice] + [type(alice).objects.create_user(f"u{i}") for i in range(2)]
    ]
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


# -- kept fresh off the request path ------------------------------------------------------------


def _clock(monkeypatch) -> list[float]:
    clock = [1000.0]
    monkeypatch.setattr(authentication.time, "monotonic", lambda: clock[0])
    return clock


def test_a_refreshed_entry_needs_no_lookup_past_the_ttl(alice, monkeypatch):
    client = client_for(Token.objects.create(user=alice).plaintext)
    clock = _clock(monkeypatch)
    assert token_queries(client) == 1
    for _ in range(3):
        clock[0] += authentication.TOKEN_CACHE_TTL - 1
        authentication._reload(list(authentication._cache))  # what the refresher does between requests
        assert token_queries(client) == 0


def test_a_refresh_drops_tokens_deleted_and_users_deactivated_elsewhere(alice, bob):
    # `.update()` and `._raw_delete()` send no signal: as if another process had made the change.
    alice_client, bob_client = (
        client_for(Token.objects.create(user=alice).plaintext),
        client_for(Token.objects.create(user=bob).plaintext),
    )
    assert alice_client.get("/v1/models").status_code == 200
    assert bob_client.get("/v1/models").status_code == 200
    type(alice).objects.filter(pk=alice.pk).update(is_active=False)
    Token.objects.filter(user=bob)._raw_delete(Token.objects.db)
    assert alice_client.get("/v1/models").status_code == 200  # cached: not yet known here
    authentication._reload(list(authentication._cache))
    assert authentication._cache == {}
    assert alice_client.get("/v1/models").status_code == 401
    assert bob_client.get("/v1/models").status_code == 401


def test_a_refresh_that_read_before_a_local_change_does_not_bring_the_old_user_back(alice, monkeypatch):
    key = Token.objects.create(user=alice).plaintext
    auth = authentication.BearerOrTokenAuthentication()
    auth.authenticate_credentials(key)
    real_filter = Token.objects.select_related("user").filter

    def read_then_change(*args, **kwargs):
        rows = list(real_filter(*args, **kwargs))  # the refresh has read alice as staff...
        alice.is_staff = False
        alice.save()  # ...then she is demoted here
        return rows

    monkeypatch.setattr(
        Token.objects, "select_related", lambda *a: type("Q", (), {"filter": staticmethod(read_then_change)})
    )
    authentication._reload([stored_form(key)])
    assert stored_form(key) not in authentication._cache


@pytest.mark.django_db(transaction=True)
async def test_the_refresher_runs_on_the_event_loop_and_catches_changes_made_elsewhere(alice, monkeypatch):
    from asgiref.sync import sync_to_async

    monkeypatch.setattr(authentication, "TOKEN_REFRESH_INTERVAL", 0.05)
    key = (await Token.objects.acreate(user=alice)).plaintext
    auth = authentication.BearerOrTokenAuthentication()
    await sync_to_async(auth.authenticate_credentials)(key)  # a miss: looked up in a thread
    auth.authenticate_credentials(key)  # a hit on the loop: starts the refresher
    await type(alice).objects.filter(pk=alice.pk).aupdate(is_active=False)
    for _ in range(100):
        if stored_form(key) not in authentication._cache:
            break
        await asyncio.sleep(0.02)
    assert stored_form(key) not in authentication._cache
    with pytest.raises(SynchronousOnlyOperation):  # now a lookup again, which an event loop may not do itself
        auth.authenticate_credentials(key)
