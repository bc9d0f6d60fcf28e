"""The model catalog: context windows, output limits and prices, from a shipped file plus admin overrides.

    catalog = Catalog(file_entries(), overrides)   # with the DB overrides: byok.catalog_overrides.load_catalog()
    info = catalog.lookup("openai", "gpt-4o-2024-08-06")   # -> ModelInfo for "gpt-4o", or None
    cost = catalog.cost("gemini", "gemini-2.5-pro", usage)  # -> Decimal USD, or None (unknown price)

The data file is ``byok/data/model_catalog.json`` (each entry carries its
``as_of`` date and ``source``; figures that could not be confirmed say so in
their ``note``). It is read once per process and never fetched at run time.

Lookup: an exact name or alias of the provider kind, else the longest known
name that the requested one extends by a date or version suffix
(``-2024-08-06``, ``-20250514``, ``-001``, ``-latest``), after dropping a
Gemini ``models/`` prefix. Unknown models stay usable: no limit is enforced
and their cost is None ("unknown").

This module is pure (no ORM): the hot path reads it on every request. The
overrides' rows are read and changed in ``byok.catalog_overrides``.

Overrides (``CatalogOverride`` rows) apply field by field over the file's
entry; an override for a model the file does not know creates one. Their
``provider`` is a kind (``openai``) or a configured provider's name
(``my-azure``); a name beats a kind.

Cost (USD): ``(input - cached - written) * input price + cached * cached price +
written * input price * write multiplier + billable output * output price``, per
million tokens, using the entry's tier
for prompts above a threshold (Gemini 2.5 Pro, Claude Sonnet 4 long context).
``Usage.input_tokens`` includes cached tokens for every provider (the
Anthropic adapter adds cache reads and writes in). Only Anthropic reports
cache writes (``cache_creation_input_tokens``), billed at 1.25 times the input
price for the five-minute cache and 2 times for the one-hour cache
(https://docs.anthropic.com/en/docs/build-with-claude/prompt-caching#pricing,
the same multipliers for every model); billable output is
``output_tokens`` plus, for Gemini only, ``reasoning_tokens`` (Gemini counts
thoughts apart; OpenAI, DeepSeek and Anthropic include them in the output).
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from decimal import ROUND_HALF_UP, Decimal
from functools import lru_cache
from pathlib import Path
from typing import Any

from byok.providers.types import Usage

__all__ = [
    "CATALOG_PATH",
    "Catalog",
    "ModelInfo",
    "PriceTier",
    "billable_output_tokens",
    "file_entries",
]

CATALOG_PATH = Path(__file__).resolve().parent / "data" / "model_catalog.json"
MILLION = Decimal(1_000_000)
COST_QUANTUM = Decimal("0.00000001")  # UsageRecord.cost has 8 decimal places
# Prompt-cache writes, as multiples of the input price (Anthropic: the same for every model).
CACHE_WRITE_5M = Decimal("1.25")
CACHE_WRITE_1H = Decimal("2")

# What may follow a known model name and still mean that model: a date, a version, "latest".
_SUFFIX = re.compile(r"^-(?:\d{4}-\d{2}-\d{2}|\d{8}|\d{3,4}|v\d+(?::\d+)?|latest)$")

PRICE_FIELDS = ("input_per_mtok", "cached_input_per_mtok", "output_per_mtok")
LIMIT_FIELDS = ("context_window", "max_output_tokens", "max_input_tokens", "default_max_tokens")


def _dec(value: Any) -> Decimal | None:
    return None if value is None or value == "" else Decimal(str(value))


@dataclass(frozen=True, slots=True)
class PriceTier:
    """Prices that apply when the prompt has more than ``above_input_tokens`` tokens."""

    above_input_tokens: int
    input_per_mtok: Decimal
    cached_input_per_mtok: Decimal | None
    output_per_mtok: Decimal


@dataclass(frozen=True, slots=True)
class ModelInfo:
    """What byok knows about one model of one provider kind.

    ``context_window`` holds prompt and output together; ``max_input_tokens``,
    where set, also caps the prompt alone (Gemini's input limit, GPT-5's 272K).
    ``default_max_tokens`` is the output budget byok fills in when a request
    has none (else the policy in ``byok.budgets.prepare_request``).
    ``mode`` is "chat" or "embedding" (an embedding model has no output: its
    output price is 0 and it has no output limit).
    """

    provider: str
    model: str
    mode: str = "chat"
    context_window: int | None = None
    max_output_tokens: int | None = None
    max_input_tokens: int | None = None
    default_max_tokens: int | None = None
    input_per_mtok: Decimal | None = None
    cached_input_per_mtok: Decimal | None = None
    output_per_mtok: Decimal | None = None
    tiers: tuple[PriceTier, ...] = ()
    tool_prompt_tokens: dict[str, int] = field(default_factory=dict)
    aliases: tuple[str, ...] = ()
    as_of: str = ""
    source: str = ""
    note: str = ""
    origin: str = "file"  # file | override | file+override

    @property
    def priced(self) -> bool:
        return self.input_per_mtok is not None and self.output_per_mtok is not None

    @property
    def prompt_limit(self) -> int | None:
        """The most prompt tokens the model takes (its input limit, else its window)."""
        return self.max_input_tokens or self.context_window

    def prices_for(self, input_tokens: int) -> tuple[Decimal, Decimal, Decimal]:
        """(input, cached input, output) USD per million tokens for a prompt of this size."""
        inp, cached, out = self.input_per_mtok, self.cached_input_per_mtok, self.output_per_mtok
        for tier in sorted(self.tiers, key=lambda t: t.above_input_tokens):
            if input_tokens > tier.above_input_tokens:
                inp, cached, out = tier.input_per_mtok, tier.cached_input_per_mtok, tier.output_per_mtok
        assert inp is not None and out is not None
        return inp, (cached if cached is not None else inp), out

    def cost(self, usage: Usage) -> Decimal | None:
        """USD for one answer's usage (see the module doc), or None when the price is unknown."""
        if not self.priced:
            return None
        inp, cached_price, out = self.prices_for(usage.input_tokens)
        cached = min(max(usage.cached_input_tokens or 0, 0), usage.input_tokens)
        written = min(max(usage.cache_creation_input_tokens or 0, 0), usage.input_tokens - cached)
        written_1h = min(max(usage.cache_creation_1h_input_tokens or 0, 0), written)
        output = billable_output_tokens(self.provider, usage)
        total = (
            (usage.input_tokens - cached - written) * inp
            + cached * cached_price
            + (written - written_1h) * inp * CACHE_WRITE_5M
            + written_1h * inp * CACHE_WRITE_1H
            + output * out
        ) / MILLION
        return total.quantize(COST_QUANTUM, rounding=ROUND_HALF_UP)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready (prices as strings, so no float rounding)."""
        out = asdict(self)
        for name in PRICE_FIELDS:
            out[name] = str(out[name]) if out[name] is not None else None
        out["tiers"] = [
            {k: (str(v) if isinstance(v, Decimal) else v) for k, v in asdict(t).items()} for t in self.tiers
        ]
        out["aliases"] = list(self.aliases)
        return out


def billable_output_tokens(provider_kind: str, usage: Usage) -> int:
    """Output tokens to bill: Gemini reports thinking apart from the answer, the others include it."""
    if provider_kind == "gemini":
        return usage.output_tokens + (usage.reasoning_tokens or 0)
    return usage.output_tokens


def _tiers(raw: list[dict[str, Any]] | None) -> tuple[PriceTier, ...]:
    return tuple(
        PriceTier(
            int(t["above_input_tokens"]),
            _dec(t["input_per_mtok"]),  # type: ignore[arg-type]
            _dec(t.get("cached_input_per_mtok")),
            _dec(t["output_per_mtok"]),  # type: ignore[arg-type]
        )
        for t in raw or ()
    )


def _entry(raw: dict[str, Any]) -> ModelInfo:
    return ModelInfo(  # the limit and price fields by name, as the file has them
        provider=raw["provider"],
        model=raw["model"],
        mode=raw.get("mode", "chat"),
        **{k: raw.get(k) for k in LIMIT_FIELDS},  # type: ignore[arg-type]
        **{k: _dec(raw.get(k)) for k in PRICE_FIELDS},  # type: ignore[arg-type]
        tiers=_tiers(raw.get("tiers")),
        tool_prompt_tokens=dict(raw.get("tool_prompt_tokens") or {}),
        aliases=tuple(raw.get("aliases") or ()),
        as_of=raw.get("as_of", ""),
        source=raw.get("source", ""),
        note=raw.get("note", ""),
    )


@lru_cache(maxsize=1)
def file_entries() -> tuple[ModelInfo, ...]:
    """The shipped catalog file's entries (read once per process)."""
    data = json.loads(CATALOG_PATH.read_text(encoding="utf-8"))
    return tuple(_entry(raw) for raw in data["models"])


