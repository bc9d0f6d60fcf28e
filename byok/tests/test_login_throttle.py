"""Failed sign-ins are limited per username and per client address, at /login/ and /admin/login/ alike.

Counted in the shared state (the process store, or Redis when the run has REDIS_URL), each test in
its own store or prefix, on a clock the test moves (byok.login_throttle.clock).
"""

from __future__ import annotations

import logging
import uuid
from unittest import mock

import pytest
from django.test import Client, RequestFactory

from byok import login_throttle
from byok.audit import client_address
from byok.state import MemoryStore, StateUnavailable
from byok.tests.state_fakes import T0, FakeClock

pytestmark = pytest.mark.django_db

WINDOW = 300
A, B, C = "203.0.113.7", "198.51.100.20", "192.0.2.33"


@pytest.fixture(autouse=True)
def clock(settings, monkeypatch) -> FakeClock:
    """5 failures per 300 s, fast password hashes, a fresh count (store and Redis prefix) and a clock at T0 + 10 s."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
    settings.BYOK = {
        **settings.BYOK,
        "LOGIN_MAX_FAILURES": 5,
        "LOGIN_WINDOW_S": WINDOW,
        "STATE_PREFIX": f"byok-test-login-{uuid.uuid4().hex[:8]}:",
    }
    monkeypatch.setattr("byok.state._PROCESS_STORE", MemoryStore())
    fake = FakeClock(T0 + 10)  # T0 starts a window: it ends 290 s from here
    monkeypatch.setattr(login_throttle, "clock", fake)
    return fake


def sign_in(client, username, password, address, path="/login/"):
    # The test client's peer is 127.0.0.1: like nginx on the same machine, X-Real-IP names the client.
    return client.post(path, {"username": username, "password": password}, HTTP_X_REAL_IP=address)


def signed_in(client) -> bool:
    return "_auth_user_id" in client.session


def fail(client, username, address, times=5, path="/login/"):
    for _ in range(times):
        answer = sign_in(client, username, "wrong-password", address, path)
        assert answer.status_code == 200 and not signed_in(client)


def test_after_five_failures_the_right_password_gets_429_unchecked(client, bob):
    fail(client, "bob", A)
    with mock.patch("django.contrib.auth.backends.ModelBackend.authenticate", side_effect=AssertionError):
        answer = sign_in(client, "bob", "bob-pass-123", A)
    assert answer.status_code == 429 and answer["Retry-After"] == "290"
    assert b"Too many sign-in attempts" in answer.content and b"bob" not in answer.content
    assert not signed_in(client) and client.get("/chat/").status_code == 302


def test_the_limit_is_per_username_or_per_address(client, bob, carol):
    fail(client, "bob", A)
    assert sign_in(Client(), "carol", "carol-pass-123", B).status_code == 302  # another user, another address
    assert sign_in(client, "bob", "bob-pass-123", B).status_code == 429  # bob, from anywhere
    assert sign_in(client, "BOB ", "bob-pass-123", C).status_code == 429  # however the name is typed
    assert sign_in(client, "carol", "carol-pass-123", A).status_code == 429  # anyone, from A
    assert not signed_in(client)


def test_a_locked_username_and_an_unknown_one_get_the_same_answer(client, bob):
    fail(client, "bob", A)
    fail(client, "nobody", B)
    known, unknown = sign_in(client, "bob", "x", C), sign_in(client, "nobody", "x", C)
    assert known.status_code == unknown.status_code == 429
    assert known.content == unknown.content and known["Retry-After"] == unknown["Retry-After"]


def test_sign_in_works_again_once_the_window_has_passed(client, bob, clock):
    fail(client, "bob", A)
    clock.advance(289)
    assert sign_in(client, "bob", "bob-pass-123", A)["Retry-After"] == "1"
    clock.advance(1)
    answer = sign_in(client, "bob", "bob-pass-123", A)
    assert answer.status_code == 302 and answer["Location"] == "/chat/" and signed_in(client)


def test_a_success_clears_the_username_and_does_not_count_for_the_address(client, bob):
    fail(client, "bob", A, times=4)
    assert sign_in(client, "bob", "bob-pass-123", A).status_code == 302
    client.post("/logout/")
    fail(client, "bob", B, times=4)  # 4 again, not 8
    assert sign_in(client, "bob", "bob-pass-123", C).status_code == 302
    client.post("/logout/")
    assert sign_in(client, "bob", "bob-pass-123", A).status_code == 302  # A: 4 failures, the success given back


def test_the_admin_sign_in_is_throttled_too_and_shares_the_count(client, alice):
    fail(client, "alice", A, times=3, path="/admin/login/")
    fail(client, "alice", B, times=2)  # /login/ counts for the same username
    answer = sign_in(client, "alice", "alice-pass-123", C, path="/admin/login/")
    assert answer.status_code == 429 and answer["Retry-After"] == "290"
    assert not signed_in(client) and client.get("/admin/").status_code == 302


def test_an_ipv6_client_is_counted_by_its_64(client, bob, carol):
    for i in range(5):
        sign_in(client, f"guess{i}", "x", f"2001:db8:1:2::{i + 1}")
    assert sign_in(client, "carol", "carol-pass-123", "2001:db8:1:2:ffff::9").status_code == 429
    assert sign_in(client, "carol", "carol-pass-123", "2001:db8:1:3::1").status_code == 302


def test_failures_and_refusals_are_logged_without_the_password(client, bob, caplog):
    with caplog.at_level(logging.WARNING, logger="byok.auth"):
        fail(client, "bob", A)
        sign_in(client, "bob", "bob-pass-123", A)
    lines = [r.getMessage() for r in caplog.records if r.name == "byok.auth"]
    assert sum("sign-in failed" in line for line in lines) == 5
    assert any("too many attempts" in line and "'bob'" in line and A in line for line in lines)
    assert not any("wrong-password" in line or "bob-pass-123" in line for line in lines)


def test_with_the_shared_state_down_sign_in_still_works_and_says_so(client, bob, monkeypatch, caplog):
    async def down(*args, **kwargs):
        raise StateUnavailable()

    monkeypatch.setattr(login_throttle, "_take", down)
    with caplog.at_level(logging.ERROR, logger="byok.auth"):
        assert sign_in(client, "bob", "bob-pass-123", A).status_code == 302
    assert any("not throttled" in r.getMessage() for r in caplog.records)


def test_zero_turns_the_limit_off(client, bob, settings):
    settings.BYOK = {**settings.BYOK, "LOGIN_MAX_FAILURES": 0}
    fail(client, "bob", A, times=7)
    assert sign_in(client, "bob", "bob-pass-123", A).status_code == 302


def test_x_real_ip_is_believed_only_from_a_proxy_on_this_machine():
    factory = RequestFactory()
    assert client_address(factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP=A)) == A
    assert client_address(factory.get("/", REMOTE_ADDR="::1", HTTP_X_REAL_IP="2001:db8::7")) == "2001:db8::7"
    assert client_address(factory.get("/", REMOTE_ADDR=B, HTTP_X_REAL_IP=A)) == B
    assert client_address(factory.get("/", REMOTE_ADDR="127.0.0.1", HTTP_X_REAL_IP="not an address")) == "127.0.0.1"
