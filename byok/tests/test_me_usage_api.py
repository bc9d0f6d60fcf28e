"""`GET /api/me/usage`: the caller's own usage with a session, an API token or a gateway key; nobody else's."""

from __future__ import annotations

from datetime import timedelta

import pytest
from rest_framework.test import APIClient

from byok.audit import Actor
from byok.keys import store
from byok.tests.usage_fakes import usage_record

pytestmark = pytest.mark.django_db


@pytest.fixture
def usage(bob, carol):
    key, plain = store.create_key(actor=Actor("admin"), name="bobs-app", user="bob")
    other, other_plain = store.create_key(actor=Actor("admin"), name="carols-app", user="carol")
    usage_record(bob, "1", key=key)
    usage_record(bob, "2")
    usage_record(bob, "3", ago=timedelta(days=10), model="gpt-4o")
    usage_record(carol, "1", key=other, model="carols-model")
    return {"key": key, "plain": plain, "other": other, "other_plain": other_plain}


def _bearer(secret):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Bearer {secret}")
    return client


def test_a_gateway_key_reads_its_owners_usage_only(usage):
    answer = _bearer(usage["plain"]).get("/api/me/usage")
    assert answer.status_code == 200 and "no-store" in answer["Cache-Control"]
    body = answer.json()
    assert body["span"] == "24h" and body["bucket_hours"] == 1 and len(body["series"]) == 24
    assert body["totals"] == {"requests": 2, "errors": 0, "tokens_in": 14, "tokens_out": 6, "spend_usd": 0.001}
    assert sum(p["requests"] for p in body["series"]) == 2
    keys = {(r["key_id"], r["key_prefix"], r["key_name"]) for r in body["rows"]}
    assert keys == {(usage["key"].pk, usage["key"].prefix, "bobs-app"), (None, None, None)}
    assert "carols" not in answer.content.decode() and usage["other"].lookup not in answer.content.decode()
    month = _bearer(usage["plain"]).get("/api/me/usage?span=30d").json()
    assert month["totals"]["requests"] == 3 and {r["model"] for r in month["rows"]} == {"gpt-4o-mini", "gpt-4o"}


def test_session_token_and_x_api_key_work_too(usage, bob, bob_client, carol):
    session = APIClient()
    session.force_login(bob)
    assert session.get("/api/me/usage/").json()["totals"]["requests"] == 2
    assert bob_client.get("/api/me/usage").json()["totals"]["requests"] == 2  # a DRF token
    anthropic_style = APIClient()
    anthropic_style.credentials(HTTP_X_API_KEY=usage["other_plain"])
    body = anthropic_style.get("/api/me/usage").json()
    assert body["totals"]["requests"] == 1 and body["rows"][0]["model"] == "carols-model"


def test_anonymous_and_bad_keys_are_401_with_a_code(usage):
    anonymous = APIClient().get("/api/me/usage")
    assert anonymous.status_code == 401 and anonymous.json()["code"] == "not_authenticated"
    assert anonymous["WWW-Authenticate"].startswith("Bearer")
    unknown = _bearer("byok_" + "A" * 48).get("/api/me/usage")
    assert unknown.status_code == 401 and unknown.json()["code"] == "invalid_key"
    store.revoke_key(usage["key"].pk, actor=Actor("admin"))
    revoked = _bearer(usage["plain"]).get("/api/me/usage")
    assert revoked.status_code == 401 and revoked.json()["code"] == "key_revoked"
    assert usage["plain"] not in revoked.content.decode()


def test_an_expired_key_and_a_bad_span(usage):
    store.update_key(usage["key"].pk, {"expires_at": "2020-01-01T00:00:00Z"}, actor=Actor("admin"))
    expired = _bearer(usage["plain"]).get("/api/me/usage")
    assert expired.status_code == 401 and expired.json()["code"] == "key_expired"
    bad = _bearer(usage["other_plain"]).get("/api/me/usage?span=1y")
    assert bad.status_code == 422 and "span" in bad.json()["errors"]


def test_the_schema_documents_it(admin_browser):
    schema = admin_browser.get("/api/schema?format=json").json()
    operation = schema["paths"]["/api/me/usage"]["get"]
    assert operation["operationId"] == "me_usage"
    assert {p["name"] for p in operation["parameters"]} == {"span"}
    assert {"200", "401", "422"} <= set(operation["responses"])
