"""Two daphne processes behave as one: rate limits in total, and key changes seen within a second.

Process A and process B share PostgreSQL and Redis (CI's second run); the
fake provider's recorder, which fingerprints every key it receives, tells
which key served each request and when.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from byok.tests.e2e import Cluster, cluster, fake_fp, needs_shared_state, records, register, uid
from byok.tests.live import start_daphne

pytestmark = needs_shared_state

MESSAGES = [{"role": "user", "content": "Hello?"}]
PROPAGATION_S = 1.0  # the contract: a change in one process is seen by the others within a second


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    live = cluster(request, tmp_path_factory)
    assert len(live.servers) == 2 and live.a.url != live.b.url
    return live


def _chat(server, model: str) -> httpx.Response:
    with httpx.Client(timeout=30) as client:
        return client.post(
            server.url + "/v1/chat/completions",
            json={"model": model, "messages": MESSAGES},
            headers={"Authorization": f"Bearer {server.admin_token}"},
        )


def _spread(live: Cluster, model: str, count: int) -> list[httpx.Response]:
    """`count` concurrent requests, every other one to each process."""
    with ThreadPoolExecutor(max_workers=10) as pool:
        return list(pool.map(lambda i: _chat(live.servers[i % 2], model), range(count)))


def _keys(server, provider_id: int) -> dict[str, dict]:
    with server.admin() as admin:
        return {k["fingerprint"][:12]: k for k in admin.get(f"/api/providers/{provider_id}").json()["keys"]}


def test_a_per_key_rpm_limit_of_10_serves_exactly_10_requests_across_both_processes(live):
    n = uid()
    name, limited, spare = f"e2e-rpm-{n}", f"sk-e2e-{n}-limited-0000", f"sk-e2e-{n}-spare-0000"
    provider = register(
        live.a,
        provider="openai",
        name=name,
        base_url=f"{live.fake.url}/v1",
        model="gpt-4o-mini",
        api_key=limited,
        rpm=10,
        max_retries=0,
    )
    with live.b.admin() as admin:  # the second key goes in through the other process
        assert admin.post(f"/api/providers/{provider['id']}/keys", json={"api_key": spare}).status_code == 201
    time.sleep(PROPAGATION_S)

    responses = _spread(live, f"{name}/gpt-4o-mini", 30)

    assert [r.status_code for r in responses] == [200] * 30
    assert len(records(live.fake, key_fp=fake_fp(limited))) == 10
    assert len(records(live.fake, key_fp=fake_fp(spare))) == 20


def test_with_a_single_rpm_limited_key_the_rest_get_429_with_retry_after(live):
    n = uid()
    name, key = f"e2e-rpm1-{n}", f"sk-e2e-{n}-only-0000"
    register(
        live.a, provider="openai", name=name, base_url=f"{live.fake.url}/v1", model="gpt-4o-mini", api_key=key, rpm=10
    )
    time.sleep(PROPAGATION_S)  # both processes know the provider: this test is about the limit, not propagation

    responses = _spread(live, f"{name}/gpt-4o-mini", 30)

    statuses = sorted(r.status_code for r in responses)
    assert statuses == [200] * 10 + [429] * 20
    assert all(int(r.headers["retry-after"]) >= 1 for r in responses if r.status_code == 429)
    assert len(records(live.fake, key_fp=fake_fp(key))) == 10


def _hammer(server, model: str, seconds: float) -> list[tuple[float, int]]:
    """Requests to `server` one after another for `seconds` (at most 60): (sent at, status)."""
    out: list[tuple[float, int]] = []
    end = time.time() + seconds
    while time.time() < end and len(out) < 60:
        sent = time.time()
        out.append((sent, _chat(server, model).status_code))
        time.sleep(0.03)
    return out


def test_a_key_revoked_through_one_process_is_not_used_by_the_other_a_second_later(live):
    n = uid()
    name, key = f"e2e-revoke-{n}", f"sk-e2e-{n}-revoked-0000"
    provider = register(
        live.a, provider="openai", name=name, base_url=f"{live.fake.url}/v1", model="gpt-4o-mini", api_key=key
    )
    assert _chat(live.b, f"{name}/gpt-4o-mini").status_code == 200  # B has the key cached and in use
    key_id = _keys(live.a, provider["id"])[fake_fp(key)]["id"]

    with live.a.admin() as admin:
        assert admin.delete(f"/api/providers/{provider['id']}/keys/{key_id}").status_code == 200
    revoked_at = time.time()
    seen = _hammer(live.b, f"{name}/gpt-4o-mini", PROPAGATION_S + 0.8)

    late = [status for sent, status in seen if sent > revoked_at + PROPAGATION_S]
    assert late and all(status == 503 for status in late)  # no usable key left
    used_late = [r for r in records(live.fake, key_fp=fake_fp(key)) if r["time"] > revoked_at + PROPAGATION_S]
    assert used_late == []


def test_once_a_revoke_answered_no_process_sends_the_revoked_key_upstream(live, tmp_path):
    """Not even one whose cached configuration still lists the key: the revoke does not wait for reloads."""
    n = uid()
    name, key, spare = f"e2e-revoke-now-{n}", f"sk-e2e-{n}-revoked-0000", f"sk-e2e-{n}-spare-0000"
    # A third process that looks at the shared config version only every 30 s: its snapshot stays stale.
    slow = start_daphne(live.env, tmp_path, extra_env={"BYOK_CONFIG_POLL_S": "30"})
    try:
        provider = register(
            live.a, provider="openai", name=name, base_url=f"{live.fake.url}/v1", model="gpt-4o-mini", api_key=key
        )
        with live.a.admin() as admin:
            assert admin.post(f"/api/providers/{provider['id']}/keys", json={"api_key": spare}).status_code == 201
        key_id = _keys(live.a, provider["id"])[fake_fp(key)]["id"]
        # The slow process loads the configuration now (its first request) and uses both keys.
        assert [_chat(slow, f"{name}/gpt-4o-mini").status_code for _ in range(4)] == [200] * 4
        assert records(live.fake, key_fp=fake_fp(key)) and records(live.fake, key_fp=fake_fp(spare))

        with live.a.admin() as admin:
            assert admin.delete(f"/api/providers/{provider['id']}/keys/{key_id}").status_code == 200
        answered_at = time.time()
        with ThreadPoolExecutor(max_workers=10) as pool:  # at once, through the other processes
            burst = list(pool.map(lambda i: _chat((slow, live.b)[i % 2], f"{name}/gpt-4o-mini"), range(30)))
    finally:
        slow.stop()

    assert [r.status_code for r in burst] == [200] * 30  # served by the spare key
    assert [r for r in records(live.fake, key_fp=fake_fp(key)) if r["time"] >= answered_at] == []
    assert len([r for r in records(live.fake, key_fp=fake_fp(spare)) if r["time"] >= answered_at]) == 30


def test_a_key_rotated_through_one_process_is_replaced_in_the_other_within_a_second(live):
    n = uid()
    name, old, new = f"e2e-rotate-{n}", f"sk-e2e-{n}-old-0000", f"sk-e2e-{n}-new-0000"
    provider = register(
        live.a, provider="openai", name=name, base_url=f"{live.fake.url}/v1", model="gpt-4o-mini", api_key=old
    )
    assert _chat(live.b, f"{name}/gpt-4o-mini").status_code == 200

    with live.a.admin() as admin:
        assert admin.post(f"/api/providers/{provider['id']}/rotate-key", json={"api_key": new}).status_code == 200
    rotated_at = time.time()
    seen = _hammer(live.b, f"{name}/gpt-4o-mini", PROPAGATION_S + 0.8)

    assert [status for _, status in seen] == [200] * len(seen)  # a rotation never leaves the pool empty
    assert [r for r in records(live.fake, key_fp=fake_fp(old)) if r["time"] > rotated_at + PROPAGATION_S] == []
    assert [r for r in records(live.fake, key_fp=fake_fp(new)) if r["time"] > rotated_at + PROPAGATION_S]
    keys = _keys(live.b, provider["id"])
    assert (keys[fake_fp(old)]["status"], keys[fake_fp(new)]["status"]) == ("retired", "active")
