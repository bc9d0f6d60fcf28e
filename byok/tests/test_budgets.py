"""byok.budgets: max_tokens policy and context-window refusal, spend accounting, user and key budgets.

The clock is injected (FakeTime from conftest): budgets reset at UTC
midnight / the first of the month without any test waiting. Upstreams are
faked with respx.
"""

from __future__ import annotations

import json
import os
import uuid
from datetime import UTC, datetime, timedelta
from decimal import Decimal

import pytest
import respx
from asgiref.sync import sync_to_async
from django.urls import reverse

from byok import budget_store as budgets
from byok.audit import Actor
from byok.budget_store import spend_summary
from byok.budgets import BudgetGate
from byok.catalog import Catalog, ModelInfo, file_entries
from byok.exceptions import (
    BudgetExceededError,
    ConflictError,
    ContextLengthExceededError,
    InvalidConfigError,
    NotFound,
    RateLimitedError,
)
from byok.gateway.handler import BYOKHandler
from byok.maxtokens import prepare_request
from byok.models import ApiKey, AuditEvent, Budget, CatalogOverride, UsageRecord
from byok.providers.types import ChatRequest, Message, StreamFailed, Usage
from byok.state import MemoryStateBackend, MemoryStore, get_state_backend
from byok.tests.upstream_fakes import (
    ANTHROPIC,
    DEEPSEEK,
    GEMINI,
    OPENAI,
    anthropic_json,
    ask,
    collect,
    gemini_json,
    openai_chunks,
    openai_json,
    register,
)

