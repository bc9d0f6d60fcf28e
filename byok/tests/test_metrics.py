"""`/metrics`: chats through the real ASGI app (upstream faked by respx), then the exposition parsed by
prometheus_client's own parser; who may scrape; bounded label values; the key gauges read at scrape time.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from django.test import override_settings
from prometheus_client.parser import text_string_to_metric_families
from rest_framework.authtoken.models import Token

from byok import metrics, registry
from byok.gateway import handler as handler_module
from byok.gateway.handler import get_handler
from byok.models import ApiKey
from byok.state import key_scope
from byok.tests.upstream_fakes import ANSWER, STREAM, UPSTREAM

pytestmark = [pytest.mark.django_db(transaction=True)]

BODY = {"model": "up/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


@pytest.fixture(autouse=True)
def fresh_handler(monkeypatch):
    monkeypatch.setattr(handler_module, "_handler", None)


@pytest.fixture
def auth(alice):
    registry.register_provider(
        kind="openai", name="up", api_key="sk-test-0123456789abcdef", default_model="gpt-4o-mini", max_retries=2
    )
    return {"Authorization": f"Bearer {Token.objects.create(user=alice).plaintext}"}


def _run(calls, *, client=("127.0.0.1", 4000)):
    """Run `calls(http)` against the ASGI app; its result."""
    from byok_project.asgi import application

    async def run():
        transport = httpx.ASGITransport(app=application, client=client)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30) as http:
            result = await calls(http)
            await get_handler().flush_usage()
            return result

    return asyncio.run(run())


def scrape(headers=None, client=("127.0.0.1", 4000)) -> dict[tuple[str, tuple], float]:
    """GET /metrics; every sample as {(name, sorted labels): value}, parsed by prometheus_client."""

    async def get(http):
        return await http.get("/metrics", headers=headers or {})

    response = _run(get, client=client)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain; version=0.0.4")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(response.text)
        for s in family.samples
    }


def value(samples, name, **labels) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def _chats(auth, *bodies):
    async def calls(http):
        return [await http.post(path, json=body, headers=auth) for path, body in bodies]

    return _run(calls)


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_a_chat_of_each_kind_is_counted_with_its_tokens_latency_and_overhead(auth):
    respx.post(UPSTREAM).mock(
        side_effect=[
            httpx.Response(200, json=ANSWER),
            httpx.Response(200, content=STREAM, headers={"content-type": "text/event-stream"}),
            httpx.Response(200, json=ANSWER),
        ]
    )
    before = scrape()
    answers = _chats(
        auth,
        ("/v1/chat/completions", BODY),
        ("/v1/chat/completions", {**BODY, "stream": True}),
        ("/api/chat", {"provider": "up", "messages": BODY["messages"]}),
    )
    assert [a.status_code for a in answers] == [200, 200, 200]
    after = scrape()
    ok = {"provider": "up", "model": "gpt-4o-mini", "status": "200", "outcome": "ok"}
    assert (
        value(after, "byok_requests_total", dialect="openai", **ok)
        - value(before, "byok_requests_total", dialect="openai", **ok)
        == 2
    )
    assert (
        value(after, "byok_requests_total", dialect="rest", **ok)
        - value(before, "byok_requests_total", dialect="rest", **ok)
        == 1
    )
    tokens = {"provider": "up", "model": "gpt-4o-mini"}
    assert (
        value(after, "byok_tokens_total", direction="in", **tokens)
        - value(before, "byok_tokens_total", direction="in", **tokens)
        >= 6
    )  # 3 prompt tokens in each complete answer
    assert value(after, "byok_cost_usd_total", **tokens) > value(before, "byok_cost_usd_total", **tokens)
    for name, labels, n in (
        ("byok_request_duration_seconds_count", {"dialect": "openai", "provider": "up"}, 2),
        ("byok_time_to_first_token_seconds_count", {"dialect": "openai", "provider": "up"}, 1),  # the stream
        ("byok_overhead_seconds_count", {"dialect": "openai"}, 2),
    ):
        assert value(after, name, **labels) - value(before, name, **labels) == n, name
    assert (
        value(after, "byok_upstream_attempts_total", provider="up", result="ok")
        - value(before, "byok_upstream_attempts_total", provider="up", result="ok")
        == 3
    )
    assert value(after, "byok_usage_queue_depth") == 0  # written by the time of the scrape
    assert value(after, "byok_keys_usable", provider="up") == 1
    assert value(after, "byok_keys", provider="up", status="active") == 1


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_retries_failovers_and_rejections_are_counted(auth):
    respx.post(UPSTREAM).mock(
        side_effect=[httpx.Response(500, json={"error": {"message": "boom"}}), httpx.Response(200, json=ANSWER)]
    )
    before = scrape()
    huge = {**BODY, "messages": [{"role": "user", "content": "word " * 140_000}]}  # over 128k tokens
    answers = _chats(auth, ("/v1/chat/completions", BODY), ("/v1/chat/completions", huge))
    assert [a.status_code for a in answers] == [200, 400]
    after = scrape()

    def grew(name, **labels):
        return value(after, name, **labels) - value(before, name, **labels)

    assert grew("byok_upstream_attempts_total", provider="up", result="server") == 1
    assert grew("byok_upstream_retries_total", provider="up") == 1
    assert grew("byok_rejections_total", dialect="openai", reason="context_length_exceeded") == 1
    refused = {
        "dialect": "openai",
        "provider": "none",
        "model": "other",
        "status": "400",
        "outcome": "error",
    }  # before routing
    assert grew("byok_requests_total", **refused) == 1


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_label_values_are_bounded_to_the_configuration(auth):
    respx.post(UPSTREAM).mock(return_value=httpx.Response(200, json=ANSWER))
    odd = {**BODY, "model": "up/a-model-no-catalog-knows-7f3a"}
    unknown = {**BODY, "model": "no-such-provider-9c1e/gpt-4o"}
    answers = _chats(auth, ("/v1/chat/completions", odd), ("/v1/chat/completions", unknown))
    assert [a.status_code for a in answers] == [200, 404]
    samples = scrape()
    text = repr(samples)
    assert "a-model-no-catalog-knows-7f3a" not in text and "no-such-provider-9c1e" not in text
    names = {label for _, labels in samples for label, _ in labels}
    assert not names & {"user", "user_id", "key", "key_id", "token"}  # no per-user or per-key series
    assert value(
        samples, "byok_requests_total", dialect="openai", provider="up", model="other", status="200", outcome="ok"
    )
    assert value(
        samples, "byok_requests_total", dialect="openai", provider="none", model="other", status="404", outcome="error"
    )


def test_a_failover_is_counted_against_the_provider_left_behind():
    from byok.gateway.failover import Attempt
    from byok.gateway.usage import UsageEntry, now_utc

    entry = UsageEntry("r", now_utc(), None, "openai", False, model="m", provider_name="spare", status="ok")
    attempts = [Attempt("first", "k", 503, "server", 1.0), Attempt("first", "k", 503, "server", 1.0)]
    attempts.append(Attempt("spare", "k", 200, None, 1.0))
    before = [c.labels(p)._value.get() for c, p in ((metrics.RETRIES, "first"), (metrics.FAILOVERS, "first"))]
    metrics.observe_request(entry, attempts, configured={"first", "spare"}, model_known=False, http_status="200")
    after = [c.labels(p)._value.get() for c, p in ((metrics.RETRIES, "first"), (metrics.FAILOVERS, "first"))]
    assert after == [before[0] + 1, before[1] + 1]


def test_bounded_helpers():
    assert metrics.bounded_provider("", {"a"}) == "none"
    assert metrics.bounded_provider("a", {"a"}) == "a"
    assert metrics.bounded_provider("zz", {"a"}) == "other"
    assert metrics.bounded_model("m", False) == "other" and metrics.bounded_model("m", True) == "m"
    assert metrics.http_status_of("cancelled", None) == "499"
    assert metrics.http_status_of("error", RuntimeError()) == "500"


def test_a_rejection_outside_the_handler_is_counted_with_a_bounded_reason():
    before = metrics.REJECTED.labels("anthropic", "invalid_key")._value.get()
    metrics.rejected("anthropic", "invalid_key")
    metrics.rejected("anthropic", "made-up-by-a-client")
    assert metrics.REJECTED.labels("anthropic", "invalid_key")._value.get() == before + 1
    assert metrics.REJECTED.labels("anthropic", "other")._value.get() >= 1


def test_key_gauges_show_cooling_parked_and_invalid_keys(alice):
    provider = registry.register_provider(
        kind="openai", name="pool", api_key="sk-pool-a-0123456789abcdef", default_model="gpt-4o-mini"
    )
    second = registry.add_key(provider.pk, "sk-pool-b-0123456789abcdef")
    third = registry.add_key(provider.pk, "sk-pool-c-0123456789abcdef")
    ApiKey.objects.filter(pk=third.pk).update(status=ApiKey.Status.INVALID)

    async def cool(http):
        await get_handler().state().cooldown(key_scope(second.pk), get_handler().wall() + 600)

    _run(cool)
    samples = scrape()
    assert value(samples, "byok_keys", provider="pool", status="active") == 2
    assert value(samples, "byok_keys", provider="pool", status="invalid") == 1
    assert value(samples, "byok_keys_cooling_down", provider="pool") == 1
    assert value(samples, "byok_keys_usable", provider="pool") == 1


# -- who may scrape ----------------------------------------------------------------------------------


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@pytest.mark.parametrize(
    "client, headers, status",
    [
        (("10.1.2.3", 5000), {}, 401),
        (("127.0.0.1", 5000), {"X-Forwarded-For": "203.0.113.9"}, 401),  # relayed by a proxy: not loopback
        (("10.1.2.3", 5000), {"Authorization": "Bearer wrong-token"}, 403),
        (("10.1.2.3", 5000), {"Authorization": "Token metrics-secret-123"}, 403),
        (("10.1.2.3", 5000), {"Authorization": "Bearer metrics-secret-123"}, 200),
        (("::1", 5000), {}, 200),
    ],
)
def test_access_is_loopback_or_the_metrics_token(monkeypatch, client, headers, status):
    monkeypatch.setenv("BYOK_METRICS_TOKEN", "metrics-secret-123")

    async def get(http):
        return await http.get("/metrics", headers=headers)

    response = _run(get, client=client)
    assert response.status_code == status
    if status != 200:
        body = response.json()
        assert body["code"] in ("unauthenticated", "forbidden") and body["message"]
        assert "metrics-secret-123" not in response.text


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_without_a_configured_token_no_bearer_is_accepted(monkeypatch):
    monkeypatch.delenv("BYOK_METRICS_TOKEN", raising=False)

    async def get(http):
        return await http.get("/metrics", headers={"Authorization": "Bearer "})

    assert _run(get, client=("10.1.2.3", 5000)).status_code == 403


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_only_get(monkeypatch):
    async def post(http):
        return await http.post("/metrics")

    response = _run(post)
    assert response.status_code == 405 and response.json()["code"] == "method_not_allowed"
    assert response.headers["allow"] == "GET, HEAD"


# -- websockets ----------------------------------------------------------------------------------------


async def test_websocket_connections_go_up_when_accepted_and_down_when_closed():
    gate = asyncio.Event()

    async def app(scope, receive, send):
        await send({"type": "websocket.accept"})
        await gate.wait()

    async def refusing(scope, receive, send):
        await send({"type": "websocket.close"})

    async def send(message):
        pass

    start = metrics.WEBSOCKETS._value.get()
    task = asyncio.create_task(metrics.track_websockets(app)({"type": "websocket"}, None, send))
    await metrics.track_websockets(refusing)({"type": "websocket"}, None, send)
    await asyncio.sleep(0)
    assert metrics.WEBSOCKETS._value.get() == start + 1
    gate.set()
    await task
    assert metrics.WEBSOCKETS._value.get() == start


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_every_dialect_is_counted_by_construction(auth):
    """The Anthropic and Responses front ends count with no code of their own: the handler's end does it."""
    respx.post(UPSTREAM).mock(return_value=httpx.Response(200, json=ANSWER))
    before = scrape()
    answers = _chats(
        auth,
        ("/v1/messages", {"model": "up/gpt-4o-mini", "max_tokens": 50, "messages": BODY["messages"]}),
        ("/v1/responses", {"model": "up/gpt-4o-mini", "input": "Hi"}),
    )
    assert [a.status_code for a in answers] == [200, 200], [a.text for a in answers]
    after = scrape()
    ok = {"provider": "up", "model": "gpt-4o-mini", "status": "200", "outcome": "ok"}
    for dialect in ("anthropic", "responses"):
        grew = value(after, "byok_requests_total", dialect=dialect, **ok) - value(
            before, "byok_requests_total", dialect=dialect, **ok
        )
        assert grew == 1, dialect


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_a_gateway_key_refused_before_the_handler_is_a_rejection_of_its_dialect(db):
    from byok.ws.auth import user_for_key

    bogus = "byok_" + "a" * 49  # the shape of a key, but no such key
    before = scrape()

    async def calls(http):
        answer = await http.post("/v1/messages", json=BODY, headers={"x-api-key": bogus})
        assert await user_for_key(bogus) is None
        return answer

    assert _run(calls).status_code == 401
    after = scrape()
    for dialect in ("anthropic", "websocket"):
        grew = value(after, "byok_rejections_total", dialect=dialect, reason="invalid_key") - value(
            before, "byok_rejections_total", dialect=dialect, reason="invalid_key"
        )
        assert grew == 1, dialect
    assert metrics.dialect_of("/v1/responses") == "responses" and metrics.dialect_of("/admin/") == "other"
