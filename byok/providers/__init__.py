"""Provider adapters by kind, imported on first use.

    adapter = get_adapter("gemini")

`Provider.kind` uses exactly these keys as its choices.
"""

from __future__ import annotations

from importlib import import_module

from byok.providers.base import ProviderAdapter

__all__ = ["ADAPTERS", "KINDS", "get_adapter"]

ADAPTERS: dict[str, str] = {
    "openai": "byok.providers.openai.OpenAIAdapter",
    "anthropic": "byok.providers.anthropic.AnthropicAdapter",
    "deepseek": "byok.providers.deepseek.DeepSeekAdapter",
    "gemini": "byok.providers.gemini.GeminiAdapter",
    "openai_compatible": "byok.providers.openai.OpenAICompatibleAdapter",
}
KINDS: tuple[str, ...] = tuple(ADAPTERS)

_instances: dict[str, ProviderAdapter] = {}


def get_adapter(kind: str) -> ProviderAdapter:
    """The adapter for `kind` (one shared instance: adapters hold no state)."""
    try:
        return _instances[kind]
    except KeyError:
        pass
    try:
        dotted = ADAPTERS[kind]
    except KeyError:
        raise ValueError(f"Unknown provider kind {kind!r}; expected one of {', '.join(KINDS)}.") from None
    module_name, _, class_name = dotted.rpartition(".")
    adapter = getattr(import_module(module_name), class_name)()
    _instances[kind] = adapter
    return adapter