ADMIN = Actor("alice", "203.0.113.9")
REDIS_URL = os.environ.get("BYOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
MIDNIGHT = datetime(2023, 11, 15, tzinfo=UTC).timestamp()  # the day after FakeTime's start (1_700_000_000)
CATALOG = Catalog(file_entries())


def words(n: int) -> str:
    return "word " * n  # about one token a word


def prep(kind: str, model: str, **kw):
    req = ChatRequest(model=model, messages=(Message(role="user", content=kw.pop("text", "Hi")),), **kw)
    return prepare_request(req, kind=kind, model=model, info=CATALOG.lookup(kind, model))


# -- max_tokens: defaults, clamping, refusals --------------------------------------------------------------


@pytest.mark.parametrize(
    "kind,model,expected",
    [
        ("openai", "gpt-4o", 16384),  # the model's output limit: what OpenAI does itself
        ("openai", "o4-mini", 100000),
        ("anthropic", "claude-sonnet-4", 4096),  # Anthropic requires one: the adapter default, within the limit
        ("anthropic", "claude-3-haiku", 4096),
        ("anthropic", "claude-x", 4096),  # unknown Anthropic model: still gets one
        ("gemini", "gemini-2.0-flash", 8192),
        ("gemini", "gemini-2.5-pro", 65536),
        ("deepseek", "deepseek-chat", 4096),  # DeepSeek's documented defaults, from the catalog
        ("deepseek", "deepseek-reasoner", 32768),
        ("openai", "m", None),  # unknown model of an optional-max_tokens provider: left alone
        ("openai_compatible", "llama", None),
    ],
)
def test_default_max_tokens_per_provider(kind, model, expected):
    p = prep(kind, model)
    assert p.request.max_tokens == expected
    assert p.filled == (expected is not None)
    assert p.reserve == p.prompt_tokens  # a filled default does not take rate-window room


@pytest.mark.parametrize(
    "kind,model,asked,expected",
    [
        ("openai", "gpt-4o", 100_000, 16384),
        ("anthropic", "claude-sonnet-4", 100_000, 64000),
        ("anthropic", "claude-3-haiku", 8000, 4096),
        ("gemini", "gemini-2.0-flash", 50_000, 8192),
        ("deepseek", "deepseek-chat", 10_000, 8192),
        ("openai", "gpt-4o", 500, 500),  # within the limit: untouched
        ("openai", "m", 10**6, 10**6),  # unknown model: nothing to clamp to
    ],
)
def test_max_tokens_above_the_output_limit_is_clamped(kind, model, asked, expected):
    p = prep(kind, model, max_tokens=asked)
    assert p.request.max_tokens == expected
    assert p.clamped_from == (asked if asked != expected else None)
    assert p.reserve == p.prompt_tokens + expected


def test_context_window_refusals():
    tiny = ModelInfo(provider="openai", model="tiny", context_window=100, max_output_tokens=50)
    req = ChatRequest(model="tiny", messages=(Message(role="user", content=words(60)),))
    ok = prepare_request(req, kind="openai", model="tiny", info=tiny)
    assert ok.request.max_tokens is None  # the room (100 - 60 x 1.1) is tighter than the default: left to the provider
    with pytest.raises(ContextLengthExceededError) as err:
        prepare_request(
            ChatRequest(model="tiny", messages=req.messages, max_tokens=40), kind="openai", model="tiny", info=tiny
        )
    assert err.value.status_code == 400 and err.value.code == "context_length_exceeded"
    assert err.value.to_dict()["context_window"] == 100 and err.value.to_dict()["max_tokens"] == 40
    with pytest.raises(ContextLengthExceededError):  # no room at all
        prepare_request(
            ChatRequest(model="tiny", messages=(Message(role="user", content=words(120)),)),
            kind="openai",
            model="tiny",
            info=tiny,
        )
    # Anthropic needs a max_tokens: it gets the room left.
    claude = ModelInfo(provider="anthropic", model="c", context_window=100, max_output_tokens=50)
    p = prepare_request(ChatRequest(model="c", messages=req.messages), kind="anthropic", model="c", info=claude)
    assert 1 <= p.request.max_tokens <= 100 - p.prompt_tokens
    # A separate input limit (Gemini, GPT-5) refuses long prompts even when max_tokens is small.
    gem = ModelInfo(provider="gemini", model="g", context_window=150, max_output_tokens=50, max_input_tokens=50)
    with pytest.raises(ContextLengthExceededError) as err:
        prepare_request(ChatRequest(model="g", messages=req.messages, max_tokens=1), kind="gemini", model="g", info=gem)
    assert err.value.to_dict()["max_input_tokens"] == 50
    limits_unknown = ModelInfo(provider="openai", model="u", input_per_mtok=Decimal(1), output_per_mtok=Decimal(1))
    assert prepare_request(req, kind="openai", model="u", info=limits_unknown).request.max_tokens is None


def test_real_windows_from_the_catalog():
    big = words(130_000)
    with pytest.raises(ContextLengthExceededError):
        prep("openai", "gpt-4o", text=big)
    p = prep("openai", "gpt-4.1", text=big)
    assert p.request.max_tokens == 32768
    with pytest.raises(ContextLengthExceededError):
        prep("openai", "gpt-4o", text=words(120_000), max_tokens=16384)


# -- through the handler: no upstream call, no key ----------------------------------------------------


def count_picks(handler):
    calls = []
    original = handler.pool.pick

    async def pick(*args, **kwargs):
        calls.append(kwargs)
        return await original(*args, **kwargs)

    handler.pool.pick = pick
    return calls


@pytest.mark.django_db(transaction=True)
class TestHandlerPromptBudget:
    async def test_context_length_refused_without_upstream_call_or_key(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        picks = count_picks(handler)
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(OPENAI).respond(200, json=openai_json())
            with pytest.raises(ContextLengthExceededError) as err:
                await handler.chat(ask(words(130_000)))
            events = await collect(
                handler.stream(ask(words(115_000), max_tokens=40_000))
            )  # clamped to 16384: still too long
        assert route.call_count == 0 and picks == []
        assert err.value.status_code == 400
        assert isinstance(events[-1], StreamFailed) and events[-1].error.code == "context_length_exceeded"
        assert events[-1].partial is False and len(events) == 1
        await handler.flush_usage()
        rows = await sync_to_async(lambda: list(UsageRecord.objects.values_list("status", "error_code", "key_hint")))()
        assert rows == [("error", "context_length_exceeded", "")] * 2

    async def test_anthropic_always_gets_max_tokens_and_limits_are_clamped(self, handler):
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-sonnet-4")
        with respx.mock:
            route = respx.post(ANTHROPIC).respond(200, json=anthropic_json())
            await handler.chat(ask())
            await handler.chat(ask(max_tokens=1_000_000))
        sent = [json.loads(c.request.content)["max_tokens"] for c in route.calls]
        assert sent == [4096, 64000]

    async def test_defaults_on_the_wire_per_provider(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await register(kind="deepseek", api_key="sk-deepseek-0123456789abcdef", default_model="deepseek-chat")
        await register(kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.0-flash")
        with respx.mock:
            oa = respx.post(OPENAI).respond(200, json=openai_json())
            ds = respx.post(DEEPSEEK).respond(200, json=openai_json(model="deepseek-chat"))
            gm = respx.post(GEMINI).respond(200, json=gemini_json())
            await handler.chat(ask(), provider="openai")
            await handler.chat(ask(max_tokens=100_000), provider="deepseek")
            await handler.chat(ask(), provider="gemini")
        assert json.loads(oa.calls.last.request.content)["max_completion_tokens"] == 16384
        assert json.loads(ds.calls.last.request.content)["max_tokens"] == 8192
        assert json.loads(gm.calls.last.request.content)["generationConfig"]["maxOutputTokens"] == 8192

    async def test_a_fallback_that_cannot_fit_is_dropped(self, handler):
        from byok.models import FailoverPolicy, FailoverStep, Provider

        await register(
            kind="openai",
            name="big",
            api_key="sk-openai-0123456789abcdef",
            default_model="gpt-4.1",
            is_default=True,
            max_retries=0,
        )
        await register(kind="openai", name="small", api_key="sk-openai-1123456789abcdef", default_model="gpt-4o")

        def policy():
            big, small = Provider.objects.get(name="big"), Provider.objects.get(name="small")
            pol = FailoverPolicy.objects.create(name="p", primary=big, max_retries=0)
            FailoverStep.objects.create(policy=pol, provider=small, position=0)

        await sync_to_async(policy)()
        handler.invalidate()
        with respx.mock:
            route = respx.post(OPENAI).respond(500, json={"error": {"message": "boom"}})
            with pytest.raises(Exception):
                await handler.chat(ask(words(150_000)))
            assert route.call_count == 1  # big was tried; small (128K) was never asked
            with pytest.raises(Exception):
                await handler.chat(ask("short"))
            assert route.call_count == 3  # both, when the prompt fits both


# -- budgets: refusal and reset --------------------------------------------------------------------


async def make_budget(**values):
    return await sync_to_async(budgets.create_budget)(actor=ADMIN, **values)


async def user(django_user_model, name="carol"):
    return await sync_to_async(django_user_model.objects.create_user)(name, password="pw-123456789")


@pytest.mark.django_db(transaction=True)
class TestBudgets:
    async def test_user_token_budget_refuses_then_resets_at_midnight(self, handler, fake_time, django_user_model):
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, token_limit=30, period="day")
        small = {"max_tokens": 4}  # each request reserves its prompt (8) + 4 before it is sent
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json(usage=(9, 3)))  # 12 tokens an answer
            await handler.chat(ask(**small), user_id=carol.pk)  # 12 used
            await handler.chat(ask(**small), user_id=carol.pk)  # 12 + the worst case (12) fits 30: 24 used
            with pytest.raises(BudgetExceededError) as err:
                await handler.chat(ask(**small), user_id=carol.pk)  # 24 + 12 does not
            assert route.call_count == 2
            await handler.chat(ask())  # other callers are not affected
            fake_time.now = MIDNIGHT + 1
            await handler.chat(ask(**small), user_id=carol.pk)  # a new day
        exc = err.value
        assert (exc.status_code, exc.code, exc.period, exc.reason) == (429, "budget_exceeded", "day", "tokens")
        assert exc.retry_after == pytest.approx(MIDNIGHT - 1_700_000_000)
        assert exc.to_dict()["retry_after"] == pytest.approx(6400.0) and "2023-11-15T00:00:00Z" in exc.message

    async def test_without_max_tokens_the_models_output_limit_is_reserved(self, handler, django_user_model):
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, token_limit=16_000, period="day")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(OPENAI).respond(200, json=openai_json())
            with pytest.raises(BudgetExceededError) as err:
                await handler.chat(ask(), user_id=carol.pk)  # gpt-4o may write 16,384 tokens
            await handler.chat(ask(max_tokens=1000), user_id=carol.pk)
        assert route.call_count == 1 and "16000 tokens" in err.value.message

    async def test_a_prompt_that_would_exceed_the_budget_is_refused_before_sending(self, handler, django_user_model):
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, token_limit=100, period="month")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(OPENAI).respond(200, json=openai_json())
            with pytest.raises(BudgetExceededError) as err:
                await handler.chat(ask(words(200)), user_id=carol.pk)
        assert route.call_count == 0 and err.value.period == "month"
        assert err.value.retry_after == pytest.approx(datetime(2023, 12, 1, tzinfo=UTC).timestamp() - 1_700_000_000)

    async def test_user_spend_budget_counts_catalog_cost(self, handler, django_user_model):
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, spend_limit="0.0002", period="day")
        small = {"max_tokens": 10}  # the worst case: 8 prompt + 10 output tokens at gpt-4o's prices, $0.00012
        with respx.mock:
            respx.post(OPENAI).respond(200, json=openai_json(usage=(9, 3)))  # $0.0000525 an answer
            await handler.chat(ask(**small), user_id=carol.pk)
            await handler.chat(ask(**small), user_id=carol.pk)  # 0.0000525 + 0.00012 fits
            with pytest.raises(BudgetExceededError) as err:
                await handler.chat(ask(**small), user_id=carol.pk)  # 0.000105 + 0.00012 does not
        assert err.value.reason == "spend" and err.value.used == pytest.approx(0.000105)
        status = await handler.state().check_budget(
            f"user:{carol.pk}", token_limit=None, spend_limit=None, period="day"
        )
        assert status.used_tokens == 24

    async def test_streams_count_and_are_refused_too(self, handler, django_user_model):
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, token_limit=10, period="day")
        with respx.mock:
            respx.post(OPENAI).respond(
                200, headers={"content-type": "text/event-stream"}, content=openai_chunks("a", "b")
            )
            first = await collect(handler.stream(ask(max_tokens=2), user_id=carol.pk))  # reserves 8 + 2
            second = await collect(handler.stream(ask(max_tokens=2), user_id=carol.pk))
        assert first[-1].usage.input_tokens == 5
        assert isinstance(second[-1], StreamFailed) and second[-1].error.code == "budget_exceeded"
        status = await handler.state().check_budget(
            f"user:{carol.pk}", token_limit=None, spend_limit=None, period="day"
        )
        assert status.used_tokens == 7

    async def test_a_key_over_budget_is_skipped_like_a_key_over_quota(self, handler, fake_time):
        provider = await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await sync_to_async(budgets_add_key)(provider, "sk-openai-1123456789abcdef")
        keys = await sync_to_async(lambda: list(ApiKey.objects.order_by("id")))()
        await make_budget(key=keys[0].pk, token_limit=10, period="day")
        await make_budget(key=keys[1].pk, token_limit=30, period="day")
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json(usage=(9, 3)))
            hints = [(await handler.chat(ask())).key_hint for _ in range(4)]
            assert hints == [keys[0].hint] + [keys[1].hint] * 3  # key 0 is over after 12 tokens, key 1 after 36
            with pytest.raises(RateLimitedError) as err:
                await handler.chat(ask())
            assert route.call_count == 4
            fake_time.now = MIDNIGHT + 5
            assert (await handler.chat(ask())).key_hint in {keys[0].hint, keys[1].hint}
        assert err.value.status_code == 429 and err.value.retry_after > 0

    @pytest.mark.redis
    async def test_budgets_hold_across_two_handlers_sharing_redis(self, fake_time, django_user_model):
        """Two handler instances (two processes' worth) over one Redis: one counter, one refusal. Needs Redis."""
        carol = await user(django_user_model)
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        await make_budget(user=carol.pk, token_limit=30, period="day")
        prefix = f"byok-test-{uuid.uuid4().hex[:10]}:"

        def make():
            return BYOKHandler(
                state_factory=lambda: get_state_backend(REDIS_URL, prefix=prefix, now=fake_time.wall),
                clock=fake_time.mono,
                wall=fake_time.wall,
                sleep=fake_time.sleep,
                rand=lambda: 0.5,
            )

        a, b = make(), make()
        try:
            assert await a.state().ping()  # fails the test (never skips) when Redis is down
            with respx.mock:
                route = respx.post(OPENAI).respond(200, json=openai_json(usage=(9, 3)))
                await a.chat(ask(max_tokens=4), user_id=carol.pk)  # 12
                await b.chat(ask(max_tokens=4), user_id=carol.pk)  # 24, counted in the same place
                with pytest.raises(BudgetExceededError):
                    await a.chat(ask(max_tokens=4), user_id=carol.pk)  # 24 + the worst case 12 > 30
                with pytest.raises(BudgetExceededError):
                    await b.chat(ask(max_tokens=4), user_id=carol.pk)
                assert route.call_count == 2
                fake_time.now = MIDNIGHT + 1
                await b.chat(ask(max_tokens=4), user_id=carol.pk)
            status = await a.state().check_budget(f"user:{carol.pk}", token_limit=30, spend_limit=None, period="day")
            assert status.used_tokens == 12 and status.ok
        finally:
            for h in (a, b):
                await h.state().redis.delete(*[k async for k in h.state().redis.scan_iter(match=f"{prefix}*")] or ["-"])
                await h.aclose()


