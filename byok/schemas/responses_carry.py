"""What a stateless Responses conversation must carry between turns, in a reasoning item's `encrypted_content`.

Anthropic accepts a turn's thinking blocks back only with their `signature` (a `redacted_thinking`
block only with its opaque data), and Gemini wants each function call's `thoughtSignature` back on
the same call. byok stores nothing, so it hands these to the client the way OpenAI hands back its
own reasoning state when nothing is stored: inside the `encrypted_content` of a `reasoning` output
item, which Responses clients (the SDK's users passing `response.output` back, Codex with
`store: false`) send back unchanged in the next request's `input`.

    blob = pack(thinking_blocks, {"call_1": "<gemini signature>"})   # None when there is nothing to carry
    thinking, call_signatures = unpack(blob)                           # ((), {}) for anything not ours

The blob is not encrypted: it holds only what the provider already gave the client (reasoning text,
signatures the provider verifies itself), versioned by its prefix. OpenAI's own encrypted reasoning
(from a real OpenAI response) is not ours and is ignored.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Iterable, Mapping

import orjson

from byok.providers.types import Thinking

__all__ = ["PREFIX", "pack", "unpack"]

PREFIX = "byok1."


def pack(thinking: Iterable[Thinking], call_signatures: Mapping[str, str]) -> str | None:
    """The blob for signed/redacted thinking blocks and call signatures; None when none needs carrying."""
    blocks = list(thinking)
    if not any(b.signature or b.redacted for b in blocks) and not call_signatures:
        return None
    data = {
        "t": [[b.text, b.signature, b.redacted] for b in blocks],
        "c": dict(call_signatures),
    }
    return PREFIX + base64.urlsafe_b64encode(orjson.dumps(data)).decode()


def unpack(blob: str | None) -> tuple[tuple[Thinking, ...], dict[str, str]]:
    """The thinking blocks and call signatures in a blob of ours; nothing for any other value."""
    if not blob or not blob.startswith(PREFIX):
        return (), {}
    try:
        data = orjson.loads(base64.urlsafe_b64decode(blob[len(PREFIX) :].encode()))
        blocks = tuple(_block(*item) for item in data["t"])
        calls = {k: v for k, v in data["c"].items() if isinstance(k, str) and isinstance(v, str)}
    except (binascii.Error, ValueError, KeyError, TypeError, AttributeError):
        return (), {}  # not a blob of ours after all: nothing to carry
    return blocks, calls


def _block(text: object, signature: object, redacted: object) -> Thinking:
    if not isinstance(text, str) or not all(v is None or isinstance(v, str) for v in (signature, redacted)):
        raise TypeError("not a thinking block")
    return Thinking(text=text, signature=signature, redacted=redacted)  # type: ignore[arg-type]
