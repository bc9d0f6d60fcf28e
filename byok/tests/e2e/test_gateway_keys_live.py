"""Gateway keys against live daphne processes and the fake provider, judged by the official openai SDK.

- the allow-list: an allowed model answers 200, another 403 `model_not_allowed` with no upstream call,
  `/v1/models` lists only what the key may use;
- expiry: the same key answers 401 `key_expired` once its time has passed;
- revocation across processes (PostgreSQL + Redis): a key revoked through process A is refused by the very
  next request through process B, which had it cached, and nothing more reaches the provider.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import openai
import pytest

from byok.tests.e2e import Cluster, cluster, fake_fp, needs_shared_state, records, register, uid

MESSAGES = [{"role": "user", "content": "Hello?"}]


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def _provider(live: Cluster, prefix: str) -> tuple[str, str]:
    name, secret = f"{prefix}-{uid()}", f"sk-e2e-{uid()}-gateway-0000"
    register(live.a, provider="openai", name=name, base_url=f"{live.fake.url}/v1", model="gpt-4o-mini", api_key=secret)
    return name, secret


def _new_key(server, **body) -> dict:
    with server.admin() as admin:
        response = admin.post("/api/keys", json={"user": "live-admin", **body})
    assert response.status_code == 201, response.text
    return response.json()


def _sdk(server, key: str) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=key, max_retries=0, timeout=30)


@pytest.mark.live
def test_the_allow_list_through_the_openai_sdk(live):
    allowed, allowed_secret = _provider(live, "e2e-gk-yes")
    other, other_secret = _provider(live, "e2e-gk-no")
    key = _new_key(live.a, name="sdk", models=[f"{allowed}/*"])
    sdk = _sdk(live.a, key["key"])

    answer = sdk.chat.completions.create(model=f"{allowed}/gpt-4o-mini", messages=MESSAGES)
    assert answer.choices[0].message.content and answer.model == f"{allowed}/gpt-4o-mini"
    with pytest.raises(openai.PermissionDeniedError) as refused:
        sdk.chat.completions.create(model=f"{other}/gpt-4o-mini", messages=MESSAGES)
    assert refused.value.status_code == 403 and refused.value.code == "model_not_allowed"
    with pytest.raises(openai.PermissionDeniedError):  # streaming too: refused before any byte
        sdk.chat.completions.create(model=f"{other}/gpt-4o-mini", messages=MESSAGES, stream=True)
    assert records(live.fake, key_fp=fake_fp(other_secret)) == []  # no upstream call
    assert len(records(live.fake, key_fp=fake_fp(allowed_secret))) == 1

    listed = {m.id for m in sdk.models.list()}
    assert f"{allowed}/gpt-4o-mini" in listed and not [m for m in listed if m.startswith(other)]
    with httpx.Client(timeout=30) as client:  # the staff token sees every provider
        everything = client.get(live.a.url + "/v1/models", headers={"Authorization": f"Bearer {live.a.admin_token}"})
    assert f"{other}/gpt-4o-mini" in {m["id"] for m in everything.json()["data"]}


@pytest.mark.live
def test_a_key_expires_on_time(live):
    name, _ = _provider(live, "e2e-gk-exp")
    expires = datetime.now(UTC) + timedelta(seconds=3)
    key = _new_key(live.a, name="short", expires_at=expires.isoformat())
    sdk = _sdk(live.a, key["key"])
    assert sdk.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES).choices
    time.sleep(max(0.0, (expires - datetime.now(UTC)).total_seconds()) + 0.2)
    with pytest.raises(openai.AuthenticationError) as refused:
        sdk.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES)
    assert refused.value.code == "key_expired"


@pytest.mark.live
@needs_shared_state[0]
@needs_shared_state[1]
def test_a_key_revoked_through_one_process_is_refused_by_the_next_request_through_another(live):
    assert len(live.servers) == 2 and live.a.url != live.b.url
    name, secret = _provider(live, "e2e-gk-rev")
    key = _new_key(live.a, name="revoke-me")
    through_b = _sdk(live.b, key["key"])
    for _ in range(3):  # B has the key cached now
        assert through_b.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES).choices
    served = len(records(live.fake, key_fp=fake_fp(secret)))
    with live.a.admin() as admin:
        assert admin.delete(f"/api/keys/{key['id']}").status_code == 204
    with pytest.raises(openai.AuthenticationError) as refused:  # the very next request, through the other process
        through_b.chat.completions.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES)
    assert refused.value.status_code == 401 and refused.value.code == "key_revoked"
    with pytest.raises(openai.AuthenticationError):
        _sdk(live.a, key["key"]).models.list()
    assert len(records(live.fake, key_fp=fake_fp(secret))) == served  # nothing more went upstream
