"""byok.catalog: the shipped model catalog, admin overrides, unknown models, and cost arithmetic per provider."""

from __future__ import annotations

import json
from decimal import Decimal

import pytest
import respx
from asgiref.sync import sync_to_async

from byok import catalog_overrides as cat
from byok.audit import Actor
from byok.catalog import CATALOG_PATH, Catalog, ModelInfo, file_entries
from byok.catalog_overrides import catalog_rows, load_catalog
from byok.exceptions import ConflictError, InvalidConfigError, NotFound
from byok.models import AuditEvent, CatalogOverride, UsageRecord
from byok.providers.anthropic_stream import read_usage
from byok.providers.types import Usage
from byok.tests.providers.replay import corpus_case
from byok.tests.upstream_fakes import OPENAI, ask, register

ADMIN = Actor("alice", "203.0.113.9")


def file_catalog() -> Catalog:
    return Catalog(file_entries())


# -- the shipped file ---------------------------------------------------------------------------------


def test_the_file_covers_each_provider_with_dated_sourced_figures():
    entries = file_entries()
    raw = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    assert len(entries) == len(raw["models"])
    by_kind = {}
    for e in entries:
        by_kind.setdefault(e.provider, []).append(e.model)
        assert e.as_of and e.source.startswith("https://"), e.model
        if e.mode == "embedding":  # input only: priced per input token, no output
            assert e.context_window > 0 and e.max_output_tokens is None and e.output_per_mtok == 0, e.model
            assert e.input_per_mtok > 0, e.model
            continue
        assert e.mode == "chat", e.model
        assert e.context_window > 0 and 0 < e.max_output_tokens <= e.context_window, e.model
        assert e.input_per_mtok > 0 and e.output_per_mtok > 0, e.model
        assert e.cached_input_per_mtok is None or e.cached_input_per_mtok <= e.input_per_mtok, e.model
        if e.max_input_tokens:
            assert e.max_input_tokens < e.context_window
    assert {"gpt-4o", "gpt-4o-mini", "gpt-4.1", "gpt-4.1-mini", "gpt-4.1-nano", "o3", "o4-mini"} <= set(
        by_kind["openai"]
    )
    assert {"claude-sonnet-4", "claude-opus-4-1", "claude-haiku-4-5", "claude-3-5-haiku"} <= set(by_kind["anthropic"])
    assert {"gemini-2.0-flash", "gemini-2.5-flash", "gemini-2.5-pro"} <= set(by_kind["gemini"])
    assert {"deepseek-chat", "deepseek-reasoner"} <= set(by_kind["deepseek"])