def budgets_add_key(provider, secret):
    from byok import registry

    return registry.add_key(provider.pk, secret)


# -- budget configuration: audited changes ------------------------------------------------------------


@pytest.mark.django_db
def test_budget_changes_are_audited(django_user_model):
    carol = django_user_model.objects.create_user("carol", password="pw-123456789")
    b = budgets.create_budget(user="carol", token_limit=1000, actor=ADMIN)
    assert (b.user_id, b.period, b.scope) == (carol.pk, "day", f"user:{carol.pk}")
    budgets.update_budget(b.pk, {"spend_limit": Decimal("2.50"), "enabled": False}, actor=ADMIN)
    budgets.delete_budget(b.pk, actor=ADMIN)
    events = list(AuditEvent.objects.order_by("id"))
    assert [e.action for e in events] == ["budget.create", "budget.update", "budget.delete"]
    assert all(e.actor == "alice" and e.source_address == "203.0.113.9" for e in events)
    assert events[1].details["before"]["spend_limit"] is None and events[1].details["after"]["spend_limit"] == "2.50"
    assert events[1].details["fields"] == ["enabled", "spend_limit"]


@pytest.mark.django_db
def test_budget_validation(django_user_model):
    from byok import registry

    carol = django_user_model.objects.create_user("carol", password="pw-123456789")
    key = registry.register_provider(kind="openai", api_key="sk-openai-0123456789abcdef").keys.get()
    cases = [
        ({"user": carol.pk}, "token_limit"),
        ({"user": carol.pk, "key": key.pk, "token_limit": 5}, "user"),
        ({"token_limit": 5}, "user"),
        ({"user": carol.pk, "token_limit": 0}, "token_limit"),
        ({"user": carol.pk, "spend_limit": "-1"}, "spend_limit"),
        ({"user": carol.pk, "token_limit": 5, "period": "week"}, "period"),
        ({"user": 99999, "token_limit": 5}, "user"),
        ({"user": "nobody", "token_limit": 5}, "user"),
        ({"key": 99999, "token_limit": 5}, "key"),
        ({"key": "abc", "token_limit": 5}, "key"),
        ({"user": carol.pk, "token_limit": 5, "colour": "red"}, "colour"),
    ]
    for values, field in cases:
        with pytest.raises(InvalidConfigError) as err:
            budgets.create_budget(**values)
        assert field in err.value.errors, values
    b = budgets.create_budget(user=carol, token_limit=5)
    k = budgets.create_budget(key=key, spend_limit="1.5", period="month")
    assert str(k) == f"apikey:{key.pk} $1.5000/month" or str(k).startswith(f"apikey:{key.pk} $1.5")
    with pytest.raises(ConflictError):
        budgets.create_budget(user=carol.pk, token_limit=7)
    month = budgets.create_budget(user=carol.pk, token_limit=7, period="month")
    with pytest.raises(ConflictError):
        budgets.update_budget(month.pk, {"period": "day"})
    with pytest.raises(InvalidConfigError):
        budgets.update_budget(b.pk, {"user": None})
    with pytest.raises(InvalidConfigError):
        budgets.update_budget(b.pk, {"token_limit": None})
    for bad in (12345, "x"):
        with pytest.raises(NotFound):
            budgets.update_budget(bad, {"enabled": False})
    assert AuditEvent.objects.filter(action__startswith="budget.").count() == 3


