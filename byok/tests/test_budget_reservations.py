"""Budgets are reservations: held before the upstream call, settled with the real usage, released on failure/cancel.

Through the handler on in-process state and a fake clock (conftest's ``handler``),
upstreams faked with respx. The same across processes sharing Redis and
PostgreSQL: ``e2e/test_budget_concurrency.py``.
"""

from __future__ import annotations

import asyncio
from dataclasses import replace
from decimal import Decimal
from types import SimpleNamespace

import httpx
import pytest
import respx
from asgiref.sync import async_to_sync, sync_to_async

from byok import budget_store
from byok.api.render_openai import error_response
from byok.audit import Actor
from byok.budgets import BudgetGate
from byok.exceptions import AllProvidersFailedError, BudgetExceededError, RateLimitedError
from byok.gateway.embeddings import embed
from byok.keys.grant import Grant as KeyGrant
from byok.keys.grant import Limits
from byok.models import UsageRecord
from byok.providers.embeddings import EmbeddingRequest, EmbeddingsNotSupported
from byok.providers.types import StreamDone, Usage
from byok.state import NANO, MemoryStateBackend, get_state_backend
from byok.state.quota import Hold
from byok.tests.upstream_fakes import OPENAI, ask, collect, openai_chunks, openai_json, register

ADMIN = Actor("alice", "203.0.113.9")
OPENAI_EMBEDDINGS = "https://api.openai.com/v1/embeddings"
MIDNIGHT = 1_700_006_400.0  # the end of FakeTime's first day (it starts at 1_700_000_000)
SMALL = {"max_tokens": 4}  # worst case: the prompt "Hi" (8 tokens, estimated) + 4 = 12 tokens


async def setup(django_user_model, **limits):
    carol = await sync_to_async(django_user_model.objects.create_user)("carol", password="pw-123456789")
    await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", max_retries=0)
    budget = await sync_to_async(budget_store.create_budget)(actor=ADMIN, user=carol.pk, period="day", **limits)
    return carol, budget


async def figures(handler, budget):
    fresh = await sync_to_async(budget_store.get_budget)(budget.pk)
    (row,) = await budget_store.budget_rows(handler.state(), [fresh])
    return row


