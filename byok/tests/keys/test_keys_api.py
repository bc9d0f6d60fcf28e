"""`/api/keys` and `/api/teams` (staff only), the usage report by gateway key and team, and the admin pages:
the secret is in the 201 answer once and nowhere else afterwards."""

from __future__ import annotations

import pytest
from django.test import Client

from byok import registry
from byok.keys import lookup
from byok.models import AuditEvent, GatewayKey, UsageRecord

pytestmark = pytest.mark.django_db(transaction=True)


@pytest.fixture(autouse=True)
def setup(db):
    lookup.clear_cache()
    registry.register_provider(kind="openai", name="openai", api_key="sk-test-0123456789abcdef", default_model="gpt-4o")


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol")


def test_create_shows_the_key_once_then_only_its_prefix(alice_client, carol):
    body = {
        "name": "ci",
        "user": "carol",
        "models": ["openai/*"],
        "rpm": 60,
        "tpm": 10000,
        "budget": {"spend_usd": "5.50", "period": "day"},
        "expires_at": "2099-01-01T00:00:00Z",
    }
    created = alice_client.post("/api/keys", body, format="json")
    assert created.status_code == 201 and created["Cache-Control"] == "no-store"
    view = created.json()
    key = view.pop("key")
    assert key.startswith(view["prefix"].rstrip("\u2026")) and len(key) == 54
    limits = {name: view["budget"][name] for name in ("tokens", "spend_usd", "period")}
    assert limits == {"tokens": None, "spend_usd": "5.5000", "period": "day"}
    assert (view["budget"]["used_spend"], view["budget"]["remaining_spend"]) == (0, 5.5)  # this period's use
    assert (view["user"], view["models"], view["rpm"], view["tpm"]) == ("carol", ["openai/*"], 60, 10000)
    assert created["Location"].endswith(f"/api/keys/{view['id']}")
    later = [
        alice_client.get("/api/keys"),
        alice_client.get(f"/api/keys/{view['id']}"),
        alice_client.patch(f"/api/keys/{view['id']}", {"name": "ci-2", "rpm": None}, format="json"),
        alice_client.get("/api/audit-events"),
        alice_client.get("/api/usage?group_by=gateway_key"),
    ]
    for response in later:
        assert response.status_code == 200
        assert key[5:13] not in response.content.decode() and key not in response.content.decode()
    assert later[2].json()["name"] == "ci-2" and later[2].json()["rpm"] is None


def test_delete_revokes_and_the_next_request_is_401(alice_client, carol):
    key = alice_client.post("/api/keys", {"name": "k", "user": carol.pk}, format="json").json()
    chat = Client(HTTP_AUTHORIZATION=f"Bearer {key['key']}")
    assert chat.get("/v1/models").status_code == 200
    assert alice_client.delete(f"/api/keys/{key['id']}").status_code == 204
    refused = chat.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "key_revoked"
    assert alice_client.get(f"/api/keys/{key['id']}").json()["revoked"] is True
    assert alice_client.delete(f"/api/keys/{key['id']}").status_code == 204  # again: no-op
    assert AuditEvent.objects.filter(action="gateway_key.revoke").count() == 1
    assert alice_client.patch(f"/api/keys/{key['id']}", {"name": "x"}, format="json").status_code == 409


def test_bad_input_is_422_naming_the_field(alice_client, carol):
    cases = [
        ({"name": "k", "user": "nobody"}, "user"),
        ({"name": "k", "team": "nope"}, "team"),
        ({"name": "k", "user": "carol", "models": ["mistral/*"]}, "models"),
        ({"name": "k", "user": "carol", "rpm": "ten"}, "rpm"),
        ({"name": "k", "user": "carol", "budget": {"period": "day"}}, "budget"),
        ({"name": "k", "user": "carol", "expires_at": "tomorrow"}, "expires_at"),
        ({"name": "k", "user": True}, "user"),
        ({"user": "carol"}, "name"),
    ]
    for body, field in cases:
        response = alice_client.post("/api/keys", body, format="json")
        assert response.status_code == 422, body
        errors = response.json()["errors"]
        assert response.json()["code"] == "validation_error" and field in {e.split(".")[0] for e in errors}, errors
    assert alice_client.get("/api/keys/999").status_code == 404
    assert not GatewayKey.objects.exists()