async def test_budget_rows_report_this_periods_use():
    store, now = MemoryStore(), 1_700_000_000.0
    state = MemoryStateBackend(now=lambda: now, store=store)
    b = Budget(pk=7, user_id=3, period="day", token_limit=100, spend_limit=Decimal("1.00"), enabled=True, note="")
    await state.spend("user:3", tokens=120, cost=0.25, period="day")
    (row,) = await budgets.budget_rows(state, [b])
    assert row == {
        "id": 7,
        "scope": "user",
        "user": 3,
        "key": None,
        "period": "day",
        "token_limit": 100,
        "spend_limit": "1.00",
        "enabled": True,
        "note": "",
        "used_tokens": 120,
        "used_spend": 0.25,
        "reserved_tokens": 0,
        "reserved_spend": 0.0,
        "remaining_tokens": 0,
        "remaining_spend": 0.75,
        "exceeded": True,
        "resets_at": "2023-11-15T00:00:00Z",
    }


async def test_gate_without_budgets_and_spend_failures(caplog):
    gate = BudgetGate()
    assert gate.key_blocker(MemoryStateBackend()) is None  # no key budgets: the pool is not slowed down
    assert gate.current.catalog.lookup("openai", "gpt-4o") is not None

    class Broken:
        async def settle(self, *a, **k):
            raise RuntimeError("down")

    from byok.budgets import Book, BudgetRule, Ticket
    from byok.state.quota import Hold, Reservation, place_holds

    gate._book = Book(Catalog(file_entries()), keys={1: (BudgetRule(1, "apikey:1", "day", 10, None),)})
    held = Reservation.new(0.0, (), 0, place_holds([Hold("user:1", "day", 10, None, 5, 0)], 0.0))
    usage = Usage(input_tokens=3, output_tokens=1)
    await gate.settle(Broken(), Ticket(held), key_id=None, kind="openai", usage=usage, cost=None)
    assert "could not settle" in caplog.text
    caplog.clear()
    await gate.settle(Broken(), None, key_id=1, kind="openai", usage=Usage(), cost=None)  # nothing to count
    await gate.settle(Broken(), None, key_id=2, kind="openai", usage=usage, cost=None)  # a key without budgets
    assert "could not settle" not in caplog.text
    await gate.settle(Broken(), None, key_id=1, kind="openai", usage=usage, cost=None)  # the key's budget counts
    assert "could not settle" in caplog.text


