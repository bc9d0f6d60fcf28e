"""The management REST API: the owner's test plan, status codes, one error shape, audit, no secret out.

Upstream calls (the provider test) are faked with respx. More focused tests
of the same API live in `byok/tests/api/`.
"""

from __future__ import annotations

import pytest
import respx
from rest_framework.test import APIClient

from byok import registry
from byok.models import ApiKey, AuditEvent, Provider
from byok.tests.conftest import CANARY

pytestmark = pytest.mark.django_db

OPENAI = "https://api.openai.com/v1/chat/completions"
KEY = "sk-test-0123456789abcdefghij"
OTHER_KEY = "sk-test-9876543210zyxwvutsrq"


def openai_json(text="pong"):
    return {
        "id": "chatcmpl-1",
        "object": "chat.completion",
        "model": "gpt-4o-mini",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "length"}],
        "usage": {"prompt_tokens": 8, "completion_tokens": 1, "total_tokens": 9},
    }


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    """The users of these tests never log in with a password: hash it cheaply."""
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def provider(alice):
    return registry.register_provider(kind="openai", name="openai", default_model="gpt-4o-mini", api_key=KEY)


@pytest.fixture
def fresh_handler(monkeypatch):
    """A handler of this test's own, so no provider snapshot of an earlier test is reused."""
    from byok.gateway import handler as handler_module
    from byok.state import MemoryStateBackend, MemoryStore
    from byok.tests.usage_fakes import KeptUsage

    store = MemoryStore()  # not the shared Redis state: cooldowns of other tests' keys must not leak in
    h = handler_module.BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store), usage=KeptUsage())
    monkeypatch.setattr(handler_module, "_handler", h)
    return h


def assert_error(response, status: int, code: str | None = None) -> dict:
    assert response.status_code == status, response.content
    assert response["Content-Type"].startswith("application/json")
    body = response.json()
    assert isinstance(body["code"], str) and body["code"]
    assert isinstance(body["message"], str) and body["message"]
    if code is not None:
        assert body["code"] == code
    return body


def events(action: str | None = None) -> list[AuditEvent]:
    qs = AuditEvent.objects.order_by("id")
    return list(qs.filter(action=action) if action else qs)


# -- the owner's test plan -----------------------------------------------------------------


def test_register_provider_endpoint(alice_client):
    response = alice_client.post(
        "/api/providers/register",
        {
            "provider": "anthropic",
            "api_key": KEY,
            "model": "claude-sonnet-4",
            "timeout": 30,
            "rpm": 60,
            "label": "main",
        },
        format="json",
        REMOTE_ADDR="203.0.113.7",
    )
    assert response.status_code == 201, response.content
    body = response.json()
    assert body["name"] == "anthropic"  # defaults to the kind
    assert body["provider"] == "anthropic" and body["model"] == "claude-sonnet-4" and body["timeout"] == 30.0
    assert body["effective_base_url"] == "https://api.anthropic.com"
    assert response["Location"] == f"/api/providers/{body['id']}"
    [key] = body["keys"]
    assert key["hint"] == "sk-…ghij" and key["status"] == "active" and key["rpm"] == 60 and key["label"] == "main"
    assert "api_key" not in body and "secret" not in key and KEY not in response.content.decode()
    provider = Provider.objects.get(pk=body["id"])
    assert provider.keys.get().secret.reveal() == KEY
    [event] = events()
    assert (event.action, event.actor, event.source_address) == ("provider.create", "alice", "203.0.113.7")
    assert event.provider_name == "anthropic" and event.key_fingerprint == key["fingerprint"]


