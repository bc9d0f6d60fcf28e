"""`POST /v1/embeddings` with the official `openai` SDK against a real daphne serving byok, providers of kinds
openai, gemini, a rate-limited openai key pool and anthropic on the fake upstream (its embeddings endpoints)."""

from __future__ import annotations

import time
import uuid

import openai
import pytest

from byok.tests.live import drop_live_env, live_env, manage, start_daphne, start_fake_provider
from devtools.fakeprovider.embeddings import vector

pytestmark = pytest.mark.live

_SHELL = """
from django.contrib.auth.models import User
from rest_framework.authtoken.models import Token
from byok import registry
user = User.objects.create_user("erin")
print("TOKEN", Token.objects.create(user=user).plaintext)
p = registry.register_provider(kind="openai", name="pool", base_url="{fake}/v1", default_model="gpt-x",
                               api_key="sk-live-pool-0123456789abcdef-r429", max_retries=0)
registry.add_key(p.pk, api_key="sk-live-pool-good-0123456789abcdef")
"""
_RECORDS = """
from byok.models import UsageRecord
for r in UsageRecord.objects.filter(interface="embeddings").order_by("id"):
    print("ROW", r.provider_name, r.model, r.tokens_in, r.attempts, r.status)
"""


@pytest.fixture(scope="module")
def live(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("embed-live")
    fake = start_fake_provider(tmp)
    env = live_env(tmp)
    server = start_daphne(env, tmp, extra_env={"BYOK_STATE_PREFIX": f"byok-embed-live-{uuid.uuid4().hex[:8]}:"})
    try:
        with server.admin() as admin:
            for kind, name, base in (
                ("openai", "oai", "/v1"),
                ("gemini", "gem", "/v1beta"),
                ("anthropic", "claude", "/anthropic"),
            ):
                body = {"provider": kind, "name": name, "model": "m", "base_url": fake.url + base}
                r = admin.post("/api/providers/register", json={**body, "api_key": f"sk-live-{name}-0123456789abcdef"})
                assert r.status_code == 201, r.text
        out = manage(env, "shell", "-c", _SHELL.replace("{fake}", fake.url))
        token = next(line.split()[1] for line in out.splitlines() if line.startswith("TOKEN "))
        with openai.OpenAI(base_url=server.url + "/v1", api_key=token, max_retries=0, timeout=20) as client:
            yield env, fake, client
    finally:
        server.stop()
        fake.stop()
        drop_live_env(env)


def test_openai_string_and_list_input_base64_decoded_by_the_sdk(live):
    _, _, client = live
    one = client.embeddings.create(model="oai/text-embedding-3-small", input="hello")  # the SDK asks base64
    assert one.data[0].embedding == pytest.approx(vector("hello", "text-embedding-3-small", 1536), abs=1e-6)
    many = client.embeddings.create(
        model="oai/text-embedding-3-small", input=["a", "b"], dimensions=8, encoding_format="float"
    )
    assert [len(d.embedding) for d in many.data] == [8, 8] and [d.index for d in many.data] == [0, 1]
    assert many.data[1].embedding == pytest.approx(vector("b", "text-embedding-3-small", 8))
    assert many.model == "oai/text-embedding-3-small" and many.usage.prompt_tokens == 2


def test_gemini_through_batch_embed_contents(live):
    _, fake, client = live
    got = client.embeddings.create(model="gem/gemini-embedding-001", input=["x", "yz"], dimensions=16)
    assert got.data[1].embedding == pytest.approx(vector("yz", "gemini-embedding-001", 16), abs=1e-6)
    with fake.control() as c:
        seen = [r for r in c.get("/_control/requests").json() if r["path"].endswith(":batchEmbedContents")]
    assert seen and seen[-1]["body"]["requests"][0]["outputDimensionality"] == 16


def test_anthropic_is_a_400_and_a_429_key_fails_over_to_the_next(live):
    env, _, client = live
    with pytest.raises(openai.BadRequestError) as refused:
        client.embeddings.create(model="claude/anything", input="x")
    assert refused.value.code == "embeddings_not_supported"
    attempts = []
    for _ in range(6):  # the pool picks either key first; the rate-limited one answers 429 -> the other key
        raw = client.embeddings.with_raw_response.create(model="pool/text-embedding-3-small", input="q")
        assert raw.parse().data[0].embedding
        attempts.append(raw.headers["x-byok-attempts"])
        if attempts[-1] == "2":
            break
    assert attempts[-1] == "2", attempts
    for _ in range(50):  # the usage writer flushes in the background
        rows = [line.split()[1:] for line in manage(env, "shell", "-c", _RECORDS).splitlines() if line[:4] == "ROW "]
        if any(r[0] == "pool" for r in rows):
            break
        time.sleep(0.2)
    assert ["pool", "text-embedding-3-small", "1", "2", "ok"] in rows
    assert any(r[0] == "gem" and r[1] == "gemini-embedding-001" for r in rows)
