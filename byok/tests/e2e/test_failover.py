"""Failover through real processes: the openai SDK against daphne, the fake provider injecting faults.

What each test proves is in its name; the fake's recorder is the witness of
what byok actually sent upstream (which provider, which key, what happened).
"""

from __future__ import annotations

import openai
import pytest

from byok.tests.e2e import Cluster, cluster, db_rows, fake_fp, make_policy, records, register, uid
from devtools.fakeprovider.answer import filler_pieces, filler_text

MESSAGES = [{"role": "user", "content": "Say something about foxes."}]


@pytest.fixture(scope="module")
def live(request, tmp_path_factory) -> Cluster:
    return cluster(request, tmp_path_factory)


def sdk(server) -> openai.OpenAI:
    return openai.OpenAI(base_url=server.url + "/v1", api_key=server.admin_token, max_retries=0, timeout=30)


def _pair(live: Cluster, primary_cfg: str) -> tuple[str, str, str, str]:
    """A primary with an injected fault, a healthy fallback, and the policy joining them."""
    n = uid()
    primary, fallback = f"e2e-pri-{n}", f"e2e-fb-{n}"
    primary_key, fallback_key = f"sk-e2e-{n}-primary-0000", f"sk-e2e-{n}-fallback-0000"
    register(
        live.a,
        provider="openai",
        name=primary,
        base_url=f"{live.fake.url}/cfg/{primary_cfg}/v1",
        model="gpt-4o-mini",
        api_key=primary_key,
        max_retries=0,
    )
    register(
        live.a,
        provider="openai",
        name=fallback,
        base_url=f"{live.fake.url}/v1",
        model="gpt-4o-mini",
        api_key=fallback_key,
    )
    make_policy(live, f"e2e-{n}", primary, [fallback])
    return primary, fallback, primary_key, fallback_key


def test_a_503_from_the_primary_fails_over_to_the_fallback_provider(live):
    primary, fallback, primary_key, fallback_key = _pair(live, "fault=503")

    raw = sdk(live.a).chat.completions.with_raw_response.create(model=f"{primary}/gpt-4o-mini", messages=MESSAGES)

    completion = raw.parse()
    assert completion.choices[0].message.content == filler_text(8)
    assert raw.headers["x-byok-provider"] == fallback
    assert raw.headers["x-byok-attempts"] == "2"
    [refused] = records(live.fake, key_fp=fake_fp(primary_key))
    assert (refused["status"], refused["fault"], refused["outcome"]) == (503, "503", "fault")
    [served] = records(live.fake, key_fp=fake_fp(fallback_key))
    assert served["outcome"] == "completed" and served["path"].startswith("/v1/")


def test_a_stream_whose_primary_errors_before_the_first_token_fails_over_transparently(live):
    primary, fallback, primary_key, fallback_key = _pair(live, "fault=stream_error;fault_after=0")

    with sdk(live.a).chat.completions.with_streaming_response.create(
        model=f"{primary}/gpt-4o-mini",
        messages=MESSAGES,
        stream=True,
        stream_options={"include_usage": True},
    ) as response:
        assert response.headers["x-byok-provider"] == fallback
        chunks = list(response.parse())

    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == filler_text(8)
    assert [c.choices[0].finish_reason for c in chunks if c.choices and c.choices[0].finish_reason] == ["stop"]
    assert chunks[-1].usage is not None and chunks[-1].usage.completion_tokens == 8
    [broken] = records(live.fake, key_fp=fake_fp(primary_key))
    assert broken["fault"] == "stream_error" and broken["chunks_sent"] == 0
    assert [r["outcome"] for r in records(live.fake, key_fp=fake_fp(fallback_key))] == ["completed"]


@pytest.mark.parametrize(("suffix", "status_after"), [("r401", "invalid"), ("r429", "active")])
def test_a_key_the_provider_refuses_is_skipped_for_the_next_key_in_the_pool(live, suffix, status_after):
    n = uid()
    name, bad, good = f"e2e-pool-{n}", f"sk-e2e-{n}-bad-{suffix}", f"sk-e2e-{n}-good-0000"
    # retry_after=60: a 429 cools the key down for the whole test, so it is tried exactly once.
    provider = register(
        live.a,
        provider="openai",
        name=name,
        base_url=f"{live.fake.url}/cfg/retry_after=60/v1",
        model="gpt-4o-mini",
        api_key=bad,
        max_retries=0,
    )
    with live.a.admin() as admin:
        assert admin.post(f"/api/providers/{provider['id']}/keys", json={"api_key": good}).status_code == 201
    client = sdk(live.a)

    attempts = []
    for _ in range(5):
        raw = client.chat.completions.with_raw_response.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES)
        assert raw.parse().choices[0].message.content == filler_text(8)
        assert raw.headers["x-byok-provider"] == name
        attempts.append(raw.headers["x-byok-attempts"])

    assert attempts == ["2", "1", "1", "1", "1"]  # the bad key once (it was first in the pool), then never again
    [refused] = records(live.fake, key_fp=fake_fp(bad))
    assert refused["status"] == int(suffix[1:])
    assert [r["outcome"] for r in records(live.fake, key_fp=fake_fp(good))] == ["completed"] * 5
    with live.a.admin() as admin:
        keys = {k["fingerprint"][:12]: k for k in admin.get(f"/api/providers/{provider['id']}").json()["keys"]}
    assert keys[fake_fp(bad)]["status"] == status_after
    actions = [
        a
        for (a,) in db_rows(
            live.env,
            "SELECT action FROM byok_auditevent WHERE key_fingerprint = %s",
            (keys[fake_fp(bad)]["fingerprint"],),
        )
    ]
    expected = ["key.invalid"] if status_after == "invalid" else []
    assert sorted(a for a in actions if a != "provider.create") == expected


def test_a_provider_client_error_is_passed_on_without_failover(live):
    primary, fallback, primary_key, fallback_key = _pair(live, "fault=400")

    with pytest.raises(openai.BadRequestError) as caught:
        sdk(live.a).chat.completions.create(model=f"{primary}/gpt-4o-mini", messages=MESSAGES)

    assert caught.value.status_code == 400
    assert len(records(live.fake, key_fp=fake_fp(primary_key))) == 1
    assert records(live.fake, key_fp=fake_fp(fallback_key)) == []


def test_every_token_sent_before_an_in_stream_error_reaches_the_client(live):
    n = uid()
    name = f"e2e-partial-{n}"
    register(
        live.a,
        provider="openai",
        name=name,
        model="gpt-4o-mini",
        api_key=f"sk-e2e-{n}-partial-0000",
        base_url=f"{live.fake.url}/cfg/fault=stream_error;fault_after=3;delay_ms=20/v1",
        max_retries=0,
    )

    text = ""
    with pytest.raises(openai.APIError):
        for chunk in sdk(live.a).chat.completions.create(model=f"{name}/gpt-4o-mini", messages=MESSAGES, stream=True):
            if chunk.choices:
                text += chunk.choices[0].delta.content or ""

    assert text == "".join(filler_pieces(8, 0)[:3])