@pytest.mark.django_db(transaction=True)
class TestReservations:
    async def test_the_reservation_is_visible_while_the_request_runs_then_settles(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=100)
        started, release = asyncio.Event(), asyncio.Event()

        async def slow(request):
            started.set()
            await release.wait()
            return httpx.Response(200, json=openai_json(usage=(9, 3)))

        with respx.mock:
            respx.post(OPENAI).mock(side_effect=slow)
            task = asyncio.create_task(handler.chat(ask(**SMALL), user_id=carol.pk))
            await asyncio.wait_for(started.wait(), 30)
            during = await figures(handler, budget)
            release.set()
            await task
        after = await figures(handler, budget)
        assert (during["used_tokens"], during["reserved_tokens"], during["remaining_tokens"]) == (0, 12, 88)
        assert (after["used_tokens"], after["reserved_tokens"], after["remaining_tokens"]) == (12, 0, 88)

    async def test_released_on_upstream_failure(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=12)
        with respx.mock:
            route = respx.post(OPENAI).respond(500, json={"error": {"message": "boom"}})
            for _ in range(3):  # each failure gives its 12 tokens back: the next one fits again
                with pytest.raises(AllProvidersFailedError):
                    await handler.chat(ask(**SMALL), user_id=carol.pk)
            events = await collect(handler.stream(ask(**SMALL), user_id=carol.pk))
        assert route.call_count == 4 and events[-1].error.code == "upstream_failed"
        row = await figures(handler, budget)
        assert (row["used_tokens"], row["reserved_tokens"]) == (0, 0)

    async def test_released_on_client_cancel(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=12)
        started = asyncio.Event()

        async def hang(request):
            started.set()
            await asyncio.sleep(3600)

        with respx.mock:
            respx.post(OPENAI).mock(side_effect=hang)
            task = asyncio.create_task(handler.chat(ask(**SMALL), user_id=carol.pk))
            await asyncio.wait_for(started.wait(), 30)
            assert (await figures(handler, budget))["reserved_tokens"] == 12
            with pytest.raises(BudgetExceededError):  # held: a second request does not fit meanwhile
                await handler.chat(ask(**SMALL), user_id=carol.pk)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        row = await figures(handler, budget)
        assert (row["used_tokens"], row["reserved_tokens"]) == (0, 0)

    async def test_a_cancelled_stream_counts_what_it_used_and_returns_the_rest(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=1000)
        streaming = asyncio.Event()

        class Endless(httpx.AsyncByteStream):
            async def __aiter__(self):
                yield openai_chunks("first")[:150]
                streaming.set()
                await asyncio.sleep(3600)
                yield b""

        with respx.mock:
            respx.post(OPENAI).mock(
                return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())
            )

            async def consume():
                async for _ in handler.stream(ask(max_tokens=500), user_id=carol.pk):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.wait_for(streaming.wait(), 30)
            assert (await figures(handler, budget))["reserved_tokens"] == 508
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        row = await figures(handler, budget)
        assert row["reserved_tokens"] == 0

    async def test_n_concurrent_requests_against_a_budget_that_fits_k_serve_k(self, handler, django_user_model):
        """50 at once, each worst case $0.00012 (8 prompt + 10 output tokens of gpt-4o), a budget of $0.0012."""
        carol, budget = await setup(django_user_model, spend_limit="0.0012")
        admitted, release = [], asyncio.Event()

        async def held(request):
            admitted.append(request)
            await release.wait()
            return httpx.Response(200, json=openai_json(usage=(8, 10)))  # the worst case, to the token

        async def one():
            try:
                return await handler.chat(ask(max_tokens=10), user_id=carol.pk)
            except BudgetExceededError as exc:
                return exc

        with respx.mock:
            respx.post(OPENAI).mock(side_effect=held)
            tasks = [asyncio.create_task(one()) for _ in range(50)]
            deadline = asyncio.get_running_loop().time() + 30
            # the refused answer at once; the admitted reach the upstream (under load, after them) and wait there
            while sum(t.done() for t in tasks) < 40 or len(admitted) < 10:
                assert asyncio.get_running_loop().time() < deadline, (sum(t.done() for t in tasks), len(admitted))
                await asyncio.sleep(0.01)
            assert len(admitted) == 10 and sum(t.done() for t in tasks) == 40
            release.set()
            results = await asyncio.gather(*tasks)
        refused = [r for r in results if isinstance(r, BudgetExceededError)]
        assert len(refused) == 40 and {r.retry_after for r in refused} == {MIDNIGHT - 1_700_000_000}
        await handler.flush_usage()
        costs = await sync_to_async(lambda: [r.cost for r in UsageRecord.objects.filter(status="ok")])()
        row = await figures(handler, budget)
        assert len(costs) == 10 and Decimal(str(row["used_spend"])) == sum(costs) == Decimal("0.0012")
        assert row["reserved_spend"] == 0 and row["remaining_spend"] == 0

    async def test_a_budget_lowered_below_spent_refuses_the_next_request(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=1000)
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json(usage=(9, 3)))
            for _ in range(3):
                await handler.chat(ask(**SMALL), user_id=carol.pk)  # 36 spent
            await sync_to_async(budget_store.update_budget)(budget.pk, {"token_limit": 20}, actor=ADMIN)
            with pytest.raises(BudgetExceededError) as err:
                await handler.chat(ask(**SMALL), user_id=carol.pk)
            assert route.call_count == 3
        status, body, headers = error_response(err.value)
        assert (status, body["error"]["code"]) == (429, "budget_exceeded")
        assert headers["Retry-After"] == str(int(MIDNIGHT - 1_700_000_000))
        row = await figures(handler, budget)
        assert (row["used_tokens"], row["remaining_tokens"], row["exceeded"]) == (36, 0, True)

    async def test_a_stream_settles_its_real_usage(self, handler, django_user_model):
        carol, budget = await setup(django_user_model, token_limit=1000)
        with respx.mock:
            respx.post(OPENAI).respond(
                200, headers={"content-type": "text/event-stream"}, content=openai_chunks("a", "b")
            )
            events = await collect(handler.stream(ask(max_tokens=100), user_id=carol.pk))
        assert isinstance(events[-1], StreamDone)
        row = await figures(handler, budget)
        usage = events[-1].usage
        assert (row["used_tokens"], row["reserved_tokens"]) == (usage.input_tokens + usage.output_tokens, 0)

    async def test_an_embeddings_request_settles_its_input_tokens_and_a_refused_or_failed_one_releases(
        self, handler, django_user_model
    ):
        # One request at a time: "Hi" reserves 9 tokens routed to openai, 10 to anthropic.
        carol, budget = await setup(django_user_model, token_limit=17)
        await register(kind="anthropic", name="claude", api_key="sk-ant-0123456789abcdef")
        hi = EmbeddingRequest(model="openai/text-embedding-3-small", inputs=("Hi",))
        vectors = {"data": [{"index": 0, "embedding": [0.5]}], "usage": {"prompt_tokens": 3}}
        failed = httpx.Response(500, json={"error": {"message": "boom"}})
        with respx.mock:
            route = respx.post(OPENAI_EMBEDDINGS).mock(side_effect=[failed, failed, httpx.Response(200, json=vectors)])
            for _ in range(2):  # each failure gives its reservation back: the next one fits again
                with pytest.raises(AllProvidersFailedError):
                    await embed(handler, hi, user_id=carol.pk)
            with pytest.raises(EmbeddingsNotSupported):  # refused once admitted: released as well
                await embed(handler, replace(hi, model="claude/claude-sonnet-4-5"), user_id=carol.pk)
            result = await embed(handler, hi, user_id=carol.pk)
        assert route.call_count == 3 and result.response.vectors == ((0.5,),)
        row = await figures(handler, budget)
        assert (row["used_tokens"], row["reserved_tokens"]) == (3, 0)  # the inputs' tokens, no output


