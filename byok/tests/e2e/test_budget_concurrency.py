"""Budgets hold across two daphne processes sharing PostgreSQL and Redis: reserved before the upstream call.

50 concurrent requests, spread over both processes, against a spend budget
that fits 10 of them: at most 10 reach the fake provider, and the budget's
settled spend equals the sum of the usage records' cost. A budget lowered
below what is spent refuses the next request with 429 ``budget_exceeded`` and
a ``Retry-After`` to UTC midnight. (Without PostgreSQL and Redis these are
skipped with the reason locally and fail in CI; the same logic runs in process
in ``test_budget_reservations.py``.)
"""

from __future__ import annotations

import time
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import httpx
import pytest

from byok.tests.e2e import Cluster, cluster, db_rows, fake_fp, needs_shared_state, records, register, uid, wait_for
from byok.tests.live import manage

pytestmark = needs_shared_state

PROPAGATION_S = 1.0  # a change through one process is seen by the others within a second
# The fake provider answers with 100 output tokens, exactly the max_tokens asked: the worst case a
# request reserves is its real output, so at most 10 fit in the budget however the requests interleave.
CHUNKS = 100


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def make_user(live: Cluster, name: str) -> tuple[int, str]:
    """A plain (non-staff) user with an API token: (id, token)."""
    manage(
        live.env,
        "shell",
        "-c",
        f"from django.contrib.auth import get_user_model; get_user_model().objects.create_user({name!r}, "
        "password='pw-123456789-x')",
    )
    token = manage(live.env, "drf_create_token", name).split()[2]
    (uid_,) = db_rows(live.env, "SELECT id FROM auth_user WHERE username = %s", (name,))[0]
    return uid_, token


def chat(server, token: str, model: str) -> httpx.Response:
    with httpx.Client(timeout=60) as client:
        return client.post(
            server.url + "/v1/chat/completions",
            json={"model": model, "messages": [{"role": "user", "content": "Hello?"}], "max_tokens": CHUNKS},
            headers={"Authorization": f"Bearer {token}"},
        )


def seconds_to_midnight() -> float:
    now = datetime.now(UTC)
    return (datetime(now.year, now.month, now.day, tzinfo=UTC) + timedelta(days=1) - now).total_seconds()


def setup(live: Cluster, spend_limit: str) -> tuple[str, str, dict, str]:
    n = uid()
    name, secret = f"e2e-budget-{n}", f"sk-e2e-{n}-budget-0000"
    register(
        live.a,
        provider="openai",
        name=name,
        base_url=f"{live.fake.url}/cfg/chunks={CHUNKS};first_delay_ms=300/v1",
        model="gpt-4o",
        api_key=secret,
        max_retries=0,
    )
    user_id, token = make_user(live, f"budget-{n}")
    with live.a.admin() as admin:
        created = admin.post("/api/budgets", json={"user": user_id, "spend_limit": spend_limit, "period": "day"})
    assert created.status_code == 201, created.text
    time.sleep(PROPAGATION_S)
    return f"{name}/gpt-4o", token, created.json(), secret


def test_50_concurrent_requests_against_a_spend_budget_that_fits_10_serve_at_most_10(live):
    # gpt-4o: $2.50 / $10 per million tokens in and out; a request's worst case is its prompt (a few
    # tokens) + 100 output tokens: $0.00101 to $0.00104. $0.0105 fits 10 of them, never 11.
    model, token, budget, secret = setup(live, "0.0105")
    with ThreadPoolExecutor(max_workers=50) as pool:
        responses = list(pool.map(lambda i: chat(live.servers[i % 2], token, model), range(50)))

    served = [r for r in responses if r.status_code == 200]
    refused = [r for r in responses if r.status_code != 200]
    assert 1 <= len(served) <= 10
    assert len(served) == 10, [r.status_code for r in responses]  # nothing else was in the way
    assert len(records(live.fake, key_fp=fake_fp(secret))) == len(served)
    assert {r.status_code for r in refused} == {429}
    assert {r.json()["error"]["code"] for r in refused} == {"budget_exceeded"}
    assert all(abs(int(r.headers["Retry-After"]) - seconds_to_midnight()) < 60 for r in refused)

    def settled():
        rows = db_rows(
            live.env,
            "SELECT count(*), sum(cost) FROM byok_usagerecord WHERE user_id = %s AND status = 'ok'",
            (budget["user"],),
        )
        return rows[0] if rows[0][0] == len(served) else None

    count, cost = wait_for(settled, timeout=30, message="the usage records of the served requests")
    with live.b.admin() as admin:
        row = admin.get(f"/api/budgets/{budget['id']}").json()
    assert Decimal(str(row["used_spend"])) == Decimal(cost) and count == 10
    assert row["reserved_spend"] == 0 and row["used_spend"] <= 0.0105
    assert row["remaining_spend"] == pytest.approx(0.0105 - row["used_spend"], abs=1e-8)


def test_a_budget_lowered_below_spent_refuses_the_next_request_with_retry_after(live):
    model, token, budget, _ = setup(live, "1.00")
    assert [chat(live.a, token, model).status_code for _ in range(2)] == [200, 200]
    with live.a.admin() as admin:
        changed = admin.patch(f"/api/budgets/{budget['id']}", json={"spend_limit": "0.0010"})
    assert changed.status_code == 200, changed.text
    assert changed.json()["remaining_spend"] == 0 and changed.json()["exceeded"] is True

    at_once = chat(live.a, token, model)  # the process that took the change: at once
    time.sleep(PROPAGATION_S)
    other = chat(live.b, token, model)  # the other one: within the second
    for response in (at_once, other):
        assert response.status_code == 429, response.text
        assert response.json()["error"]["code"] == "budget_exceeded"
        assert abs(int(response.headers["Retry-After"]) - seconds_to_midnight()) < 60
