"""Gateway keys in process: the secret's shape and storage, the 401 codes, the allow-list before any upstream
call, `/v1/models` filtered, usage carrying the key and team, revocation and expiry at once, audit rows."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import respx
from asgiref.sync import sync_to_async
from django.db import connection
from django.test import AsyncClient

from byok import registry
from byok.api import chat_entry
from byok.audit import Actor
from byok.gateway.handler import BYOKHandler
from byok.keys import lookup, store
from byok.keys.secret import new_key, parse
from byok.models import AuditEvent, GatewayKey, UsageRecord
from byok.state import MemoryStateBackend, MemoryStore

pytestmark = pytest.mark.django_db(transaction=True)

OPENAI = "https://api.openai.com/v1/chat/completions"
STAFF = Actor("alice", "192.0.2.7")
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o-mini",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi!"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 9, "completion_tokens": 3, "total_tokens": 12},
}


@pytest.fixture(autouse=True)
def fresh_cache(monkeypatch):
    from byok.gateway import usage

    monkeypatch.setattr(usage, "_stamped", {})  # last_used_at is written at most once a minute per key id
    lookup.clear_cache()
    yield
    lookup.clear_cache()


@pytest.fixture
def handler(monkeypatch):
    store_ = MemoryStore()

    async def no_sleep(seconds):
        return None

    h = BYOKHandler(state_factory=lambda: MemoryStateBackend(store=store_), sleep=no_sleep, rand=lambda: 0.5)
    monkeypatch.setattr(chat_entry, "get_handler", lambda: h)
    return h


@pytest.fixture
def providers(db):
    registry.register_provider(
        kind="openai", name="openai", api_key="sk-test-0123456789abcdef", default_model="gpt-4o-mini"
    )
    registry.register_provider(
        kind="anthropic",
        name="anthropic",
        api_key="sk-ant-test-0123456789abcdef",
        default_model="claude-3-5-haiku-latest",
    )


@pytest.fixture
def carol(django_user_model):
    return django_user_model.objects.create_user("carol")


def make_key(user, **values):
    values.setdefault("name", "ci")
    return store.create_key(actor=STAFF, user=user.username, **values)


def client(key: str, header: str = "authorization") -> AsyncClient:
    if header == "authorization":
        return AsyncClient(AUTHORIZATION=f"Bearer {key}")
    return AsyncClient(X_API_KEY=key)


def chat(model: str) -> dict:
    return {"model": model, "messages": [{"role": "user", "content": "Hi"}]}


# -- the secret -------------------------------------------------------------------------------------


def test_a_key_has_256_random_bits_and_parses_to_its_lookup_and_digest():
    key, lookup_id, digest = new_key()
    assert key.startswith("byok_" + lookup_id) and len(key) == 5 + 6 + 43
    assert parse(key) == (lookup_id, digest)
    assert parse(key[:-1]) is None and parse("byok_") is None and parse(key + "x") is None


def _all_column_text() -> str:
    """Every text value of every table, as the database holds it."""
    out: list[str] = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names():
            cursor.execute(f'SELECT * FROM "{table}"')
            out.extend(str(v) for row in cursor.fetchall() for v in row if v is not None)
    return "\n".join(out)


def test_raw_columns_hold_no_key_nor_any_8_character_slice_of_one(providers, carol):
    team = store.create_team(actor=STAFF, name="research", members=["carol"])
    keys = [make_key(carol)[1], make_key(carol, team=team.pk, models=["openai/*"])[1]]
    store.update_key(GatewayKey.objects.first().pk, {"name": "renamed"}, actor=STAFF)
    store.revoke_key(GatewayKey.objects.last().pk, actor=STAFF)
    text = _all_column_text()
    for key in keys:
        slices = {key[i : i + 8] for i in range(len(key) - 7)}
        assert not [s for s in slices if s in text], "a slice of a gateway key is stored"


def test_drf_tokens_are_stored_hashed_and_still_work(alice):
    from rest_framework.authtoken.models import Token
    from rest_framework.test import APIClient

    from byok.keys.tokens import issue_token

    plain = issue_token(alice, actor=STAFF)
    stored = Token.objects.get(user=alice).key
    assert stored != plain and plain[:8] not in stored and plain not in _all_column_text()
    api = APIClient()
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {plain}")
    assert api.get("/api/providers").status_code == 200
    api.credentials(HTTP_AUTHORIZATION=f"Bearer {stored}")  # the stored form is not a credential
    assert api.get("/api/providers").status_code == 401
    assert AuditEvent.objects.filter(action="token.create", actor="alice").count() == 1


# -- 401s -------------------------------------------------------------------------------------------


def _bad(body: dict) -> tuple[str, str]:
    return body["error"]["code"], body["error"]["message"]


async def test_malformed_unknown_revoked_and_expired_keys_are_401_with_their_code(providers, carol, handler):
    key_row, key = await sync_to_async(make_key)(carol)
    _, expired = await sync_to_async(make_key)(carol, expires_at=(datetime.now(UTC) - timedelta(seconds=1)).isoformat())
    unknown = new_key()[0]
    cases = {"byok_short": "invalid_key", unknown: "invalid_key", expired: "key_expired"}
    for text, code in cases.items():
        response = await client(text).post("/v1/chat/completions", chat("openai/gpt-4o-mini"), "application/json")
        assert response.status_code == 401 and response.json()["error"]["code"] == code, text
        response = await client(text).post("/api/chat", chat("openai/gpt-4o-mini"), "application/json")
        assert response.status_code == 401 and response.json()["code"] == code, response.content
    assert (await client(key).get("/v1/models")).status_code == 200
    await sync_to_async(store.revoke_key)(key_row.pk, actor=STAFF)
    response = await client(key).get("/v1/models")
    assert response.status_code == 401 and response.json()["error"]["code"] == "key_revoked"
    response = await client(key, "x-api-key").get("/v1/models")  # an Anthropic client: Anthropic's error shape
    assert response.status_code == 401 and "revoked" in response.json()["error"]["message"]


async def test_a_key_in_the_query_string_is_ignored(providers, carol, handler):
    _, key = await sync_to_async(make_key)(carol)
    response = await AsyncClient().get(f"/v1/models?api_key={key}&key={key}")
    assert response.status_code == 401 and response.json()["error"]["code"] == "invalid_api_key"


# -- the allow-list ---------------------------------------------------------------------------------


@respx.mock
async def test_the_allow_list_decides_before_any_upstream_call_and_filters_models(providers, carol, handler):
    route = respx.post(OPENAI).respond(200, json=ANSWER)
    _, key = await sync_to_async(make_key)(carol, models=["openai/gpt-4o*"])
    api = client(key)
    ok = await api.post("/v1/chat/completions", chat("openai/gpt-4o-mini"), "application/json")
    assert ok.status_code == 200 and route.call_count == 1
    for model in ("anthropic/claude-3-5-haiku-latest", "openai/o1"):
        no = await api.post("/v1/chat/completions", chat(model), "application/json")
        assert no.status_code == 403 and no.json()["error"]["code"] == "model_not_allowed"
    no = await api.post("/api/chat", chat("anthropic/claude-3-5-haiku-latest"), "application/json")
    assert no.status_code == 403 and no.json()["code"] == "model_not_allowed"
    assert route.call_count == 1 and not respx.calls.last.request.url.host.startswith("api.anthropic")
    listed = (await api.get("/v1/models")).json()["data"]
    assert {m["id"] for m in listed} == {"openai/gpt-4o-mini", "openai/gpt-4o", "gpt-4o-mini"}  # + the catalog
    assert (await api.get("/v1/models/anthropic/claude-3-5-haiku-latest")).status_code == 404


@respx.mock
async def test_the_narrower_of_key_and_team_wins_and_usage_names_key_and_team(providers, carol, handler):
    respx.post(OPENAI).respond(200, json=ANSWER)
    team = await sync_to_async(store.create_team)(actor=STAFF, name="apps", members=["carol"], models=["openai/*"])
    row, key = await sync_to_async(make_key)(carol, team="apps", models=["*-mini", "anthropic/*"])
    api = client(key)
    assert (await api.post("/v1/chat/completions", chat("openai/gpt-4o-mini"), "application/json")).status_code == 200
    for model in ("openai/gpt-4o", "anthropic/claude-3-5-haiku-latest"):  # the team's, the key's list refuses
        response = await api.post("/v1/chat/completions", chat(model), "application/json")
        assert response.status_code == 403, model
    await handler.flush_usage()
    record = await UsageRecord.objects.aget(status="ok")
    assert (record.gateway_key_id, record.team_id, record.user_id) == (row.pk, team.pk, carol.pk)
    await row.arefresh_from_db()
    assert row.last_used_at == record.created_at  # stamped by the usage writer, off the request path


# -- management through the store: audit and validation ----------------------------------------------


def test_every_change_is_audited_once_with_actor_and_address_and_never_the_secret(providers, carol):
    team = store.create_team(actor=STAFF, name="t1", members=["carol"])
    row, key = make_key(carol, team=team.pk)
    store.update_key(row.pk, {"rpm": 10, "budget": {"spend_usd": "5", "period": "day"}}, actor=STAFF)
    store.revoke_key(row.pk, actor=STAFF)
    store.revoke_key(row.pk, actor=STAFF)  # a no-op: no second event
    store.update_team(team.pk, {"models": ["openai/*"]}, actor=STAFF)
    store.delete_team(team.pk, actor=STAFF)
    mine = AuditEvent.objects.exclude(action__startswith="provider.").order_by("id")
    events = list(mine.values_list("action", "actor", "source_address"))
    assert [e[0] for e in events] == [
        "team.create",
        "gateway_key.create",
        "gateway_key.update",
        "gateway_key.revoke",
        "team.update",
        "team.delete",
    ]
    assert {e[1:] for e in events} == {("alice", "192.0.2.7")}
    dumped = json.dumps(list(AuditEvent.objects.values()), default=str)
    assert key[5:13] not in dumped and key[-12:] not in dumped


def test_bad_input_is_422_naming_the_field(providers, carol):
    from byok.exceptions import InvalidConfigError

    cases = [
        ({"user": "nobody"}, "user"),
        ({"user": "carol", "team": "nope"}, "team"),
        ({"user": "carol", "models": ["mistral/*"]}, "models"),
        ({"user": "carol", "models": [""]}, "models"),
        ({"user": "carol", "rpm": 0}, "rpm"),
        ({"user": "carol", "budget": {"period": "week", "tokens": 5}}, "budget.period"),
        ({"user": "carol", "expires_at": "soon"}, "expires_at"),
        ({"user": "carol", "secret": "x"}, "secret"),
    ]
    for values, field in cases:
        with pytest.raises(InvalidConfigError) as caught:
            store.create_key(actor=STAFF, name="k", **values)
        assert field in caught.value.errors, (values, caught.value.errors)
    team = store.create_team(actor=STAFF, name="t2")
    with pytest.raises(InvalidConfigError) as caught:  # carol is not a member
        store.create_key(actor=STAFF, name="k", user="carol", team=team.pk)
    assert "user" in caught.value.errors
    assert not GatewayKey.objects.exists()


# -- the cached lookup ------------------------------------------------------------------------------


async def test_a_cached_key_expires_on_time_without_a_reload(providers, carol, monkeypatch):
    import time as real_time

    from byok.keys.grant import KeyRejected

    expires = datetime.now(UTC) + timedelta(seconds=60)
    _, key = await sync_to_async(make_key)(carol, expires_at=expires.isoformat())
    user, grant = await lookup.verify(key)
    assert user.username == "carol" and grant.expires_at == expires.timestamp()
    later = real_time.time() + 120
    monkeypatch.setattr(lookup.time, "time", lambda: later)
    with pytest.raises(KeyRejected) as refused:
        await lookup.verify(key)
    assert refused.value.code == "key_expired"


@pytest.mark.redis
async def test_a_change_announced_by_another_process_is_seen_by_the_next_lookup(providers, carol, settings):
    """Another process's revoke reaches this one through the shared counter alone (no local signal here)."""
    import redis.asyncio as aioredis

    from byok.keys.grant import KeyRejected
    from byok.tests.conftest import test_redis_url

    settings.REDIS_URL = test_redis_url()
    row, key = await sync_to_async(make_key)(carol)
    await lookup.verify(key)  # cached at the current counter
    queries = []
    real_load = lookup._load
    lookup._load = lambda *a: queries.append(a) or real_load(*a)
    try:
        await lookup.verify(key)
        assert queries == []  # a hit: no database
        await GatewayKey.objects.filter(pk=row.pk).aupdate(revoked_at=datetime.now(UTC))  # as another process does
        await lookup.verify(key)  # not announced yet: still the cached grant
        client = aioredis.Redis.from_url(settings.REDIS_URL)
        await client.incr(settings.BYOK["STATE_PREFIX"] + lookup.VERSION_KEY)  # ...then it announces
        await client.aclose()
        with pytest.raises(KeyRejected) as refused:
            await lookup.verify(key)
        assert refused.value.code == "key_revoked" and len(queries) == 1
    finally:
        lookup._load = real_load
