"""What the fake model says: text chunks, reasoning chunks or a tool call.

Each wire format reads its request into a `Prompt` (the few facts that steer
the answer); `build_answer()` turns a prompt and the settings into an `Answer`
that the format then renders. Output is deterministic so tests can assert it.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Any

import orjson

from devtools.fakeprovider.settings import Settings

__all__ = ["Answer", "Prompt", "PromptError", "build_answer", "count_words", "filler_text", "text_of"]

# Mixed scripts on purpose: multi-byte UTF-8 reaches the gateway's decoders.
_FILLER = "The quick brown fox jumps over the lazy dog while a naïve café streams tokens 日本語 ok."
_FILLER_WORDS = _FILLER.split()
_REASONING = "Let me think about this step by step before I answer the question."
_MAX_TEXT = 10_000_000  # characters; chunks * chunk_size beyond this is cut
_TOOL_FRAGMENT = 6  # characters of JSON arguments per streamed fragment


class PromptError(ValueError):
    """The request lacks what the provider requires; answered with a 400 in its shape."""


@dataclass(slots=True)
class Prompt:
    model: str
    stream: bool = False
    include_usage: bool = False
    input_tokens: int = 1
    last_user_text: str | None = None  # the last message's text when that message is the user's
    tool: tuple[str, dict[str, Any]] | None = None  # first tool: name and JSON schema
    max_tokens: int | None = None
    reasoning: bool = False


@dataclass(slots=True)
class Answer:
    pieces: tuple[str, ...] = ()
    reasoning: tuple[str, ...] = ()
    tool_name: str | None = None
    tool_args: dict[str, Any] | None = None
    tool_json: str = ""
    tool_fragments: tuple[str, ...] = ()
    truncated: bool = False  # cut by max_tokens

    @property
    def text(self) -> str:
        return "".join(self.pieces)

    @property
    def output_tokens(self) -> int:
        return len(self.pieces) + len(self.tool_fragments)


def count_words(texts: list[str]) -> int:
    """A rough input token count: whitespace-separated words, at least 1."""
    return max(1, sum(len(t.split()) for t in texts))


def _split(text: str, size: int) -> tuple[str, ...]:
    if size > 0:
        return tuple(text[i : i + size] for i in range(0, len(text), size))
    words = text.split(" ")
    return tuple(w + " " for w in words[:-1]) + ((words[-1],) if words[-1] else ())


@functools.lru_cache(maxsize=256)
def filler_pieces(chunks: int, size: int) -> tuple[str, ...]:
    if size <= 0:
        n = len(_FILLER_WORDS)
        return tuple(_FILLER_WORDS[i % n] + " " for i in range(chunks))
    total = min(chunks * size, _MAX_TEXT)
    base = _FILLER + " "
    text = (base * (total // len(base) + 1))[:total]
    return tuple(text[i : i + size] for i in range(0, total, size))


def filler_text(chunks: int, size: int = 0) -> str:
    """The text a plain answer of `chunks` chunks carries (for tests)."""
    return "".join(filler_pieces(chunks, size))


@functools.lru_cache(maxsize=64)
def _reasoning_pieces(n: int) -> tuple[str, ...]:
    words = _REASONING.split()
    return tuple(words[i % len(words)] + " " for i in range(n))


def _args_for(schema: dict[str, Any]) -> dict[str, Any]:
    """Plausible arguments for a JSON schema's top-level properties (at most 8)."""
    props = schema.get("properties") if isinstance(schema, dict) else None
    if not isinstance(props, dict):
        return {}
    out: dict[str, Any] = {}
    for name, spec in list(props.items())[:8]:
        spec = spec if isinstance(spec, dict) else {}
        kind = spec.get("type")
        kind = kind[0] if isinstance(kind, list) and kind else kind
        if isinstance(spec.get("enum"), list) and spec["enum"]:
            out[name] = spec["enum"][0]
        elif isinstance(kind, str) and kind.lower() in ("integer", "number"):
            out[name] = 1
        elif isinstance(kind, str) and kind.lower() == "boolean":
            out[name] = True
        elif isinstance(kind, str) and kind.lower() == "array":
            out[name] = []
        elif isinstance(kind, str) and kind.lower() == "object":
            out[name] = {}
        else:
            out[name] = "Paris"
    return out


def build_answer(prompt: Prompt, settings: Settings) -> Answer:
    reasoning = _reasoning_pieces(settings.reasoning_chunks) if prompt.reasoning else ()
    wants_tool = settings.tool_call or (
        prompt.last_user_text is not None and "weather" in prompt.last_user_text.lower()
    )
    if prompt.tool is not None and wants_tool:
        name, schema = prompt.tool
        args = _args_for(schema)
        raw = orjson.dumps(args).decode()
        frags = tuple(raw[i : i + _TOOL_FRAGMENT] for i in range(0, len(raw), _TOOL_FRAGMENT))
        return Answer(reasoning=reasoning, tool_name=name, tool_args=args, tool_json=raw, tool_fragments=frags)
    if settings.echo and prompt.last_user_text:
        pieces = _split(prompt.last_user_text[:_MAX_TEXT], settings.chunk_size)
    else:
        pieces = filler_pieces(settings.chunks, settings.chunk_size)
    truncated = False
    if prompt.max_tokens is not None and 0 <= prompt.max_tokens < len(pieces):
        pieces, truncated = pieces[: prompt.max_tokens], True
    return Answer(pieces=pieces, reasoning=reasoning, truncated=truncated)


def text_of(content: Any) -> str:
    """Text of a message content in any of the three formats (string, or a list of parts/blocks)."""
    if isinstance(content, str):
        return content
    if isinstance(content, list):
        out = []
        for part in content[:1000]:
            if isinstance(part, dict) and isinstance(part.get("text"), str):
                out.append(part["text"])
            elif isinstance(part, str):
                out.append(part)
        return " ".join(out)
    return ""