# -- spend reports -----------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_spend_summary_groups(django_user_model):
    carol = django_user_model.objects.create_user("carol", password="pw-123456789")
    day1 = datetime(2026, 11, 1, 12, tzinfo=UTC)

    def rec(i, provider, model, cost, at=day1, user=carol, key="fp1"):
        UsageRecord.objects.create(
            request_id=f"r{i}",
            created_at=at,
            user=user,
            provider_name=provider,
            model=model,
            key_fingerprint=key,
            status="ok",
            tokens_in=10,
            tokens_out=5,
            cost=cost,
        )

    rec(1, "openai", "gpt-4o", Decimal("0.001"))
    rec(2, "openai", "gpt-4o", Decimal("0.002"), at=day1 + timedelta(days=1))
    rec(3, "local", "m", None, key="fp2", user=None, at=day1 + timedelta(days=3))
    by_provider = {r["provider"]: r for r in spend_summary(by=["provider"])}
    assert by_provider["openai"] == {
        "provider": "openai",
        "requests": 2,
        "tokens_in": 20,
        "tokens_out": 10,
        "spend": "0.00300000",
        "unpriced": 0,
    }
    assert by_provider["local"]["spend"] == "0.00000000" and by_provider["local"]["unpriced"] == 1
    days = spend_summary(by=("day", "model"), since=day1 - timedelta(hours=1), until=day1 + timedelta(hours=1))
    assert days == [
        {
            "day": "2026-11-01",
            "model": "gpt-4o",
            "requests": 1,
            "tokens_in": 10,
            "tokens_out": 5,
            "spend": "0.00100000",
            "unpriced": 0,
        }
    ]
    assert {r["user"] for r in spend_summary(by=("user",))} == {carol.pk, None}
    assert {r["key"] for r in spend_summary(UsageRecord.objects.filter(provider_name="local"), by=("key",))} == {"fp2"}
    with pytest.raises(ValueError):
        spend_summary(by=("colour",))


