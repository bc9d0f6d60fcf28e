"""Several handlers as several processes would run them: shared Redis state, PostgreSQL row locks.

Two `BYOKHandler` instances, each with its own Redis connection, stand for two
server processes: rate windows, cooldowns and configuration changes must be
shared through Redis. The concurrent-rotation test needs PostgreSQL's row
locks and runs in CI's PostgreSQL pass.
"""

from __future__ import annotations

import os
import threading
import uuid

import pytest
import redis
import respx
from asgiref.sync import sync_to_async
from django.db import connection

from byok import registry
from byok.exceptions import RateLimitedError
from byok.gateway.handler import BYOKHandler
from byok.models import ApiKey, AuditEvent
from byok.signals import config_changed
from byok.state import get_state_backend
from byok.tests.conftest import FakeTime
from byok.tests.upstream_fakes import OPENAI, ask, openai_json

REDIS_URL = os.environ.get("BYOK_TEST_REDIS_URL", "redis://127.0.0.1:6379/15")
pytestmark = pytest.mark.redis


@pytest.fixture
def redis_settings(settings):
    try:
        redis.Redis.from_url(REDIS_URL, socket_timeout=2).ping()
    except redis.RedisError as exc:  # a missing service fails the run, never skips it
        pytest.fail(f"Redis is not reachable at {REDIS_URL}: {exc}")
    prefix = f"byok-test-{uuid.uuid4().hex[:8]}:"
    settings.REDIS_URL = REDIS_URL
    settings.BYOK = {**settings.BYOK, "STATE_PREFIX": prefix}
    yield prefix
    client = redis.Redis.from_url(REDIS_URL)
    for key in client.scan_iter(f"{prefix}*"):
        client.delete(key)


def _process(fake_time: FakeTime, prefix: str, *, listens: bool = True) -> BYOKHandler:
    handler = BYOKHandler(
        state_factory=lambda: get_state_backend(REDIS_URL, prefix=prefix, now=fake_time.wall),
        clock=fake_time.mono,
        wall=fake_time.wall,
        sleep=fake_time.sleep,
        rand=lambda: 0.5,
    )
    if not listens:  # another process hears of changes only through Redis
        config_changed.disconnect(handler._on_config_changed)
    return handler


@pytest.mark.django_db(transaction=True)
class TestSharedThroughRedis:
    async def test_an_rpm_limit_holds_across_two_processes(self, redis_settings):
        fake_time = FakeTime()
        a, b = _process(fake_time, redis_settings), _process(fake_time, redis_settings)
        await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-shared-0123456789abcdef", default_model="gpt-4o", key_options={"rpm": 3}
        )
        served, refused = 0, 0
        with respx.mock:
            respx.post(OPENAI).respond(200, json=openai_json())
            for i in range(8):
                try:
                    await (a if i % 2 else b).chat(ask())
                    served += 1
                except RateLimitedError:
                    refused += 1
        assert (served, refused) == (3, 5)

    async def test_a_cooldown_in_one_process_is_respected_by_the_other(self, redis_settings):
        fake_time = FakeTime()
        a, b = _process(fake_time, redis_settings), _process(fake_time, redis_settings)
        await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-cool-0123456789abcdef", default_model="gpt-4o"
        )
        with respx.mock:
            route = respx.post(OPENAI).respond(
                429,
                headers={"retry-after": "30"},
                json={"error": {"message": "slow down", "code": "rate_limit_exceeded"}},
            )
            with pytest.raises(RateLimitedError):
                await a.chat(ask())
            with pytest.raises(RateLimitedError) as info:
                await b.chat(ask())
        assert route.call_count == 1  # b never sent: the key was cooling down in the shared state
        assert 29 <= info.value.retry_after <= 30

    async def test_a_revoke_in_one_process_reaches_the_other_within_a_second(self, redis_settings):
        fake_time = FakeTime()
        b = _process(fake_time, redis_settings, listens=False)
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-first-0123456789abcdef", default_model="gpt-4o"
        )
        second = await sync_to_async(registry.add_key)(provider.pk, "sk-second-0123456789abcdef")
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json())
            await b.chat(ask())  # b has loaded and cached the configuration
            first = await sync_to_async(lambda: provider.keys.order_by("id").first())()
            await sync_to_async(registry.revoke_key)(provider.pk, first.pk)  # "process a" revokes
            fake_time.now += 0.6  # b polls the shared version at most every 0.5 s
            for _ in range(4):
                await b.chat(ask())
        used_after = {c.request.headers["authorization"] for c in route.calls[1:]}
        assert used_after == {"Bearer sk-second-0123456789abcdef"}
        assert second.status == "active"


@pytest.mark.postgres  # row locks are PostgreSQL's
@pytest.mark.django_db(transaction=True)
def test_concurrent_rotations_leave_one_active_key_and_one_event_each():
    provider = registry.register_provider(kind="openai", api_key="sk-start-0123456789abcdef")
    errors: list[BaseException] = []
    barrier = threading.Barrier(6)

    def rotate(i: int) -> None:
        try:
            barrier.wait(timeout=10)
            registry.rotate_key(provider.pk, f"sk-rotated-{i}-0123456789abcdef")
        except BaseException as exc:  # collected and asserted below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=rotate, args=(i,)) for i in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=30)
    assert errors == []
    statuses = sorted(ApiKey.objects.filter(provider=provider).values_list("status", flat=True))
    assert statuses == ["active"] + ["retired"] * 6
    assert AuditEvent.objects.filter(action="key.rotate").count() == 6