def test_register_provider_without_key_and_with_every_setting(alice_client, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    body = {
        "provider": "openai_compatible",
        "name": "local-llm",
        "base_url": "http://127.0.0.1:8080/v1",
        "model": "llama",
        "timeout": 2.5,
        "max_retries": 0,
        "priority": -5,
        "enabled": False,
        "is_default": True,
    }
    response = alice_client.post("/api/providers/register", body, format="json")
    assert response.status_code == 201, response.content
    got = response.json()
    assert {k: got[k] for k in body if k != "api_key"} == body
    assert got["keys"] == [] and got["effective_base_url"] == "http://127.0.0.1:8080/v1"
    assert events("provider.create")[0].details["with_key"] is False


def test_list_providers_endpoint(alice_client, provider):
    registry.add_key(provider.pk, OTHER_KEY, quota_group="org-1", tpm=1000)
    registry.register_provider(kind="gemini", name="gemini", priority=1)
    response = alice_client.get("/api/providers")
    assert response.status_code == 200
    listed = response.json()
    assert [p["name"] for p in listed] == ["gemini", "openai"]  # routing order: priority, then name
    keys = listed[1]["keys"]
    assert [k["hint"] for k in keys] == ["sk-…ghij", "sk-…tsrq"]
    assert keys[1]["quota_group"] == "org-1" and keys[1]["tpm"] == 1000
    assert set(keys[0]) == {
        "id",
        "hint",
        "fingerprint",
        "status",
        "label",
        "quota_group",
        "rpm",
        "tpm",
        "token_quota",
        "quota_window",
        "parked_until",
        "last_used_at",
        "last_error",
        "created_at",
        "retired_at",
    }
    text = response.content.decode()
    assert KEY not in text and OTHER_KEY not in text
    assert alice_client.get("/api/providers/").status_code == 200  # the trailing slash is accepted too


def test_get_provider_endpoint(alice_client, provider):
    response = alice_client.get(f"/api/providers/{provider.pk}")
    assert response.status_code == 200
    body = response.json()
    assert body["id"] == provider.pk and body["name"] == "openai" and body["model"] == "gpt-4o-mini"
    assert body["keys"][0]["hint"] == "sk-…ghij" and KEY not in response.content.decode()
    assert_error(alice_client.get(f"/api/providers/{provider.pk + 1000}"), 404, "not_found")
    for bad in ("abc", "-1", "0", "1.5", "99999999999999999999999", "%C2%B2", "openai"):
        assert_error(alice_client.get(f"/api/providers/{bad}"), 404, "not_found")


def test_delete_provider_endpoint(alice_client, provider):
    key_fingerprint = provider.keys.get().fingerprint
    response = alice_client.delete(f"/api/providers/{provider.pk}")
    assert response.status_code == 204 and response.content == b""
    assert not Provider.objects.exists() and not ApiKey.objects.exists()
    [event] = events("provider.delete")
    assert event.actor == "alice" and event.details["keys_deleted"] == [key_fingerprint]
    assert_error(alice_client.get(f"/api/providers/{provider.pk}"), 404)
    assert_error(alice_client.delete(f"/api/providers/{provider.pk}"), 404)
    assert len(events("provider.delete")) == 1


def test_rotate_key_endpoint(alice_client, provider):
    old = provider.keys.get()
    response = alice_client.post(f"/api/providers/{provider.pk}/rotate-key", {"api_key": OTHER_KEY}, format="json")
    assert response.status_code == 200, response.content
    new = response.json()
    assert new["status"] == "active" and new["hint"] == "sk-…tsrq" and new["id"] != old.pk
    assert OTHER_KEY not in response.content.decode()
    old.refresh_from_db()
    assert old.status == "retired" and old.retired_at is not None
    [event] = events("key.rotate")
    assert event.actor == "alice" and event.details["old_key_id"] == old.pk and event.details["new_hint"] == "sk-…tsrq"
    assert AuditEvent.objects.filter(action__startswith="key.").count() == 1  # one event for the whole rotation
    # The retired key cannot be rotated again (409); several active keys need `key_id` (422).
    again = alice_client.post(
        f"/api/providers/{provider.pk}/rotate-key", {"api_key": KEY, "key_id": old.pk}, format="json"
    )
    assert_error(again, 409, "conflict")
    registry.add_key(provider.pk, "sk-test-third-key-000000000")
    body = assert_error(
        alice_client.post(f"/api/providers/{provider.pk}/rotate-key", {"api_key": KEY}, format="json"), 422
    )
    assert "key_id" in body["errors"]
    by_id = alice_client.post(
        f"/api/providers/{provider.pk}/rotate-key", {"api_key": KEY, "key_id": new["id"]}, format="json"
    )
    assert by_id.status_code == 200 and ApiKey.objects.get(pk=new["id"]).status == "retired"
    assert_error(
        alice_client.post(f"/api/providers/{provider.pk}/rotate-key", {"api_key": KEY, "key_id": 10**6}, format="json"),
        404,
    )
    assert_error(alice_client.post("/api/providers/424242/rotate-key", {"api_key": KEY}, format="json"), 404)


def test_test_provider_endpoint(alice_client, provider, fresh_handler):
    with respx.mock(assert_all_called=True) as mock:
        route = mock.post(OPENAI).respond(200, json=openai_json())
        response = alice_client.post(f"/api/providers/{provider.pk}/test")
    assert response.status_code == 200, response.content
    body = response.json()
    assert body["ok"] is True and body["error"] is None and body["latency_ms"] >= 0
    assert body["key_hint"] == "sk-…ghij"
    sent = route.calls.last.request
    assert sent.headers["authorization"] == f"Bearer {KEY}"  # the real key went upstream, and only there
    assert KEY not in response.content.decode()


def test_test_provider_endpoint_reports_an_upstream_failure(alice_client, provider, fresh_handler):
    with respx.mock:
        respx.post(OPENAI).respond(
            401,
            json={
                "error": {
                    "message": f"Incorrect API key provided: {KEY}",
                    "type": "invalid_request_error",
                    "code": "invalid_api_key",
                }
            },
        )
        response = alice_client.post(f"/api/providers/{provider.pk}/test")
    assert response.status_code == 200
    body = response.json()
    assert body["ok"] is False and body["error"]["code"] and body["error"]["message"]
    assert KEY not in response.content.decode()
    assert_error(alice_client.post("/api/providers/999999/test"), 404, "not_found")


# -- keys ----------------------------------------------------------------------------------------


def test_add_and_revoke_key_endpoints(alice_client, provider):
    response = alice_client.post(
        f"/api/providers/{provider.pk}/keys",
        {"api_key": OTHER_KEY, "label": "backup", "token_quota": 5000, "quota_window": "day", "rpm": None},
        format="json",
    )
    assert response.status_code == 201, response.content
    key = response.json()
    assert (
        key["hint"] == "sk-…tsrq" and key["token_quota"] == 5000 and key["quota_window"] == "day" and key["rpm"] is None
    )
    assert events("key.create")[0].key_fingerprint == key["fingerprint"]

    revoked = alice_client.delete(f"/api/providers/{provider.pk}/keys/{key['id']}")
    assert revoked.status_code == 200 and revoked.json()["status"] == "revoked" and revoked.json()["id"] == key["id"]
    assert ApiKey.objects.get(pk=key["id"]).status == "revoked"
    assert events("key.revoke")[0].actor == "alice"

    other = registry.register_provider(kind="gemini", name="gemini", api_key="AIzaSyA-test-key-0000000000000000000")
    other_key = other.keys.get()
    assert_error(alice_client.delete(f"/api/providers/{provider.pk}/keys/{other_key.pk}"), 404)  # not this provider's
    assert_error(alice_client.delete(f"/api/providers/{provider.pk}/keys/nope"), 404)
    assert_error(alice_client.delete(f"/api/providers/999999/keys/{other_key.pk}"), 404)
    assert_error(alice_client.post("/api/providers/999999/keys", {"api_key": OTHER_KEY}, format="json"), 404)
    body = assert_error(
        alice_client.post(f"/api/providers/{provider.pk}/keys", {"api_key": "short"}, format="json"), 422
    )
    assert "api_key" in body["errors"]


def test_patch_provider_endpoint(alice_client, provider):
    response = alice_client.patch(
        f"/api/providers/{provider.pk}",
        {"model": "gpt-4.1", "priority": 3, "enabled": False, "name": "oa"},
        format="json",
    )
    assert response.status_code == 200, response.content
    body = response.json()
    assert (body["model"], body["priority"], body["enabled"], body["name"]) == ("gpt-4.1", 3, False, "oa")
    [event] = events("provider.update")
    assert event.details["changes"]["default_model"] == ["gpt-4o-mini", "gpt-4.1"]
    # Nothing to change: 200, no audit event.
    assert alice_client.patch(f"/api/providers/{provider.pk}", {}, format="json").status_code == 200
    assert len(events("provider.update")) == 1
    registry.register_provider(kind="gemini", name="gemini")
    assert_error(
        alice_client.patch(f"/api/providers/{provider.pk}", {"name": "gemini"}, format="json"), 409, "duplicate_name"
    )
    assert_error(alice_client.patch("/api/providers/999999", {"priority": 1}, format="json"), 404)
    assert_error(alice_client.patch("/api/providers/999999", {}, format="json"), 404)
    body = assert_error(
        alice_client.patch(f"/api/providers/{provider.pk}", {"provider": "openai_compatible"}, format="json"), 422
    )
    assert "base_url" in body["errors"]  # an openai_compatible provider needs a base URL


def test_is_default_moves_between_providers(alice_client, provider):
    registry.register_provider(kind="gemini", name="gemini", is_default=True)
    response = alice_client.patch(f"/api/providers/{provider.pk}", {"is_default": True}, format="json")
    assert response.status_code == 200
    assert list(Provider.objects.filter(is_default=True).values_list("name", flat=True)) == ["openai"]


# -- 409, 422, 400, 415, 413 -------------------------------------------------------------------------


def test_duplicate_name_is_409(alice_client, provider):
    body = assert_error(
        alice_client.post("/api/providers/register", {"provider": "openai"}, format="json"), 409, "duplicate_name"
    )
    assert "openai" in body["message"]
    assert Provider.objects.count() == 1 and len(events("provider.create")) == 1


@pytest.mark.parametrize(
    "body, fields",
    [
        ({}, {"provider"}),
        ({"provider": "mistral"}, {"provider"}),
        ({"provider": 5}, {"provider"}),
        ({"provider": "openai", "name": "has space"}, {"name"}),
        ({"provider": "openai", "name": ""}, {"name"}),
        ({"provider": "openai", "name": "x" * 65}, {"name"}),
        ({"provider": "openai", "timeout": "30"}, {"timeout"}),
        ({"provider": "openai", "timeout": 0}, {"timeout"}),
        ({"provider": "openai", "timeout": True}, {"timeout"}),
        ({"provider": "openai", "max_retries": 11}, {"max_retries"}),
        ({"provider": "openai", "max_retries": 1.5}, {"max_retries"}),
        ({"provider": "openai", "priority": 2**31}, {"priority"}),
        ({"provider": "openai", "enabled": "yes"}, {"enabled"}),
        ({"provider": "openai", "enabled": 1}, {"enabled"}),
        ({"provider": "openai", "model": ["gpt"]}, {"model"}),
        ({"provider": "openai", "model": None}, {"model"}),
        ({"provider": "openai", "api_key": 12345678901}, {"api_key"}),
        ({"provider": "openai", "api_key": "short"}, {"api_key"}),
        ({"provider": "openai", "api_key": "sk-has a space-123456"}, {"api_key"}),
        ({"provider": "openai", "api_key": KEY, "rpm": 0}, {"rpm"}),
        ({"provider": "openai", "api_key": KEY, "rpm": "10"}, {"rpm"}),
        ({"provider": "openai", "api_key": KEY, "token_quota": 100}, {"quota_window"}),
        ({"provider": "openai", "api_key": KEY, "quota_window": "week"}, {"quota_window"}),
        ({"provider": "openai", "rpm": 10}, {"api_key"}),
        ({"provider": "openai", "base_url": "ftp://example.com"}, {"base_url"}),
        ({"provider": "openai", "base_url": "http://127.0.0.1:9/v1"}, {"base_url"}),
        ({"provider": "openai", "base_url": "http://[::1"}, {"base_url"}),
        ({"provider": "openai_compatible"}, {"base_url"}),
        ({"provider": "openai", "api-key": KEY}, {"api-key"}),
        ({"provider": "openai", "name": "a\x00b"}, {"name"}),
        ([{"provider": "openai"}], {"non_field_errors"}),
        ("openai", {"non_field_errors"}),
        (None, {"provider"}),
    ],
)
def test_invalid_register_bodies_are_422_with_field_errors(alice_client, body, fields):
    response = alice_client.post("/api/providers/register", body, format="json")
    got = assert_error(response, 422, "validation_error")
    assert fields <= set(got["errors"]), got
    assert all(isinstance(m, str) for msgs in got["errors"].values() for m in msgs)
    assert not Provider.objects.exists() and not AuditEvent.objects.exists()


@pytest.mark.parametrize(
    "raw",
    [b"{not json", b'{"provider": "openai",}', b"\xff\xfe\x00", b"[" * 50_000, b'{"timeout": NaN}', b"1" * 5000],
)
def test_bodies_that_are_not_json_are_400(alice_client, raw):
    response = alice_client.post("/api/providers/register", data=raw, content_type="application/json")
    assert_error(response, 400, "parse_error")


@pytest.mark.parametrize(
    "raw, field",
    [
        (b'{"provider": "openai", "model": "\\ud800"}', "model"),
        (b"null", "non_field_errors"),
        (b'"x"', "non_field_errors"),
        (b"[]", "non_field_errors"),
    ],
)
def test_json_that_is_not_a_valid_request_is_422(alice_client, raw, field):
    response = alice_client.post("/api/providers/register", data=raw, content_type="application/json")
    assert field in assert_error(response, 422, "validation_error")["errors"]


def test_bodies_of_another_media_type_are_415(alice_client):
    response = alice_client.post(
        "/api/providers/register", data="provider=openai", content_type="application/x-www-form-urlencoded"
    )
    assert_error(response, 415, "unsupported_media_type")


def test_empty_body_is_a_422_not_a_crash(alice_client):
    body = assert_error(alice_client.post("/api/providers/register", data=b"", content_type="application/json"), 422)
    assert "provider" in body["errors"]


@pytest.mark.parametrize(
    "path", ["/api/providers/register", "/api/providers/1/keys", "/v1/chat/completions", "/api/chat"]
)
def test_oversized_bodies_are_413_json(alice_client, settings, path):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = 1000
    response = alice_client.post(path, data=b'{"x": "' + b"a" * 2000 + b'"}', content_type="application/json")
    assert response.status_code == 413
    body = response.json()
    if path.startswith("/v1/"):
        assert body["error"]["code"] == "payload_too_large" and body["error"]["type"] == "invalid_request_error"
    else:
        assert body["code"] == "payload_too_large"
    assert not Provider.objects.exists()


# -- 401 / 403 / CSRF ----------------------------------------------------------------------------------

ENDPOINTS = [
    ("post", "/api/providers/register"),
    ("get", "/api/providers"),
    ("get", "/api/providers/1"),
    ("patch", "/api/providers/1"),
    ("delete", "/api/providers/1"),
    ("post", "/api/providers/1/keys"),
    ("delete", "/api/providers/1/keys/1"),
    ("post", "/api/providers/1/rotate-key"),
    ("post", "/api/providers/1/test"),
    ("get", "/api/audit-events"),
    ("get", "/api/usage"),
]


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_anonymous_is_401_with_a_challenge(method, path, provider):
    response = getattr(APIClient(), method)(path, {"provider": "openai"}, format="json")
    assert_error(response, 401, "not_authenticated")
    assert response["WWW-Authenticate"].startswith("Bearer")
    assert Provider.objects.count() == 1 and AuditEvent.objects.count() == 1


@pytest.mark.parametrize("method, path", ENDPOINTS)
def test_non_staff_is_403(bob_client, method, path, provider):
    response = getattr(bob_client, method)(path, {"provider": "openai"}, format="json")
    assert_error(response, 403, "permission_denied")
    assert Provider.objects.count() == 1 and AuditEvent.objects.count() == 1


@pytest.mark.parametrize("header", ["Token wrong", "Bearer wrong", "Bearer", "Token a b", "Bearer \u00e9t\u00e9"])
def test_bad_tokens_are_401(header):
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=header)
    response = client.get("/api/providers")
    assert_error(response, 401)
    assert "WWW-Authenticate" in response