def test_only_staff(bob_client, carol):
    assert bob_client.get("/api/keys").status_code == 403
    assert bob_client.post("/api/teams", {"name": "t"}, format="json").status_code == 403
    assert Client().get("/api/keys").status_code == 401


def test_teams_crud_and_team_keys(alice_client, carol, bob):
    team = alice_client.post(
        "/api/teams", {"name": "apps", "members": ["carol"], "models": ["openai/*"]}, format="json"
    )
    assert team.status_code == 201 and team.json()["members"] == ["carol"]
    tid = team.json()["id"]
    assert alice_client.post("/api/teams", {"name": "apps"}, format="json").status_code == 409
    assert alice_client.post("/api/teams", {"name": "x", "members": ["ghost"]}, format="json").status_code == 422
    key = alice_client.post("/api/keys", {"name": "k", "user": "carol", "team": "apps"}, format="json")
    assert key.status_code == 201 and key.json()["team"] == "apps"
    not_member = alice_client.post("/api/keys", {"name": "k", "user": "bob", "team": tid}, format="json")
    assert not_member.status_code == 422 and "user" in not_member.json()["errors"]
    owned_by_staff = alice_client.post("/api/keys", {"name": "k2", "team": tid}, format="json")
    assert owned_by_staff.status_code == 201 and owned_by_staff.json()["user"] == "alice"
    changed = alice_client.patch(f"/api/teams/{tid}", {"members": ["carol", "bob"], "rpm": 5}, format="json")
    assert changed.json()["members"] == ["bob", "carol"] and changed.json()["rpm"] == 5
    assert alice_client.delete(f"/api/teams/{tid}").status_code == 409  # keys left
    for k in (key.json(), owned_by_staff.json()):
        alice_client.delete(f"/api/keys/{k['id']}")
    assert alice_client.delete(f"/api/teams/{tid}").status_code == 204
    assert alice_client.get(f"/api/teams/{tid}").status_code == 404
    actions = list(AuditEvent.objects.filter(action__startswith="team.").values_list("action", flat=True))
    assert sorted(actions) == ["team.create", "team.delete", "team.update"]


def test_usage_groups_by_gateway_key_and_team(alice_client, carol):
    from datetime import UTC, datetime

    from byok.keys import store

    team = store.create_team(name="apps", members=["carol"])
    row, _ = store.create_key(name="k", user="carol", team=team.pk)
    for i, (key, team_id) in enumerate([(row, team.pk), (row, team.pk), (None, None)]):
        UsageRecord.objects.create(
            created_at=datetime.now(UTC),
            request_id=f"r{i}",
            status="ok",
            gateway_key=key,
            team_id=team_id,
            tokens_in=10,
        )
    by_key = alice_client.get("/api/usage?group_by=gateway_key").json()["groups"]
    assert [(g["key"], g.get("name"), g["requests"]) for g in by_key] == [(row.prefix, "k", 2), (None, None, 1)]
    by_team = alice_client.get("/api/usage?group_by=team").json()["groups"]
    assert [(g["key"], g["requests"]) for g in by_team] == [("apps", 2), (None, 1)]
    only = alice_client.get(f"/api/usage?group_by=user&gateway_key={row.pk}").json()
    assert only["totals"]["requests"] == 2


def test_the_admin_never_shows_a_key_again(alice, carol):
    from rest_framework.authtoken.models import Token

    browser = Client()
    browser.force_login(alice)
    added = browser.post(
        "/admin/byok/gatewaykey/add/",
        {"name": "from-admin", "user": carol.pk, "models": "[]", "budget_period": "month"},
        follow=True,
    )
    assert added.status_code == 200
    key = GatewayKey.objects.get(name="from-admin")
    page = added.content.decode()
    shown = page[page.index("byok_" + key.lookup) :][:54]
    assert len(shown) == 54 and GatewayKey.objects.filter(
        digest=__import__("hashlib").sha256(shown.encode()).hexdigest()
    )
    assert AuditEvent.objects.filter(action="gateway_key.create", actor="alice").count() == 1
    for url in ("/admin/byok/gatewaykey/", f"/admin/byok/gatewaykey/{key.pk}/change/"):
        body = browser.get(url).content.decode()
        assert shown[5:13] not in body and key.digest not in body
    token = Token.objects.create(user=carol)
    tokens_page = browser.get("/admin/authtoken/tokenproxy/").content.decode()
    assert token.plaintext not in tokens_page and token.key not in tokens_page and "carol" in tokens_page


