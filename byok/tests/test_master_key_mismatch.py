"""A process whose master key cannot open a stored key answers JSON 503 `master_key_mismatch`, not HTML 500.

It logs one line naming the cause, keeps serving the keys it can read, accepts `BYOK_MASTER_KEY_PREVIOUS`
during a rollout, and `byok.models.undecryptable_key_count()` reports what it cannot read (for /readyz).
The live test starts real daphne processes on either side of a `rotate_master_key` run.
"""

from __future__ import annotations

import logging

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async
from django.test import AsyncClient

from byok import registry
from byok.crypto import SealedSecret, fernet_for
from byok.exceptions import MasterKeyMismatchError
from byok.models import ApiKey, undecryptable_key_count
from byok.providers.types import ChatRequest, Message
from byok.tests.live import drop_live_env, live_env, manage, start_daphne, start_fake_provider
from byok_project.envconfig import new_master_key

OPENAI = "https://api.openai.com/v1/chat/completions"
ANSWER = {
    "id": "x",
    "object": "chat.completion",
    "model": "gpt-4o",
    "choices": [{"index": 0, "message": {"role": "assistant", "content": "Hi"}, "finish_reason": "stop"}],
    "usage": {"prompt_tokens": 3, "completion_tokens": 1, "total_tokens": 4},
}
OLD_SECRET, NEW_SECRET = "sk-written-under-old-0123456789", "sk-written-under-new-0123456789"


@pytest.fixture
def two_keys(settings):
    """One provider with a key written under the old master key, then one under the new; the process runs on the new."""
    old, new = new_master_key(), new_master_key()
    settings.BYOK_MASTER_KEY, settings.BYOK_MASTER_KEY_PREVIOUS = old, ""
    provider = registry.register_provider(kind="openai", name="openai", api_key=OLD_SECRET)
    settings.BYOK_MASTER_KEY = new
    registry.add_key(provider.pk, NEW_SECRET)
    return old, new


def _ask() -> ChatRequest:
    return ChatRequest(model="openai/gpt-4o", messages=(Message(role="user", content="hi"),))


@pytest.mark.django_db(transaction=True)
async def test_the_keys_it_can_read_keep_serving_and_the_cause_is_logged_once(memory_handler, two_keys, caplog):
    assert await sync_to_async(undecryptable_key_count)() == 1
    ready = await AsyncClient().get("/readyz")
    assert ready.status_code == 503 and ready.json()["checks"]["master_key"]["ok"] is False
    with respx.mock, caplog.at_level(logging.ERROR, logger="byok.request"):
        route = respx.post(OPENAI).respond(200, json=ANSWER)
        for _ in range(3):
            await memory_handler.chat(_ask())
    assert {c.request.headers["authorization"] for c in route.calls} == {f"Bearer {NEW_SECRET}"}
    lines = [r.getMessage() for r in caplog.records if "master_key_mismatch" in r.getMessage()]
    assert len(lines) == 1 and "BYOK_MASTER_KEY" in lines[0] and OLD_SECRET not in lines[0]
    statuses = await sync_to_async(lambda: sorted(ApiKey.objects.values_list("status", flat=True)))()
    assert statuses == ["active", "active"]  # unreadable here is not invalid: another process may read it


@pytest.mark.django_db(transaction=True)
async def test_no_readable_key_is_a_503_master_key_mismatch(memory_handler, settings):
    settings.BYOK_MASTER_KEY, settings.BYOK_MASTER_KEY_PREVIOUS = new_master_key(), ""
    await sync_to_async(registry.register_provider)(kind="openai", name="openai", api_key=OLD_SECRET)
    settings.BYOK_MASTER_KEY = new_master_key()
    with respx.mock:
        route = respx.post(OPENAI).respond(200, json=ANSWER)
        with pytest.raises(MasterKeyMismatchError) as info:
            await memory_handler.chat(_ask())
    assert route.call_count == 0
    assert (info.value.status_code, info.value.code, info.value.retryable) == (503, "master_key_mismatch", True)