def test_token_and_bearer_are_both_accepted(alice):
    from rest_framework.authtoken.models import Token

    token = Token.objects.create(user=alice).plaintext
    for scheme in ("Token", "Bearer", "bearer"):
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"{scheme} {token}")
        assert client.get("/api/providers").status_code == 200


def test_session_auth_enforces_csrf(alice):
    client = APIClient(enforce_csrf_checks=True)
    client.force_login(alice)
    assert client.get("/api/providers").status_code == 200  # safe methods need no token
    refused = client.post("/api/providers/register", {"provider": "openai"}, format="json")
    assert_error(refused, 403, "permission_denied")
    assert "CSRF" in refused.json()["message"]
    token = "c" * 32  # a CSRF secret: the cookie and the header must match
    client.cookies["csrftoken"] = token
    accepted = client.post("/api/providers/register", {"provider": "openai"}, format="json", HTTP_X_CSRFTOKEN=token)
    assert accepted.status_code == 201
    assert events("provider.create")[0].actor == "alice"


# -- audit trail ---------------------------------------------------------------------------------------


def test_every_mutation_writes_exactly_one_audit_event(alice_client, provider):
    before = AuditEvent.objects.count()
    pid = provider.pk
    steps = [
        ("patch", f"/api/providers/{pid}", {"priority": 7}, "provider.update"),
        ("post", f"/api/providers/{pid}/keys", {"api_key": OTHER_KEY}, "key.create"),
        (
            "post",
            f"/api/providers/{pid}/rotate-key",
            {"api_key": "sk-test-rotated-key-000000", "key_id": provider.keys.first().pk},
            "key.rotate",
        ),
        ("delete", f"/api/providers/{pid}/keys/{provider.keys.first().pk}", None, "key.revoke"),
        ("post", "/api/providers/register", {"provider": "deepseek", "api_key": KEY}, "provider.create"),
        ("delete", f"/api/providers/{pid}", None, "provider.delete"),
    ]
    for n, (method, path, body, action) in enumerate(steps, start=1):
        response = getattr(alice_client, method)(path, body, format="json", REMOTE_ADDR="198.51.100.4")
        assert response.status_code < 300, (path, response.content)
        assert AuditEvent.objects.count() == before + n
        latest = AuditEvent.objects.order_by("-id").first()
        assert (latest.action, latest.actor, latest.source_address) == (action, "alice", "198.51.100.4")
    for event in AuditEvent.objects.all():
        assert KEY not in str(event.details) and OTHER_KEY not in str(event.details)