def _normalise(model: str) -> str:
    model = model.strip().lower()
    return model[len("models/") :] if model.startswith("models/") else model


class Catalog:
    """File entries with overrides applied, indexed for lookup by (provider kind or name, model)."""

    def __init__(self, entries: tuple[ModelInfo, ...] | list[ModelInfo], overrides: Sequence[Any] = ()) -> None:
        self._entries: dict[tuple[str, str], ModelInfo] = {}
        self._names: dict[tuple[str, str], ModelInfo] = {}
        for info in entries:
            self._add(info)
        for o in overrides:
            name = _normalise(o.model)
            base = self._entries.get((o.provider, name))
            if base is None:
                # An override of a dated snapshot ("gpt-4o-2024-05-13") starts from its family's entry.
                found = self._find(o.provider, name)
                base = replace(found, model=o.model, aliases=()) if found is not None else None
            self._add(_apply(base, o), replace_aliases=True)

    def _add(self, info: ModelInfo, *, replace_aliases: bool = False) -> None:
        key = (info.provider, _normalise(info.model))
        self._entries[key] = info
        self._names[key] = info
        for alias in info.aliases:
            akey = (info.provider, _normalise(alias))
            if replace_aliases or akey not in self._names:
                self._names[akey] = info

    def entries(self) -> list[ModelInfo]:
        return sorted(self._entries.values(), key=lambda e: (e.provider, e.model))

    def models_of(self, kind: str, provider_name: str | None = None) -> list[str]:
        """The model names known for a provider of ``kind`` (and overrides naming ``provider_name``), sorted."""
        owners = {kind, provider_name} if provider_name else {kind}
        return sorted({info.model for (owner, _), info in self._entries.items() if owner in owners})

    def _find(self, provider: str, model: str) -> ModelInfo | None:
        exact = self._names.get((provider, model))
        if exact is not None:
            return exact
        best: ModelInfo | None = None
        best_len = 0
        for (p, name), info in self._names.items():
            if p == provider and model.startswith(name) and len(name) > best_len and _SUFFIX.match(model[len(name) :]):
                best, best_len = info, len(name)
        return best

    def lookup(self, kind: str, model: str, provider_name: str | None = None) -> ModelInfo | None:
        """The entry for ``model`` served by a provider of ``kind`` (or named ``provider_name``); None if unknown."""
        if not model:
            return None
        name = _normalise(model)
        if provider_name:
            found = self._find(provider_name, name)
            if found is not None:
                return found
        return self._find(kind, name)

    def cost(self, kind: str, model: str, usage: Usage, provider_name: str | None = None) -> Decimal | None:
        """USD for ``usage`` on ``model``, or None when the model or its price is unknown."""
        info = self.lookup(kind, model, provider_name)
        return info.cost(usage) if info is not None else None


def _apply(base: ModelInfo | None, o: Any) -> ModelInfo:
    """An override's non-empty fields over ``base`` (or over nothing, for a model the file lacks)."""
    changes: dict[str, Any] = {}
    for name in LIMIT_FIELDS:
        value = getattr(o, name, None)
        if value is not None:
            changes[name] = int(value)
    for name in PRICE_FIELDS:
        value = getattr(o, name, None)
        if value is not None:
            changes[name] = Decimal(value)
    for name in ("note", "source"):
        if getattr(o, name, ""):
            changes[name] = getattr(o, name)
    as_of = getattr(o, "as_of", None)
    if as_of:
        changes["as_of"] = str(as_of)
    if base is None:
        return ModelInfo(provider=o.provider, model=o.model, origin="override", **changes)
    # A price override replaces the tiers too: the admin's figure is what they mean to pay.
    if any(name in changes for name in PRICE_FIELDS):
        changes["tiers"] = ()
    return replace(base, origin="file+override", **changes)