@pytest.mark.django_db
def test_the_previous_master_key_is_tried_after_the_current_one_and_writes_use_the_current(two_keys, settings):
    old, new = two_keys
    settings.BYOK_MASTER_KEY_PREVIOUS = old
    assert undecryptable_key_count() == 0
    assert sorted(k.secret.reveal() for k in ApiKey.objects.all()) == sorted([OLD_SECRET, NEW_SECRET])
    written = ApiKey.objects.get(
        hint=registry.add_key(ApiKey.objects.first().provider_id, "sk-third-0123456789abc").hint
    )
    assert written.secret.reveal(fernet_for(new)) == "sk-third-0123456789abc"
    with pytest.raises(Exception):
        written.secret.reveal(fernet_for(old))
    assert SealedSecret.seal("x").reveal(fernet_for(new)) == "x"


def test_an_invalid_previous_master_key_stops_start_up_by_name(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    root = Path(__file__).resolve().parents[2]
    env = {
        "DJANGO_SECRET_KEY": "x" * 50,
        "BYOK_MASTER_KEY": new_master_key(),
        "BYOK_MASTER_KEY_PREVIOUS": "nope",
        "PATH": "/usr/bin:/bin",
    }
    result = subprocess.run(
        [sys.executable, str(root / "manage.py"), "check"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode != 0 and "BYOK_MASTER_KEY_PREVIOUS must be 32 random bytes" in result.stderr


# -- real processes on either side of a rotation ---------------------------------------------------


def _chat(server, model: str) -> httpx.Response:
    with server.admin() as client:
        return client.post(
            "/v1/chat/completions", json={"model": model, "messages": [{"role": "user", "content": "hi"}]}
        )


def test_a_daphne_started_with_the_old_key_after_a_rotation(tmp_path):
    fake = start_fake_provider(tmp_path)
    env = live_env(tmp_path)
    old, new = env["BYOK_MASTER_KEY"], new_master_key()
    servers = []
    try:
        first = start_daphne(env, tmp_path)
        servers.append(first)
        with first.admin() as admin:
            created = admin.post(
                "/api/providers/register",
                json={
                    "provider": "openai",
                    "name": "p1",
                    "base_url": fake.url + "/v1",
                    "model": "gpt-4o-mini",
                    "api_key": "sk-p1-0123456789abcdef",
                },
            )
            assert created.status_code == 201, created.text
        assert _chat(first, "p1/gpt-4o-mini").status_code == 200
        first.stop()
        manage({**env, "BYOK_OLD_MASTER_KEY": old, "BYOK_NEW_MASTER_KEY": new}, "rotate_master_key")

        stale = start_daphne(env, tmp_path)  # a process not yet told about the rotation
        servers.append(stale)
        refused = [_chat(stale, "p1/gpt-4o-mini") for _ in range(2)]
        for response in refused:
            assert response.status_code == 503, response.text
            assert response.headers["content-type"].startswith("application/json")
            assert response.json()["error"]["code"] == "master_key_mismatch"
        with stale.admin() as admin:  # a key written by this process (under its own key) it can read
            assert (
                admin.post(
                    "/api/providers/register",
                    json={
                        "provider": "openai",
                        "name": "p2",
                        "base_url": fake.url + "/v1",
                        "model": "gpt-4o-mini",
                        "api_key": "sk-p2-0123456789abcdef",
                    },
                ).status_code
                == 201
            )
        assert _chat(stale, "p2/gpt-4o-mini").status_code == 200
        log = stale.log.read_text()
        assert log.count("master_key_mismatch:") == 1, log[-3000:]
        assert "sk-p1-0123456789abcdef" not in log
        stale.stop()

        rolling = start_daphne(env, tmp_path, extra_env={"BYOK_MASTER_KEY": new, "BYOK_MASTER_KEY_PREVIOUS": old})
        servers.append(rolling)
        assert _chat(rolling, "p1/gpt-4o-mini").status_code == 200  # under the new key
        assert _chat(rolling, "p2/gpt-4o-mini").status_code == 200  # still under the old one
    finally:
        for server in servers:
            server.stop()
        fake.stop()
        drop_live_env(env)
