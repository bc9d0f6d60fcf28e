"""The management API under a real daphne process, against the fake provider: the ASGI path end to end."""

from __future__ import annotations

import httpx
import pytest

from byok.tests.conftest import CANARY
from byok.tests.live import drop_live_env, live_env, start_daphne, start_fake_provider


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("mgmt-live")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    # In-process state: cooldowns that other runs left in a shared Redis for the same key ids must not apply.
    env = {k: v for k, v in env.items() if k != "REDIS_URL"}
    server = start_daphne(env, tmp)
    try:
        yield server, fake
    finally:
        server.stop()
        fake.stop()
        drop_live_env(env)


def test_register_test_and_report_usage_over_daphne(live):
    server, fake = live
    with server.admin() as admin:
        created = admin.post(
            "/api/providers/register",
            json={
                "provider": "openai",
                "name": "fake-openai",
                "base_url": fake.url + "/v1",
                "model": "gpt-4o-mini",
                "api_key": CANARY,
            },
        )
        assert created.status_code == 201, created.text
        pid = created.json()["id"]
        tested = admin.post(f"/api/providers/{pid}/test")
        assert tested.status_code == 200, tested.text
        assert tested.json()["ok"] is True and tested.json()["error"] is None, tested.text  # the fake provider answered
        usage = admin.get("/api/usage", params={"group_by": "provider", "interface": "test"})
        assert usage.status_code == 200
        assert usage.json()["totals"]["requests"] >= 1
        events = admin.get("/api/audit-events", params={"provider": "fake-openai"}).json()
        assert [e["action"] for e in events["results"]] == ["provider.create"]
        responses = [created, tested, usage, admin.get("/api/providers"), admin.get(f"/api/providers/{pid}")]
    for response in responses:
        assert CANARY not in response.text and all(CANARY not in v for v in response.headers.values())


def test_errors_over_daphne_are_json(live):
    server, _ = live
    anonymous = httpx.get(server.url + "/api/providers")
    assert anonymous.status_code == 401 and anonymous.headers["www-authenticate"].startswith("Bearer")
    assert anonymous.json()["code"] == "not_authenticated"
    with server.admin() as admin:
        too_big = admin.post(
            "/api/providers/register", content=b"x" * (3 * 1024 * 1024), headers={"content-type": "application/json"}
        )
        assert too_big.status_code == 413 and too_big.json()["code"] == "payload_too_large"
        not_json = admin.post("/api/providers/register", content=b"{", headers={"content-type": "application/json"})
        assert not_json.status_code == 400 and not_json.json()["code"] == "parse_error"
        invalid = admin.post("/api/providers/register", json={"provider": "nope"})
        assert invalid.status_code == 422 and "provider" in invalid.json()["errors"]
        assert admin.get("/api/providers/abc").status_code == 404