# -- admin ---------------------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
def test_admin_budget_and_override_changes_are_audited_once(admin_browser, alice, django_user_model):
    carol = django_user_model.objects.create_user("carol", password="pw-123456789")
    response = admin_browser.post(
        reverse("admin:byok_budget_add"),
        {
            "user": str(carol.pk),
            "key": "",
            "period": "day",
            "token_limit": "1000",
            "spend_limit": "",
            "note": "",
            "enabled": "on",
        },
        REMOTE_ADDR="203.0.113.9",
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    budget = Budget.objects.get()
    page = admin_browser.get(reverse("admin:byok_budget_changelist")).content.decode()
    assert "0 tokens" in page and "resets" in page
    bad = admin_browser.post(
        reverse("admin:byok_budget_add"), {"user": str(carol.pk), "period": "day", "token_limit": "", "spend_limit": ""}
    )
    assert bad.status_code == 200 and "Set a token limit, a spend limit, or both." in bad.content.decode()
    response = admin_browser.post(
        reverse("admin:byok_catalogoverride_add"),
        {
            "provider": "openai",
            "model": "gpt-4o",
            "input_per_mtok": "2.00",
            "output_per_mtok": "8.00",
            "source": "",
            "note": "",
            "enabled": "on",
        },
    )
    assert response.status_code == 302, response.content.decode()[:2000]
    page = admin_browser.get(reverse("admin:byok_catalogoverride_changelist")).content.decode()
    assert "$2.00 / (shipped) / $8.00" in page  # the list: the override's prices; the page: the shipped figures
    override = CatalogOverride.objects.get(model="gpt-4o")
    page = admin_browser.get(reverse("admin:byok_catalogoverride_change", args=[override.pk])).content.decode()
    assert "window 128,000" in page
    assert "not in the shipped catalog" in admin_browser.get(reverse("admin:byok_catalogoverride_add")).content.decode()
    events = list(AuditEvent.objects.order_by("id").values_list("action", "actor"))
    assert events == [("budget.create", "alice"), ("catalog.override.create", "alice")]
    assert AuditEvent.objects.order_by("id").first().details["scope"] == budget.scope


@pytest.mark.django_db
def test_admin_spend_report(admin_browser, alice):
    from byok.gateway.usage import now_utc

    UsageRecord.objects.create(
        request_id="r1",
        created_at=now_utc(),
        user=alice,
        provider_name="openai",
        model="gpt-4o",
        key_fingerprint="fp1",
        status="ok",
        tokens_in=10,
        tokens_out=5,
        cost=Decimal("0.00123"),
    )
    page = admin_browser.get(reverse("admin:byok_spendreport_changelist") + "?days=7").content.decode()
    assert ">$0.0012</td>" in page and "alice" in page and "gpt-4o" in page  # the exact figure in its title
    assert admin_browser.get(reverse("admin:byok_spendreport_changelist") + "?days=x").status_code == 200


@pytest.mark.django_db
def test_admin_budget_usage_survives_a_state_outage(admin_browser, django_user_model, settings):
    carol = django_user_model.objects.create_user("carol", password="pw-123456789")
    budgets.create_budget(user=carol.pk, token_limit=5)
    settings.REDIS_URL = "redis://127.0.0.1:1/0"
    page = admin_browser.get(reverse("admin:byok_budget_changelist")).content.decode()
    assert "unavailable" in page