# -- a gateway key's and its team's limits (byok.keys.grant) -------------------------


def Grant(key_id: int, key: Limits, team_id: int | None = None, team: Limits | None = None) -> KeyGrant:
    return KeyGrant(key_id=key_id, lookup="abc123", name="k", user_id=1, team_id=team_id, key=key, team=team)


def day(**limits) -> Limits:
    return Limits(budget_period="day", **limits)


def gpt4o():
    return SimpleNamespace(provider=SimpleNamespace(kind="openai", name="openai"), model="gpt-4o")


async def admit(gate, state, grant, *, now=1_700_000_000.0, **kw):
    return await gate.admit(ask(**(kw or SMALL)), [gpt4o()], user_id=None, state=state, snapshot=None, now=now,
                            grant=grant)  # fmt: skip


async def test_a_keys_rpm_and_its_teams_rpm_are_both_enforced():
    gate, state = BudgetGate(), MemoryStateBackend(now=lambda: 1_700_000_000.0)
    team = Limits(rpm=3)
    first, second = Grant(1, Limits(rpm=2), 9, team), Grant(2, Limits(), 9, team)
    await admit(gate, state, first)
    await admit(gate, state, first)
    with pytest.raises(RateLimitedError) as key_full:
        await admit(gate, state, first)
    await admit(gate, state, second)  # the team had room for one more
    with pytest.raises(RateLimitedError) as team_full:
        await admit(gate, state, second)
    assert "This key's limit of requests per minute" in key_full.value.message
    assert "team's limit" in team_full.value.message and 0 < team_full.value.retry_after <= 61


