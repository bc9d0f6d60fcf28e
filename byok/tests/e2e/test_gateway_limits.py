"""A gateway key's and its team's limits hold across two daphne processes sharing PostgreSQL and Redis.

- rpm 10 on a key: 30 concurrent requests spread over both processes, exactly 10 served, the rest 429
  `rate_limited` with `Retry-After`, and exactly 10 reached the fake provider;
- rpm 10 on a team: its two keys, each through its own process, share the 10;
- a spend budget on a key that fits 10 requests: 50 concurrent requests over both processes serve at
  most 10, and the key's settled spend (its view in `GET /api/keys/{id}`) equals its usage records' cost.
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from decimal import Decimal

import httpx
import pytest

from byok.tests.e2e import Cluster, cluster, db_rows, fake_fp, needs_shared_state, records, register, uid, wait_for

pytestmark = needs_shared_state

PROPAGATION_S = 1.0
MESSAGES = [{"role": "user", "content": "Hello?"}]


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def provider(live: Cluster, base: str = "v1", model: str = "gpt-4o-mini") -> tuple[str, str]:
    n = uid()
    name, secret = f"e2e-lim-{n}", f"sk-e2e-{n}-limits-0000"
    register(live.a, provider="openai", name=name, base_url=f"{live.fake.url}/{base}", model=model, api_key=secret,
             max_retries=0)  # fmt: skip
    return f"{name}/{model}", secret


def post(server, path: str, body: dict) -> dict:
    with server.admin() as admin:
        response = admin.post(path, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def chat(server, key: str, model: str, **extra) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(
            server.url + "/v1/chat/completions",
            json={"model": model, "messages": MESSAGES, **extra},
            headers={"Authorization": f"Bearer {key}"},
        )


def spread(live: Cluster, count: int, request) -> list[httpx.Response]:
    """``count`` concurrent requests, every other one through each process."""
    with ThreadPoolExecutor(max_workers=count) as pool:
        return list(pool.map(lambda i: request(live.servers[i % 2], i), range(count)))


def test_a_keys_rpm_of_10_serves_exactly_10_across_both_processes(live):
    model, secret = provider(live)
    key = post(live.a, "/api/keys", {"name": f"rpm-{uid()}", "user": "live-admin", "rpm": 10})["key"]
    time.sleep(PROPAGATION_S)

    responses = spread(live, 30, lambda server, i: chat(server, key, model))

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 20, statuses
    refused = [r for r in responses if r.status_code == 429]
    assert {r.json()["error"]["code"] for r in refused} == {"rate_limited"}
    assert all(1 <= int(r.headers["Retry-After"]) <= 61 for r in refused)
    assert len(records(live.fake, key_fp=fake_fp(secret))) == 10


def test_a_teams_rpm_is_shared_by_its_keys_across_both_processes(live):
    model, secret = provider(live)
    team = post(live.a, "/api/teams", {"name": f"t-{uid()}", "members": ["live-admin"], "rpm": 10})
    keys = [post(live.a, "/api/keys", {"name": f"tk-{i}", "user": "live-admin", "team": team["id"]})["key"]
            for i in range(2)]  # fmt: skip
    time.sleep(PROPAGATION_S)

    # key 0 always through process A, key 1 always through process B
    with ThreadPoolExecutor(max_workers=24) as pool:
        responses = list(pool.map(lambda i: chat(live.servers[i % 2], keys[i % 2], model), range(24)))

    statuses = [r.status_code for r in responses]
    assert statuses.count(200) == 10 and statuses.count(429) == 14, statuses
    assert len(records(live.fake, key_fp=fake_fp(secret))) == 10


def test_50_concurrent_requests_against_a_keys_spend_budget_that_fits_10(live):
    # gpt-4o at $2.50 / $10 per million tokens; the fake answers with 100 output tokens, exactly the
    # max_tokens asked, so each request's worst case ($0.00101 to $0.00104) is about what it costs:
    # $0.0105 fits 10 of them and never 11, however the requests interleave.
    model, secret = provider(live, "cfg/chunks=100;first_delay_ms=300/v1", "gpt-4o")
    created = post(live.a, "/api/keys", {"name": f"budget-{uid()}", "user": "live-admin",
                                         "budget": {"spend_usd": "0.0105", "period": "day"}})  # fmt: skip
    key = created["key"]
    time.sleep(PROPAGATION_S)

    responses = spread(live, 50, lambda server, i: chat(server, key, model, max_tokens=100))

    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert len(served) == 10, [r.status_code for r in responses]
    assert {(r.status_code, r.json()["error"]["code"]) for r in refused} == {(429, "budget_exceeded")}
    assert len(records(live.fake, key_fp=fake_fp(secret))) == 10

    def settled():
        sql = "SELECT count(*), sum(cost) FROM byok_usagerecord WHERE gateway_key_id = %s AND status = 'ok'"
        row = db_rows(live.env, sql, (created["id"],))[0]
        return row if row[0] == 10 else None

    _, cost = wait_for(settled, timeout=30, message="the usage records of the served requests")
    with live.b.admin() as admin:
        budget = admin.get(f"/api/keys/{created['id']}").json()["budget"]
    assert Decimal(str(budget["used_spend"])) == Decimal(cost) <= Decimal("0.0105")
    assert budget["reserved_spend"] == 0
    assert budget["remaining_spend"] == pytest.approx(0.0105 - budget["used_spend"], abs=1e-8)


def test_a_client_that_disconnects_mid_stream_gets_its_reservation_back(live):
    model, _ = provider(live, "cfg/chunks=60;delay_ms=100/v1")  # a 6-second stream
    created = post(live.a, "/api/keys", {"name": f"gone-{uid()}", "user": "live-admin",
                                         "budget": {"tokens": 100_000, "period": "day"}})  # fmt: skip
    time.sleep(PROPAGATION_S)

    def budget() -> dict:
        with live.b.admin() as admin:  # the other process reads the same counters
            return admin.get(f"/api/keys/{created['id']}").json()["budget"]

    body = {"model": model, "messages": MESSAGES, "max_tokens": 500, "stream": True}
    with httpx.Client(timeout=30) as client:
        with client.stream("POST", live.a.url + "/v1/chat/completions", json=body,
                           headers={"Authorization": f"Bearer {created['key']}"}) as response:  # fmt: skip
            assert response.status_code == 200
            lines = response.iter_lines()
            assert next(line for line in lines if line.startswith("data: "))
            held = budget()
        # leaving the block closes the connection mid-stream
    assert held["reserved_tokens"] >= 500 and held["remaining_tokens"] <= 100_000 - 500
    after = wait_for(lambda: (b := budget())["reserved_tokens"] == 0 and b, timeout=15,
                     message="the reservation returned after the disconnect")  # fmt: skip
    assert after["remaining_tokens"] == 100_000 - after["used_tokens"]