@pytest.mark.parametrize(
    "kind,asked,found",
    [
        ("openai", "gpt-4o", "gpt-4o"),
        ("openai", "gpt-4o-2024-08-06", "gpt-4o"),
        ("openai", "GPT-4o-mini", "gpt-4o-mini"),
        ("openai", "gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("openai", "chatgpt-4o-latest", "gpt-4o"),
        ("openai", "gpt-4o-audio-preview", None),  # a different model, not a snapshot
        ("openai", "gpt-4.1-nano", "gpt-4.1-nano"),
        ("anthropic", "claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("anthropic", "claude-sonnet-4", "claude-sonnet-4"),
        ("anthropic", "claude-3-opus-20240229", "claude-3-opus"),
        ("anthropic", "claude-x", None),
        ("gemini", "models/gemini-2.0-flash-001", "gemini-2.0-flash"),
        ("gemini", "gemini-2.5-pro", "gemini-2.5-pro"),
        ("deepseek", "deepseek-reasoner", "deepseek-reasoner"),
        ("openai", "deepseek-chat", None),  # names are per provider kind
        ("openai_compatible", "gpt-4o", None),  # another endpoint's prices are its own
        ("openai", "", None),
    ],
)
def test_lookup(kind, asked, found):
    info = file_catalog().lookup(kind, asked)
    assert (info.model if info else None) == found


def test_to_dict_is_json_ready():
    row = file_catalog().lookup("gemini", "gemini-2.5-pro").to_dict()
    json.dumps(row)
    assert row["input_per_mtok"] == "1.25" and row["tiers"][0]["above_input_tokens"] == 200000
    assert row["origin"] == "file"


# -- cost arithmetic ---------------------------------------------------------------------------------------


def cost(kind: str, model: str, **usage) -> Decimal | None:
    return file_catalog().cost(kind, model, Usage(**usage))


def test_cost_openai_with_cached_input():
    # gpt-4o: $2.50 in, $1.25 cached, $10 out per 1M. 600 fresh + 400 cached in, 500 out.
    assert cost(
        "openai", "gpt-4o-2024-08-06", input_tokens=1000, output_tokens=500, cached_input_tokens=400
    ) == Decimal("0.00700000")
    assert cost("openai", "gpt-4o", input_tokens=1000, output_tokens=500) == Decimal("0.00750000")


def test_cost_openai_reasoning_is_already_in_the_output():
    # o4-mini: $1.10 in, $4.40 out; completion_tokens (2000) include the 1500 reasoning tokens.
    assert cost("openai", "o4-mini", input_tokens=100, output_tokens=2000, reasoning_tokens=1500) == Decimal(
        "0.00891000"
    )


def test_cost_anthropic_with_cache_reads():
    # claude-sonnet-4: $3 in, $0.30 cache read, $15 out. input_tokens include the 2000 cache reads.
    assert cost(
        "anthropic", "claude-sonnet-4-20250514", input_tokens=10000, output_tokens=1000, cached_input_tokens=2000
    ) == Decimal("0.03960000")
    # Over 200K prompt tokens the long-context tier applies: $6 in, $22.50 out.
    assert cost("anthropic", "claude-sonnet-4", input_tokens=300_000, output_tokens=1000) == Decimal("1.82250000")


def test_cost_anthropic_cache_writes_by_ttl():
    # claude-sonnet-4: $3 in, $0.30 cache read, $15 out; writes 1.25x input (5 minutes), 2x (one hour).
    # 10,000 prompt tokens: 1,000 read, 4,000 written (1,000 of them for an hour), 5,000 plain; 1,000 out.
    got = cost(
        "anthropic",
        "claude-sonnet-4",
        input_tokens=10000,
        output_tokens=1000,
        cached_input_tokens=1000,
        cache_creation_input_tokens=4000,
        cache_creation_1h_input_tokens=1000,
    )
    # 5000 * 3 + 1000 * 0.30 + 3000 * 3.75 + 1000 * 6 + 1000 * 15 = 47,550 micro-dollars
    assert got == Decimal("0.04755000")
    # Usage read straight from an Anthropic answer prices the same way.
    usage = read_usage(
        {
            "input_tokens": 5000,
            "cache_read_input_tokens": 1000,
            "cache_creation_input_tokens": 4000,
            "cache_creation": {"ephemeral_5m_input_tokens": 3000, "ephemeral_1h_input_tokens": 1000},
            "output_tokens": 1000,
        }
    )
    assert usage is not None and file_catalog().cost("anthropic", "claude-sonnet-4", usage) == got


def test_cost_gemini_counts_thinking_tokens_as_output():
    # gemini-2.5-flash: $0.30 in, $2.50 out; candidates 200 + thoughts 300 are both billed as output.
    assert cost("gemini", "gemini-2.5-flash", input_tokens=1000, output_tokens=200, reasoning_tokens=300) == Decimal(
        "0.00155000"
    )
    # gemini-2.5-pro above 200K prompt tokens: $2.50 in, $0.25 cached, $15 out.
    assert cost(
        "gemini", "gemini-2.5-pro", input_tokens=300_000, output_tokens=1000, cached_input_tokens=100_000
    ) == Decimal("0.54000000")
    assert cost("gemini", "gemini-2.5-pro", input_tokens=1000, output_tokens=100) == Decimal("0.00225000")


def test_cost_without_a_cached_rate_bills_cached_tokens_as_input():
    # gemini-2.0-flash-lite has no context caching: $0.075 in for all 1000 tokens, $0.30 out.
    assert cost(
        "gemini", "gemini-2.0-flash-lite", input_tokens=1000, output_tokens=100, cached_input_tokens=500
    ) == Decimal("0.00010500")


def test_cost_deepseek_cache_hits():
    # deepseek-reasoner: $0.28 miss, $0.028 hit, $0.42 out (reasoning included in completion_tokens).
    assert cost(
        "deepseek", "deepseek-reasoner", input_tokens=1000, output_tokens=2000, cached_input_tokens=800
    ) == Decimal("0.00091840")


def test_cost_of_unknown_models_or_prices_is_none():
    assert cost("openai_compatible", "meta-llama/Llama-3", input_tokens=10, output_tokens=10) is None
    unpriced = Catalog([ModelInfo(provider="openai", model="limits-only", context_window=1000, max_output_tokens=100)])
    assert unpriced.cost("openai", "limits-only", Usage(input_tokens=5)) is None
    # Cached counts larger than the prompt (a provider quirk) never make the cost negative.
    assert cost("openai", "gpt-4o", input_tokens=10, output_tokens=0, cached_input_tokens=50) == Decimal("0.00001250")


# -- overrides ------------------------------------------------------------------------------------------


@pytest.mark.django_db
def test_override_adds_a_model_the_file_does_not_know():
    assert load_catalog().lookup("openai_compatible", "llama-3-70b") is None
    cat.create_override(
        provider="openai_compatible",
        model="llama-3-70b",
        context_window=8192,
        max_output_tokens=2048,
        input_per_mtok="0.59",
        output_per_mtok="0.79",
        source="https://example.org/prices",
        actor=ADMIN,
    )
    info = load_catalog().lookup("openai_compatible", "llama-3-70b")
    assert info.origin == "override" and info.context_window == 8192
    assert info.cost(Usage(input_tokens=1_000_000, output_tokens=1_000_000)) == Decimal("1.38000000")
    event = AuditEvent.objects.get()
    assert event.action == "catalog.override.create" and event.actor == "alice"
    assert Decimal(event.details["input_per_mtok"]) == Decimal("0.59")


@pytest.mark.django_db
def test_override_changes_a_known_price_and_keeps_the_rest():
    o = cat.create_override(provider="openai", model="gpt-4o", input_per_mtok="2.00", output_per_mtok="8.00")
    info = load_catalog().lookup("openai", "gpt-4o-2024-08-06")
    assert info.origin == "file+override"
    assert (info.input_per_mtok, info.output_per_mtok, info.cached_input_per_mtok) == (
        Decimal("2.00"),
        Decimal("8.00"),
        Decimal("1.25"),
    )
    assert info.context_window == 128000 and info.as_of  # from the file
    cat.update_override(o.pk, {"enabled": False, "note": "paused"}, actor=ADMIN)
    assert load_catalog().lookup("openai", "gpt-4o").input_per_mtok == Decimal("2.50")
    cat.update_override(o.pk, {"enabled": True, "context_window": 64000, "as_of": "2026-11-01"})
    info = load_catalog().lookup("openai", "gpt-4o")
    assert info.context_window == 64000 and info.as_of == "2026-11-01"
    cat.delete_override(o.pk, actor=ADMIN)
    assert load_catalog().lookup("openai", "gpt-4o").origin == "file"
    assert list(AuditEvent.objects.order_by("id").values_list("action", flat=True)) == [
        "catalog.override.create",
        "catalog.override.update",
        "catalog.override.update",
        "catalog.override.delete",
    ]


@pytest.mark.django_db
def test_override_tiers_dated_snapshots_and_provider_names():
    cat.create_override(provider="gemini", model="gemini-2.5-pro", input_per_mtok="1.00", output_per_mtok="9.00")
    pro = load_catalog().lookup("gemini", "gemini-2.5-pro")
    assert pro.tiers == () and pro.cost(Usage(input_tokens=300_000)) == Decimal("0.30000000")
    # A dated snapshot gets its own entry, starting from its family's figures.
    cat.create_override(
        provider="openai", model="gpt-4o-2024-05-13", max_output_tokens=4096, input_per_mtok="5", output_per_mtok="15"
    )
    old = load_catalog().lookup("openai", "gpt-4o-2024-05-13")
    assert (old.model, old.max_output_tokens, old.context_window) == ("gpt-4o-2024-05-13", 4096, 128000)
    assert load_catalog().lookup("openai", "gpt-4o-2024-08-06").max_output_tokens == 16384
    # A provider's own name beats its kind.
    cat.create_override(
        provider="azure-eu",
        model="gpt-4o",
        context_window=128000,
        max_output_tokens=16384,
        input_per_mtok="2.75",
        output_per_mtok="11",
    )
    catalog = load_catalog()
    assert catalog.lookup("openai", "gpt-4o", provider_name="azure-eu").input_per_mtok == Decimal("2.75")
    assert catalog.lookup("openai", "gpt-4o", provider_name="other").input_per_mtok == Decimal("2.50")
    rows = catalog_rows("azure-eu")
    assert [r["model"] for r in rows] == ["gpt-4o"] and rows[0]["input_per_mtok"] == "2.750000"
    assert len(catalog_rows()) == len(file_entries()) + 2


@pytest.mark.django_db
def test_override_validation_and_errors():
    with pytest.raises(InvalidConfigError) as err:
        cat.create_override(provider="", model="x", context_window=-1, input_per_mtok="free", colour="red")
    assert set(err.value.errors) == {"provider", "context_window", "input_per_mtok", "colour"}
    with pytest.raises(InvalidConfigError) as err:
        cat.create_override(provider="openai")
    assert "model" in err.value.errors
    with pytest.raises(InvalidConfigError):
        cat.create_override(provider="openai", model="m", as_of="not a date")
    o = cat.create_override(provider="openai", model="m", context_window=10)
    with pytest.raises(ConflictError):
        cat.create_override(provider="openai", model="m")
    other = cat.create_override(provider="openai", model="n")
    with pytest.raises(ConflictError):
        cat.update_override(other.pk, {"model": "m"})
    with pytest.raises(InvalidConfigError):
        cat.update_override(o.pk, {"max_output_tokens": True})
    with pytest.raises(InvalidConfigError):
        cat.update_override(o.pk, {"as_of": "yesterday"})
    for bad in (999, "x", None):
        with pytest.raises(NotFound):
            cat.delete_override(bad)
    assert AuditEvent.objects.count() == 2
    assert str(CatalogOverride.objects.get(pk=o.pk)) == "openai/m"


# -- through the handler ---------------------------------------------------------------------------------


@pytest.mark.django_db(transaction=True)
async def test_usage_records_carry_cost_and_unknown_models_still_work(handler, settings):
    settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
    _, body = corpus_case("openai_json_text")  # gpt-4o-2024-08-06: 14 in, 37 out
    await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
    await register(
        kind="openai_compatible",
        name="local",
        api_key="sk-local-0123456789abcdef",
        base_url="http://127.0.0.1:9/v1",
        default_model="m",
    )
    with respx.mock:
        respx.post(OPENAI).respond(200, content=body, headers={"content-type": "application/json"})
        respx.post("http://127.0.0.1:9/v1/chat/completions").respond(
            200, content=body, headers={"content-type": "application/json"}
        )
        await handler.chat(ask(), provider="openai")
        await handler.chat(ask(), provider="local")
    await handler.flush_usage()
    rows = await sync_to_async(lambda: {r.provider_name: r for r in UsageRecord.objects.all()})()
    assert rows["openai"].cost == Decimal("0.00040500")  # 14 x $2.50 + 37 x $10 per 1M
    assert rows["local"].cost is None and rows["local"].status == "ok"
