"""Self-service pages: sign-in for any active user, My keys (cap, team models, shown once, own keys only), My usage.

Django's test client against the views; `GET /api/me/usage` is in test_me_usage_api.py and the
browser round trip (sign in, create a key, chat through the SDK, see it on My usage) in
e2e/test_self_service_browser.py.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from django.test import Client

from byok import registry
from byok.audit import Actor
from byok.keys import store
from byok.models import AuditEvent, GatewayKey
from byok.tests.usage_fakes import usage_record

pytestmark = pytest.mark.django_db

SECRET = re.compile(r"byok_[A-Za-z0-9_-]{20,}")


@pytest.fixture
def bob_browser(bob):
    client = Client()
    client.force_login(bob)
    return client


@pytest.fixture
def provider():
    return registry.register_provider(
        kind="openai", name="openai", api_key="sk-self-0123456789abcdef", default_model="gpt-4o", is_default=True
    )


def _create(client, **fields):
    return client.post("/me/keys/", {"name": "laptop", "team": "", "models": "", "expires": "", **fields})


# -- sign in, sign out ------------------------------------------------------------------------------------


def test_the_pages_send_anonymous_visitors_to_the_plain_sign_in(client):
    for path in ("/chat/", "/me/keys/", "/me/usage/"):
        answer = client.get(path)
        assert answer.status_code == 302 and answer["Location"] == f"/login/?next={path}"
    assert client.post("/me/keys/1/revoke/")["Location"].startswith("/login/")


def test_an_ordinary_user_signs_in_and_lands_on_chat(client, bob):
    page = client.get("/login/?next=/chat/")
    assert page.status_code == 200 and b'name="csrfmiddlewaretoken"' in page.content and b"/admin/" not in page.content
    answer = client.post("/login/", {"username": "bob", "password": "bob-pass-123", "next": "/chat/"})
    assert answer.status_code == 302 and answer["Location"] == "/chat/"
    chat = client.get("/chat/").content.decode()
    assert 'href="/me/keys/"' in chat and 'href="/me/usage/"' in chat and 'action="/logout/"' in chat
    assert client.get("/admin/").status_code == 302  # the admin still refuses a non-staff user


def test_sign_in_refuses_a_wrong_password_and_an_inactive_user(client, bob):
    wrong = client.post("/login/", {"username": "bob", "password": "nope"})
    assert wrong.status_code == 200 and b'role="alert"' in wrong.content
    bob.is_active = False
    bob.save()
    assert client.post("/login/", {"username": "bob", "password": "bob-pass-123"}).status_code == 200
    assert client.get("/chat/").status_code == 302


def test_staff_sign_in_here_too_and_the_admin_keeps_its_own_login(client, alice):
    assert client.get("/admin/login/").status_code == 200
    answer = client.post("/login/", {"username": "alice", "password": "alice-pass-123"})
    assert answer["Location"] == "/chat/"
    assert client.get("/admin/").status_code == 200


def test_logout_is_a_post_and_ends_the_session(bob_browser):
    assert bob_browser.get("/logout/").status_code == 405
    assert bob_browser.post("/logout/")["Location"] == "/login/"
    assert bob_browser.get("/me/keys/").status_code == 302


# -- My keys ----------------------------------------------------------------------------------------------


def test_a_new_key_is_shown_once_stored_hashed_and_audited(bob_browser, bob):
    answer = _create(bob_browser, expires="30")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    secret = SECRET.search(answer.content.decode()).group(0)
    key = GatewayKey.objects.get(user=bob)
    assert key.name == "laptop" and key.team is None and key.expires_at > datetime.now(UTC) + timedelta(days=29)
    assert secret not in key.digest and key.digest != secret
    listing = bob_browser.get("/me/keys/").content.decode()
    assert key.prefix in listing and secret not in listing and secret[:14] not in listing.replace(key.prefix, "")
    assert "no-cache" in bob_browser.get("/me/keys/")["Cache-Control"]
    event = AuditEvent.objects.get(action="gateway_key.create")
    assert event.actor == "bob" and secret not in str(event.details)


def test_the_per_user_cap_counts_active_keys(bob_browser, bob, settings):
    settings.BYOK_SELF_SERVICE_MAX_KEYS = 2
    assert _create(bob_browser, name="one").status_code == 200
    assert _create(bob_browser, name="two").status_code == 200
    refused = _create(bob_browser, name="three")
    assert refused.status_code == 422 and "the most allowed" in refused.content.decode()
    assert GatewayKey.objects.filter(user=bob).count() == 2
    store.revoke_key(GatewayKey.objects.get(name="one").pk, actor=Actor("bob"))
    assert _create(bob_browser, name="three").status_code == 200


def test_a_key_may_name_only_the_users_teams_and_their_models(bob_browser, bob, carol, provider):
    actor = Actor("admin")
    mine = store.create_team(actor=actor, name="research", members=["bob"], models=["openai/gpt-4o-mini", "openai/o*"])
    theirs = store.create_team(actor=actor, name="finance", members=["carol"])
    page = bob_browser.get("/me/keys/").content.decode()
    assert "research" in page and "finance" not in page
    outside = _create(bob_browser, team=str(mine.pk), models="openai/gpt-4o-mini, openai/gpt-4o")
    body = outside.content.decode()
    assert outside.status_code == 422 and "Not allowed for team research: openai/gpt-4o." in body
    assert _create(bob_browser, team=str(theirs.pk)).status_code == 422
    assert not GatewayKey.objects.exists()
    inside = _create(bob_browser, team=str(mine.pk), models="openai/gpt-4o-mini openai/o3")
    assert inside.status_code == 200
    key = GatewayKey.objects.get()
    assert key.team == mine and key.models == ["openai/gpt-4o-mini", "openai/o3"]


def test_the_stores_refusals_show_on_the_form(bob_browser, provider):
    answer = _create(bob_browser, models="mistral/*")
    assert answer.status_code == 422 and "can never match a configured provider" in answer.content.decode()
    assert _create(bob_browser, name="").status_code == 422
    assert not GatewayKey.objects.exists()


def test_the_form_needs_the_csrf_token(bob):
    strict = Client(enforce_csrf_checks=True)
    strict.force_login(bob)
    assert strict.post("/me/keys/", {"name": "x"}).status_code == 403
    page = strict.get("/me/keys/")
    token = page.cookies["csrftoken"].value
    assert strict.post("/me/keys/", {"name": "x", "csrfmiddlewaretoken": token}).status_code == 200


def test_a_user_sees_and_revokes_only_their_own_keys(bob_browser, bob, carol):
    theirs, _ = store.create_key(actor=Actor("admin"), name="carols-ci", user="carol")
    mine, _ = store.create_key(actor=Actor("admin"), name="bobs-laptop", user="bob")
    page = bob_browser.get("/me/keys/").content.decode()
    assert "bobs-laptop" in page and "carols-ci" not in page and theirs.lookup not in page
    assert bob_browser.post(f"/me/keys/{theirs.pk}/revoke/").status_code == 404
    assert bob_browser.post("/me/keys/999999/revoke/").status_code == 404
    theirs.refresh_from_db()
    assert theirs.revoked_at is None
    assert bob_browser.get(f"/me/keys/{mine.pk}/revoke/").status_code == 405
    assert bob_browser.post(f"/me/keys/{mine.pk}/revoke/")["Location"] == "/me/keys/"
    mine.refresh_from_db()
    assert mine.revoked_at is not None
    event = AuditEvent.objects.get(action="gateway_key.revoke")
    assert event.actor == "bob"
    assert "revoked" in bob_browser.get("/me/keys/").content.decode()


# -- My usage ---------------------------------------------------------------------------------------------


def test_my_usage_shows_my_requests_only_as_charts_and_a_table(bob_browser, bob, carol):
    key, _ = store.create_key(actor=Actor("admin"), name="bobs-laptop", user="bob")
    other, _ = store.create_key(actor=Actor("admin"), name="carols-ci", user="carol")
    usage_record(bob, "1", key=key, cost="0.0010")
    usage_record(bob, "2", cost="0.0010")
    usage_record(bob, "3", ago=timedelta(days=3), model="gpt-4o")
    usage_record(carol, "1", key=other, model="secret-model")
    page = bob_browser.get("/me/usage/").content.decode()
    assert page.count('<svg class="byok-chart"') == 3
    assert 'id="total-requests">2<' in page and "$0.0020" in page
    assert key.prefix in page and "bobs-laptop" in page and "login / token" in page
    assert "secret-model" not in page and "carols-ci" not in page and other.lookup not in page
    week = bob_browser.get("/me/usage/?span=7d").content.decode()
    assert 'id="total-requests">3<' in week and "gpt-4o<" in week
    assert 'id="total-requests">2<' in bob_browser.get("/me/usage/?span=bogus").content.decode()


def test_my_usage_with_no_requests_says_so(bob_browser):
    page = bob_browser.get("/me/usage/?span=30d").content.decode()
    assert "No requests in this period" in page and 'aria-current="page">30d' in page