def test_failed_requests_write_no_audit_event(alice_client, bob_client, provider):
    before = AuditEvent.objects.count()
    alice_client.post("/api/providers/register", {"provider": "nope"}, format="json")
    alice_client.post("/api/providers/register", {"provider": "openai"}, format="json")  # 409
    alice_client.patch(f"/api/providers/{provider.pk}", {"timeout": -1}, format="json")
    bob_client.delete(f"/api/providers/{provider.pk}")
    assert AuditEvent.objects.count() == before


# -- the canary: a stored key never leaves ----------------------------------------------------------------


def test_canary_key_never_appears_in_any_response(alice_client, fresh_handler):
    created = alice_client.post(
        "/api/providers/register", {"provider": "openai", "name": "canary", "api_key": CANARY}, format="json"
    )
    assert created.status_code == 201
    pid = created.json()["id"]
    key_id = created.json()["keys"][0]["id"]
    responses = [created]
    with respx.mock:
        respx.post(OPENAI).respond(
            401, json={"error": {"message": f"Incorrect API key provided: {CANARY}", "code": "invalid_api_key"}}
        )
        responses.append(alice_client.post(f"/api/providers/{pid}/test"))
    responses += [
        alice_client.get("/api/providers"),
        alice_client.get(f"/api/providers/{pid}"),
        alice_client.patch(f"/api/providers/{pid}", {"model": "gpt-4o"}, format="json"),
        alice_client.post(f"/api/providers/{pid}/keys", {"api_key": CANARY, "label": "second"}, format="json"),
        alice_client.post(
            "/api/providers/register", {"provider": "openai", "name": "canary", "api_key": CANARY}, format="json"
        ),
        alice_client.post(
            "/api/providers/register", {"provider": CANARY, CANARY: CANARY, "api_key": CANARY + " x"}, format="json"
        ),
        alice_client.post(
            f"/api/providers/{pid}/rotate-key",
            {"api_key": "sk-test-replacement-0000000", "key_id": key_id},
            format="json",
        ),
        alice_client.get("/api/audit-events?limit=500"),
        alice_client.get("/api/usage?group_by=key"),
        alice_client.delete(f"/api/providers/{pid}/keys/{key_id}"),
        alice_client.get(f"/api/providers/{CANARY}"),
        alice_client.delete(f"/api/providers/{pid}"),
    ]
    for response in responses:
        assert CANARY not in response.content.decode(errors="replace"), response.content
        assert all(CANARY not in f"{k}: {v}" for k, v in response.items())