def test_the_schema_documents_keys_and_teams(alice_client):
    schema = alice_client.get("/api/schema", HTTP_ACCEPT="application/json").json()
    paths = schema["paths"]
    assert set(paths["/api/keys"]) >= {"get", "post"} and set(paths["/api/keys/{id}"]) >= {"get", "patch", "delete"}
    assert set(paths["/api/teams"]) >= {"get", "post"} and set(paths["/api/teams/{id}"]) >= {"get", "patch", "delete"}
    created = paths["/api/keys"]["post"]["responses"]["201"]["content"]["application/json"]["schema"]["$ref"]
    assert "key" in schema["components"]["schemas"][created.rsplit("/", 1)[1]]["properties"]
    assert "gateway_key" in str(paths["/api/usage"]["get"]["parameters"])


def test_user_changes_in_the_admin_are_audited_and_refuse_an_inactive_owners_keys(alice, carol):
    from byok.keys import store

    _, key = store.create_key(name="k", user="carol")
    chat = Client(HTTP_AUTHORIZATION=f"Bearer {key}")
    assert chat.get("/v1/models").status_code == 200
    browser = Client()
    browser.force_login(alice)
    page = browser.get(f"/admin/auth/user/{carol.pk}/change/")
    form = page.context["adminform"].form
    data = {
        k: v for k, v in form.initial.items() if v is not None and k not in ("password", "groups", "user_permissions")
    }
    data.update({"username": "carol", "is_active": "", "date_joined_0": "2026-01-01", "date_joined_1": "00:00:00"})
    data.pop("date_joined", None)
    data.pop("last_login", None)
    changed = browser.post(f"/admin/auth/user/{carol.pk}/change/", data)
    assert changed.status_code == 302, changed.content.decode()[:2000]
    event = AuditEvent.objects.get(action="user.update")
    assert (event.actor, event.target_repr, "is_active" in event.details["fields"]) == ("alice", "carol", True)
    refused = chat.get("/v1/models")
    assert refused.status_code == 401 and refused.json()["error"]["code"] == "invalid_key"


def test_teams_and_api_tokens_in_the_admin(alice, carol):
    from rest_framework.authtoken.models import Token

    browser = Client()
    browser.force_login(alice)
    added = browser.post(
        "/admin/byok/team/add/",
        {"name": "ops", "members": [carol.pk], "models": '["openai/*"]', "budget_period": "day", "rpm": "5"},
    )
    assert added.status_code == 302, added.content.decode()[:3000]
    bad = browser.post("/admin/byok/team/add/", {"name": "x", "models": '["nowhere/*"]', "budget_period": "day"})
    assert bad.status_code == 200 and "can never match" in bad.content.decode()
    from byok.models import Team

    team = Team.objects.get(name="ops")
    assert list(team.members.all()) == [carol] and team.rpm == 5
    assert browser.post(f"/admin/byok/team/{team.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Team.objects.exists()

    issued = browser.post("/admin/authtoken/tokenproxy/add/", {"user": carol.pk}, follow=True)
    page = issued.content.decode()
    plain = page[page.index("copy it now): ") + len("copy it now): ") :][:40]
    api = Client(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/v1/models").status_code == 200
    assert browser.post(f"/admin/authtoken/tokenproxy/{carol.pk}/delete/", {"post": "yes"}).status_code == 302
    assert not Token.objects.filter(user=carol).exists()
    assert api.get("/v1/models").status_code == 401
    actions = set(AuditEvent.objects.values_list("action", flat=True))
    assert {"team.create", "team.delete", "token.create", "token.revoke"} <= actions
