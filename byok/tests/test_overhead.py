"""`x-byok-overhead-ms` on chat answers and on the usage record: byok's time, the upstream's excluded.

Through the real ASGI application with the upstream faked by respx and made
slow (200 ms): the answer takes longer than that, the overhead does not
include it, and the usage record carries the same figure as the header.
"""

from __future__ import annotations

import asyncio

import httpx
import pytest
import respx
from django.test import override_settings
from rest_framework.authtoken.models import Token

from byok import registry
from byok.gateway.handler import get_handler
from byok.models import UsageRecord
from byok.overhead import HEADER, time_in_byok_ms
from byok.tests.upstream_fakes import ANSWER, STREAM, UPSTREAM

pytestmark = [pytest.mark.django_db(transaction=True)]

SLOW_S = 0.2


@pytest.fixture
def auth(alice):
    registry.register_provider(
        kind="openai", name="up", api_key="sk-test-0123456789abcdef", default_model="gpt-4o-mini", max_retries=0
    )
    return {"Authorization": f"Bearer {Token.objects.create(user=alice).plaintext}"}


def _slow(response: httpx.Response):
    async def answer(request):
        await asyncio.sleep(SLOW_S)
        return response

    return answer


def _post(path: str, body: dict, headers: dict, *, warm: bool = True) -> httpx.Response:
    """POST through the ASGI app, after one warm-up request (the first loads configuration and catalog)."""
    from byok_project.asgi import application

    async def run():
        transport = httpx.ASGITransport(app=application)
        async with httpx.AsyncClient(transport=transport, base_url="http://127.0.0.1", timeout=30) as client:
            if warm:
                await client.post(path, json=body, headers=headers)
            response = await client.post(path, json=body, headers=headers)
            await get_handler().flush_usage()
            return response

    return asyncio.run(run())


def _record(request_id: str) -> UsageRecord:
    return UsageRecord.objects.get(request_id=request_id)


BODY = {"model": "up/gpt-4o-mini", "messages": [{"role": "user", "content": "Hi"}]}


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_chat_answer_says_what_byok_cost_without_the_upstreams_time(auth, path):
    respx.post(UPSTREAM).mock(side_effect=_slow(httpx.Response(200, json=ANSWER)))
    response = _post(path, BODY, auth)
    assert response.status_code == 200
    overhead = float(response.headers[HEADER])
    assert 0 < overhead < SLOW_S * 1000 / 2
    record = _record(response.headers["x-byok-request-id"])
    assert record.latency_ms >= SLOW_S * 1000
    assert record.overhead_ms == pytest.approx(overhead, abs=0.01)


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
@pytest.mark.parametrize("path", ["/v1/chat/completions", "/api/chat"])
def test_a_stream_says_what_byok_cost_up_to_its_first_token(auth, path):
    respx.post(UPSTREAM).mock(
        side_effect=_slow(httpx.Response(200, content=STREAM, headers={"content-type": "text/event-stream"}))
    )
    response = _post(path, {**BODY, "stream": True}, auth)
    assert response.status_code == 200 and "lo!" in response.text
    overhead = float(response.headers[HEADER])
    assert 0 < overhead < SLOW_S * 1000 / 2
    record = _record(response.headers["x-byok-request-id"])
    assert record.stream and record.ttft_ms >= SLOW_S * 1000
    assert record.overhead_ms == pytest.approx(overhead, abs=0.01)


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
@respx.mock
def test_an_upstream_failure_still_leaves_the_upstreams_time_out(auth):
    respx.post(UPSTREAM).mock(side_effect=_slow(httpx.Response(500, json={"error": {"message": "down"}})))
    response = _post("/v1/chat/completions", BODY, auth)
    assert response.status_code == 502
    assert 0 < float(response.headers[HEADER]) < SLOW_S * 1000 / 2
    record = UsageRecord.objects.order_by("-created_at", "-id").first()  # the second of two failures
    assert (
        UsageRecord.objects.count() == 2
        and record.status == "error"
        and record.overhead_ms == pytest.approx(float(response.headers[HEADER]), abs=0.01)
    )


@override_settings(ALLOWED_HOSTS=["127.0.0.1"])
def test_answers_that_reach_no_provider_carry_the_whole_time_in_byok(auth):
    refused = _post("/v1/chat/completions", BODY, {"Authorization": "Bearer nope"})
    invalid = _post("/api/chat", {"messages": 3}, auth)
    assert (refused.status_code, invalid.status_code) == (401, 422)
    for response in (refused, invalid):
        assert float(response.headers[HEADER]) > 0


def test_a_request_that_did_not_come_through_byoks_asgi_handler_has_spent_nothing_there():
    assert time_in_byok_ms(object()) == 0.0
