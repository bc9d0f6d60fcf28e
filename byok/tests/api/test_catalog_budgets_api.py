"""The catalog, its overrides and budgets through the management API; spend in GET /api/usage."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from asgiref.sync import async_to_sync

from byok import registry
from byok.models import AuditEvent, Budget, CatalogOverride, UsageRecord
from byok.state import MemoryStateBackend, MemoryStore

pytestmark = pytest.mark.django_db

OVERRIDES = "/api/catalog/overrides"


@pytest.fixture(autouse=True)
def fast_passwords(settings):
    settings.PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]


@pytest.fixture
def state(monkeypatch):
    """The handler's shared state, in memory (one store whatever the event loop)."""
    from byok.gateway import handler as handler_module

    store = MemoryStore()
    monkeypatch.setattr(
        handler_module, "_handler", handler_module.BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store))
    )
    return MemoryStateBackend(store=store)


def actions() -> list[str]:
    return list(AuditEvent.objects.order_by("id").values_list("action", flat=True))


# -- access ------------------------------------------------------------------------------------

PATHS = ["/api/catalog", OVERRIDES, f"{OVERRIDES}/1", "/api/budgets", "/api/budgets/1"]


@pytest.mark.parametrize("path", PATHS)
def test_staff_only(client, bob_client, path, state):
    anonymous = client.get(path)
    assert anonymous.status_code == 401 and anonymous["WWW-Authenticate"].startswith("Bearer")
    assert anonymous.json()["code"] == "not_authenticated"
    assert bob_client.get(path).status_code == 403
    assert bob_client.post(path, {}, format="json").status_code in (403, 405)


def test_trailing_slash(alice_client, state):
    assert alice_client.get("/api/catalog/").status_code == 200
    assert alice_client.get("/api/budgets/").status_code == 200
    assert alice_client.get(f"{OVERRIDES}/").status_code == 200


# -- catalog -----------------------------------------------------------------------------------


def test_catalog_rows_and_provider_filter(alice_client):
    rows = alice_client.get("/api/catalog").json()
    assert {r["provider"] for r in rows} >= {"openai", "anthropic", "gemini"}
    [gpt4o] = [r for r in rows if (r["provider"], r["model"]) == ("openai", "gpt-4o")]
    assert gpt4o["context_window"] == 128000 and gpt4o["input_per_mtok"] == "2.50" and gpt4o["origin"] == "file"
    only = alice_client.get("/api/catalog", {"provider": "anthropic"}).json()
    assert only and {r["provider"] for r in only} == {"anthropic"}
    assert alice_client.get("/api/catalog", {"provider": "nope"}).json() == []
    bad = alice_client.get("/api/catalog", {"provider": "x" * 65})
    assert bad.status_code == 422 and "provider" in bad.json()["errors"]