async def test_a_keys_tpm_counts_the_estimate_then_the_real_usage():
    gate, state = BudgetGate(), MemoryStateBackend(now=lambda: 1_700_000_000.0)
    grant = Grant(1, Limits(tpm=30))  # each request: 8 prompt + 4 max_tokens = 12 counted up front
    _, ticket = await admit(gate, state, grant)
    _, held = await admit(gate, state, grant)
    with pytest.raises(RateLimitedError):
        await admit(gate, state, grant)  # 24 + 12 > 30
    await gate.settle(state, ticket, key_id=None, kind="openai", usage=Usage(input_tokens=2, output_tokens=1),
                      cost=None)  # fmt: skip
    await admit(gate, state, grant)  # 3 + 12 + 12 fits
    with pytest.raises(RateLimitedError) as never:
        await admit(gate, state, grant, max_tokens=100)
    assert "lower than this request alone" in never.value.message


async def test_key_and_team_budgets_are_reserved_and_visible():
    gate, state = BudgetGate(), MemoryStateBackend(now=lambda: 1_700_000_000.0)
    grant = Grant(1, day(budget_tokens=100), 9, Limits(budget_spend_usd=1.0, budget_period="month"))
    _, ticket = await admit(gate, state, grant)
    key = await state.check_budget("gwkey:1", token_limit=100, spend_limit=None, period="day")
    team = await state.check_budget("team:9", token_limit=None, spend_limit=1.0, period="month")
    assert (key.reserved_tokens, team.reserved_tokens, team.reserved_spend) == (12, 12, pytest.approx(0.00006))
    await gate.settle(state, ticket, key_id=None, kind="openai", usage=Usage(input_tokens=9, output_tokens=3),
                      cost=Decimal("0.0000525"))  # fmt: skip
    team = await state.check_budget("team:9", token_limit=None, spend_limit=1.0, period="month")
    assert (team.used_tokens, team.used_spend, team.reserved_spend) == (12, pytest.approx(0.0000525), 0)
    with pytest.raises(BudgetExceededError) as err:
        await admit(gate, state, Grant(1, day(budget_tokens=20)))  # lowered below 12 + 12
    assert err.value.message.startswith("This key's daily token budget (20 tokens)")


@pytest.mark.django_db(transaction=True)
def test_a_keys_and_a_teams_view_show_their_budgets_use(alice_client, alice, monkeypatch):
    from byok.gateway.handler import get_handler
    from byok.keys import store

    team = store.create_team(actor=ADMIN, name="quota-team", members=[alice.username],
                             budget={"spend_usd": "2.5", "period": "month"})  # fmt: skip
    key, _ = store.create_key(actor=ADMIN, name="k", user=alice.username, team=team.pk,
                              budget={"tokens": 100, "period": "day"})  # fmt: skip
    state = get_state_backend(None)
    # The views read the handler's shared state: this process's store here, with or without REDIS_URL in the run.
    monkeypatch.setattr(get_handler(), "state", lambda: state)
    holds = [Hold(f"gwkey:{key.pk}", "day", 100, None, 30, 0), Hold(f"team:{team.pk}", "month", None, 2.5, 0, NANO)]
    got = async_to_sync(state.reserve)(rates=[], tokens=0, holds=holds)
    try:
        async_to_sync(state.spend)(f"gwkey:{key.pk}", tokens=20, cost=0, period="day")
        shown = alice_client.get(f"/api/keys/{key.pk}").json()["budget"]
        listed = next(k for k in alice_client.get("/api/keys").json() if k["id"] == key.pk)["budget"]
        team_shown = alice_client.get(f"/api/teams/{team.pk}").json()["budget"]
    finally:
        async_to_sync(state.settle)(got.reservation, tokens=0, nanos=0)
    assert shown == listed
    assert (shown["tokens"], shown["used_tokens"], shown["reserved_tokens"], shown["remaining_tokens"]) == (
        100,
        20,
        30,
        50,
    )
    assert shown["remaining_spend"] is None and shown["exceeded"] is False
    assert (team_shown["spend_usd"], team_shown["reserved_spend"], team_shown["remaining_spend"]) == (
        "2.5000",
        1.0,
        1.5,
    )