def test_override_lifecycle_is_audited_and_applied(alice_client):
    created = alice_client.post(
        OVERRIDES,
        {
            "provider": "openai",
            "model": "gpt-4o",
            "input_per_mtok": "3.00",
            "output_per_mtok": 12,
            "as_of": "2025-06-01",
            "context_window": 64000,
            "source": "contract",
            "note": "our price",
        },
        format="json",
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert created["Location"] == f"{OVERRIDES}/{body['id']}"
    assert (
        body["input_per_mtok"] == "3.000000"
        and body["output_per_mtok"] == "12.000000"
        and body["as_of"] == "2025-06-01"
    )
    [row] = [r for r in alice_client.get("/api/catalog", {"provider": "openai"}).json() if r["model"] == "gpt-4o"]
    assert row["origin"] == "file+override" and row["input_per_mtok"] == "3.000000" and row["context_window"] == 64000
    assert row["max_output_tokens"] == 16384  # the file's figure stays

    assert alice_client.get(OVERRIDES).json()[0]["id"] == body["id"]
    assert alice_client.get(f"{OVERRIDES}/{body['id']}").json()["model"] == "gpt-4o"

    changed = alice_client.patch(f"{OVERRIDES}/{body['id']}", {"context_window": None, "enabled": False}, format="json")
    assert (
        changed.status_code == 200 and changed.json()["context_window"] is None and changed.json()["enabled"] is False
    )
    [row] = [r for r in alice_client.get("/api/catalog", {"provider": "openai"}).json() if r["model"] == "gpt-4o"]
    assert row["origin"] == "file"  # disabled: not applied
    assert alice_client.patch(f"{OVERRIDES}/{body['id']}", {}, format="json").status_code == 200  # no change, no event

    assert alice_client.delete(f"{OVERRIDES}/{body['id']}").status_code == 204
    assert alice_client.get(f"{OVERRIDES}/{body['id']}").status_code == 404
    assert actions() == ["catalog.override.create", "catalog.override.update", "catalog.override.delete"]
    event = AuditEvent.objects.get(action="catalog.override.create")
    assert event.actor == "alice" and event.details["model"] == "gpt-4o"


def test_override_for_an_unknown_model(alice_client):
    created = alice_client.post(
        OVERRIDES, {"provider": "my-vllm", "model": "llama-3-70b", "context_window": 8192}, format="json"
    )
    assert created.status_code == 201
    [row] = alice_client.get("/api/catalog", {"provider": "my-vllm"}).json()
    assert row["origin"] == "override" and row["input_per_mtok"] is None and row["context_window"] == 8192


@pytest.mark.parametrize(
    "body, field",
    [
        ({"model": "m"}, "provider"),
        ({"provider": "openai"}, "model"),
        ({"provider": " ", "model": "m"}, "provider"),
        ({"provider": "openai", "model": "m", "context_window": 0}, "context_window"),
        ({"provider": "openai", "model": "m", "context_window": "5"}, "context_window"),
        ({"provider": "openai", "model": "m", "input_per_mtok": -1}, "input_per_mtok"),
        ({"provider": "openai", "model": "m", "input_per_mtok": "1e3"}, "input_per_mtok"),
        ({"provider": "openai", "model": "m", "input_per_mtok": 0.0000001}, "input_per_mtok"),
        ({"provider": "openai", "model": "m", "input_per_mtok": True}, "input_per_mtok"),
        ({"provider": "openai", "model": "m", "as_of": "2025-1-5"}, "as_of"),
        ({"provider": "openai", "model": "m", "as_of": "2025-02-30"}, "as_of"),
        ({"provider": "openai", "model": "m", "origin": "file"}, "origin"),
    ],
)
def test_override_validation(alice_client, body, field):
    response = alice_client.post(OVERRIDES, body, format="json")
    assert response.status_code == 422, response.content
    assert response.json()["code"] == "validation_error" and field in response.json()["errors"]
    assert not CatalogOverride.objects.exists() and not AuditEvent.objects.exists()


def test_override_errors(alice_client):
    first = alice_client.post(OVERRIDES, {"provider": "openai", "model": "gpt-x"}, format="json")
    assert first.status_code == 201
    duplicate = alice_client.post(OVERRIDES, {"provider": "openai", "model": "gpt-x"}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"
    other = alice_client.post(OVERRIDES, {"provider": "openai", "model": "gpt-y"}, format="json").json()
    clash = alice_client.patch(f"{OVERRIDES}/{other['id']}", {"model": "gpt-x"}, format="json")
    assert clash.status_code == 409
    assert alice_client.post(OVERRIDES, b"{nope", content_type="application/json").status_code == 400
    assert alice_client.post(OVERRIDES, "provider=openai", content_type="text/plain").status_code == 415
    for path in (f"{OVERRIDES}/999", f"{OVERRIDES}/abc", f"{OVERRIDES}/0"):
        assert alice_client.get(path).status_code == 404
        assert alice_client.patch(path, {"note": "x"}, format="json").status_code == 404
        assert alice_client.delete(path).status_code == 404
    assert actions() == ["catalog.override.create", "catalog.override.create"]


# -- budgets -----------------------------------------------------------------------------------


@pytest.fixture
def key():
    provider = registry.register_provider(kind="openai", name="openai", api_key="sk-test-aaaaaaaaaaaaaaaa")
    return provider.keys.get()


def test_budget_lifecycle_with_use_from_the_shared_state(alice_client, bob, state):
    created = alice_client.post(
        "/api/budgets", {"user": bob.pk, "token_limit": 1000, "spend_limit": "0.50", "note": "trial"}, format="json"
    )
    assert created.status_code == 201, created.content
    body = created.json()
    assert created["Location"] == f"/api/budgets/{body['id']}"
    assert body["scope"] == "user" and body["user"] == bob.pk and body["key"] is None and body["period"] == "day"
    assert body["spend_limit"] == "0.5000" and body["used_tokens"] == 0 and body["exceeded"] is False
    now = datetime.now(UTC)
    resets = datetime.fromisoformat(body["resets_at"].replace("Z", "+00:00"))
    assert resets.date() > now.date() and (resets.hour, resets.minute) == (0, 0)

    async_to_sync(state.spend)(f"user:{bob.pk}", tokens=400, cost=0.125, period="day")
    [row] = alice_client.get("/api/budgets").json()
    assert row["used_tokens"] == 400 and row["used_spend"] == 0.125 and row["exceeded"] is False

    async_to_sync(state.spend)(f"user:{bob.pk}", tokens=600, cost=0.01, period="day")
    row = alice_client.get(f"/api/budgets/{body['id']}").json()
    assert row["used_tokens"] == 1000 and row["exceeded"] is True

    raised = alice_client.patch(f"/api/budgets/{body['id']}", {"token_limit": 5000}, format="json")
    assert raised.status_code == 200 and raised.json()["token_limit"] == 5000 and raised.json()["exceeded"] is False
    monthly = alice_client.patch(f"/api/budgets/{body['id']}", {"period": "month"}, format="json").json()
    assert monthly["period"] == "month" and monthly["used_tokens"] == 0  # another period's counters
    assert alice_client.delete(f"/api/budgets/{body['id']}").status_code == 204
    assert alice_client.get(f"/api/budgets/{body['id']}").status_code == 404
    assert actions() == ["budget.create", "budget.update", "budget.update", "budget.delete"]
    event = AuditEvent.objects.get(action="budget.create")
    assert event.actor == "alice" and event.details["scope"] == f"user:{bob.pk}"


def test_key_budget(alice_client, key, state):
    created = alice_client.post("/api/budgets", {"key": key.pk, "period": "month", "spend_limit": 20}, format="json")
    assert created.status_code == 201
    body = created.json()
    assert (
        body["scope"] == "key"
        and body["key"] == key.pk
        and body["token_limit"] is None
        and body["spend_limit"] == "20.0000"
    )
    async_to_sync(state.spend)(f"apikey:{key.pk}", tokens=10, cost=20.0, period="month")
    assert alice_client.get(f"/api/budgets/{body['id']}").json()["exceeded"] is True
    assert AuditEvent.objects.filter(action="budget.create", key_fingerprint=key.fingerprint).exists()


@pytest.mark.parametrize(
    "body, field",
    [
        ({"token_limit": 10}, "user"),
        ({"user": "BOB", "token_limit": 10}, "user"),
        ({"user": 999999, "token_limit": 10}, "user"),
        ({"key": 999999, "token_limit": 10}, "key"),
        ("both", "user"),
        ("nolimit", "token_limit"),
        ("zero_spend", "spend_limit"),
        ("bad_period", "period"),
        ("unknown", "scope"),
    ],
)
def test_budget_validation(alice_client, bob, key, body, field, state):
    bodies = {
        "both": {"user": bob.pk, "key": key.pk, "token_limit": 10},
        "nolimit": {"user": bob.pk},
        "zero_spend": {"user": bob.pk, "spend_limit": "0"},
        "bad_period": {"user": bob.pk, "token_limit": 10, "period": "week"},
        "unknown": {"user": bob.pk, "token_limit": 10, "scope": "user"},
    }
    response = alice_client.post("/api/budgets", bodies[body] if isinstance(body, str) else body, format="json")
    assert response.status_code == 422, response.content
    assert field in response.json()["errors"]
    assert not Budget.objects.exists() and not AuditEvent.objects.filter(action__startswith="budget.").exists()


def test_budget_errors(alice_client, bob, state):
    first = alice_client.post("/api/budgets", {"user": bob.pk, "token_limit": 10}, format="json").json()
    duplicate = alice_client.post("/api/budgets", {"user": bob.pk, "token_limit": 20}, format="json")
    assert duplicate.status_code == 409 and duplicate.json()["code"] == "conflict"
    path = f"/api/budgets/{first['id']}"
    assert alice_client.patch(path, {"user": bob.pk}, format="json").status_code == 422  # the scope cannot change
    cleared = alice_client.patch(path, {"token_limit": None}, format="json")
    assert cleared.status_code == 422 and "token_limit" in cleared.json()["errors"]
    assert alice_client.patch(path, b"[", content_type="application/json").status_code == 400
    assert alice_client.post("/api/budgets", "x", content_type="text/plain").status_code == 415
    for missing in ("/api/budgets/999", "/api/budgets/abc"):
        assert alice_client.get(missing).status_code == 404
        assert alice_client.patch(missing, {"note": "x"}, format="json").status_code == 404
        assert alice_client.delete(missing).status_code == 404
    assert actions() == ["budget.create"]


# -- spend in /api/usage -----------------------------------------------------------------------


def usage(**kw) -> UsageRecord:
    values = {
        "request_id": uuid.uuid4().hex,
        "created_at": datetime(2025, 3, 1, 10, tzinfo=UTC),
        "provider_name": "openai",
        "key_fingerprint": "fp-a",
        "key_hint": "sk-…aaaa",
        "model": "gpt-4o",
        "interface": "openai",
        "status": "ok",
        "attempts": 1,
        "tokens_in": 10,
        "tokens_out": 5,
        "latency_ms": 100.0,
    }
    values.update(kw)
    return UsageRecord.objects.create(**values)


def test_usage_spend_and_unpriced(alice_client, alice):
    usage(user=alice, cost=Decimal("0.00125"))
    usage(user=alice, cost=Decimal("0.5"))
    usage(user=alice, model="mystery", cost=None)  # tokens used, price unknown
    usage(
        provider_name="anthropic",
        model="claude",
        status="error",
        error_code="upstream_failed",
        tokens_in=0,
        tokens_out=0,
    )
    body = alice_client.get("/api/usage").json()
    assert body["totals"]["spend"] == "0.50125000" and body["totals"]["unpriced"] == 1
    assert body["totals"]["cost"] == "0.50125000"
    groups = {g["key"]: g for g in body["groups"]}
    assert groups["openai"]["spend"] == "0.50125000" and groups["openai"]["unpriced"] == 1
    assert (
        groups["anthropic"]["spend"] == "0.00000000" and groups["anthropic"]["unpriced"] == 0
    )  # an error used nothing
    by_model = {g["key"]: g for g in alice_client.get("/api/usage", {"group_by": "model"}).json()["groups"]}
    assert by_model["mystery"]["unpriced"] == 1 and by_model["mystery"]["spend"] == "0.00000000"
    assert by_model["gpt-4o"]["spend"] == "0.50125000"


def test_schema_describes_the_new_operations(client):
    schema = client.get("/api/schema?format=json").json()
    operations = {
        ("/api/catalog", "get"): "200",
        ("/api/catalog/overrides", "get"): "200",
        ("/api/catalog/overrides", "post"): "201",
        ("/api/catalog/overrides/{id}", "get"): "200",
        ("/api/catalog/overrides/{id}", "patch"): "200",
        ("/api/catalog/overrides/{id}", "delete"): "204",
        ("/api/budgets", "get"): "200",
        ("/api/budgets", "post"): "201",
        ("/api/budgets/{id}", "get"): "200",
        ("/api/budgets/{id}", "patch"): "200",
        ("/api/budgets/{id}", "delete"): "204",
    }
    for (path, method), success in operations.items():
        responses = schema["paths"][path][method]["responses"]
        assert success in responses and {"401", "403"} <= set(responses), (path, method)
        if "{id}" in path:
            assert "404" in responses
        if method in ("post", "patch"):
            assert {"400", "413", "415", "422"} <= set(responses), (path, method)
    components = schema["components"]["schemas"]
    assert "user's id" in components["BudgetCreateRequest"]["properties"]["user"]["description"]
    assert {"spend", "unpriced"} <= set(components["UsageStats"]["properties"])
