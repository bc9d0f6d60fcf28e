"""Stream checks shared by the OpenAI-format adapters' tests (OpenAI, DeepSeek, ...): feed a parser, cut a
body at random places, assemble the events as a client would, compare with a corpus sidecar's `expected`.
"""

from __future__ import annotations

import json
import random
from typing import Any

import orjson

from byok.providers.types import StreamEvent
from byok.tests.providers.replay import split_at

__all__ = ["assert_stream_matches", "assert_usage", "chunk", "collect", "feed_all", "random_pieces"]


def random_pieces(body: bytes, seed: int, max_size: int = 16) -> list[bytes]:
    """`body` in random pieces of 1..max_size bytes (cuts land inside UTF-8 characters and CR LF pairs)."""
    rng = random.Random(seed)
    cuts, at = [], 0
    while at < len(body):
        at += rng.randint(1, max_size)
        cuts.append(at)
    return split_at(body, cuts)


def collect(events: list[StreamEvent]) -> dict[str, Any]:
    """What a client would assemble from the events, in the corpus sidecars' `expected` shape."""
    out: dict[str, Any] = {"text": "", "reasoning": None, "refusal": None, "tool_calls": {}, "usage": None}
    out["finish"] = [(e.finish_reason, e.raw_finish_reason) for e in events if e.kind == "finish"]
    out["meta"] = [(e.response_id, e.model) for e in events if e.kind == "meta"]
    for e in events:
        if e.kind == "text_delta":
            out["text"] += e.text
        elif e.kind == "reasoning_delta":
            out["reasoning"] = (out["reasoning"] or "") + (e.text or "")
        elif e.kind == "refusal_delta":
            out["refusal"] = (out["refusal"] or "") + (e.text or "")
        elif e.kind == "tool_call_start":
            assert e.index not in out["tool_calls"], "one start per tool call"
            out["tool_calls"][e.index] = {"index": e.index, "id": e.tool_call_id, "name": e.name, "arguments_raw": ""}
        elif e.kind == "tool_call_delta":
            out["tool_calls"][e.index]["arguments_raw"] += e.arguments
        elif e.kind == "usage":
            out["usage"] = e.usage
    out["tool_calls"] = [out["tool_calls"][i] for i in sorted(out["tool_calls"])]
    return out


def assert_usage(usage, expected: dict[str, Any] | None) -> None:
    if expected is None:
        assert usage is None
        return
    assert usage.input_tokens == expected["input_tokens"]
    assert usage.output_tokens == expected["output_tokens"]
    assert usage.total_tokens == expected.get("total_tokens", expected["input_tokens"] + expected["output_tokens"])
    assert usage.reasoning_tokens == expected.get("reasoning_tokens")
    assert usage.cached_input_tokens == expected.get("cached_input_tokens")


def assert_stream_matches(
    events: list[StreamEvent], expected: dict[str, Any], choice: dict[str, Any] | None = None
) -> None:
    """Events against a sidecar's `expected` (or one of its `choices`)."""
    want = choice or expected
    got = collect(events)
    assert events[0].kind == "meta" and len(got["meta"]) == 1
    assert got["text"] == (want.get("text") or "")
    assert got["reasoning"] == want.get("reasoning")
    assert got["refusal"] == want.get("refusal")
    assert [(c["id"], c["name"], c["arguments_raw"]) for c in got["tool_calls"]] == [
        (c["id"], c["name"], c["arguments_raw"]) for c in want["tool_calls"]
    ]
    for call, wanted in zip(got["tool_calls"], want["tool_calls"]):
        assert json.loads(call["arguments_raw"]) == wanted["arguments"]
    raw = want["finish_reason"]
    assert got["finish"] == [({"stop": "stop", "length": "length", "tool_calls": "tool_calls"}[raw], raw)]
    assert_usage(got["usage"], expected["usage"])


def chunk(delta: dict[str, Any] | None = None, finish: str | None = None, **extra: Any) -> bytes:
    choice = {"index": 0, "delta": delta or {}, "finish_reason": finish}
    body = {"id": "chatcmpl-1", "object": "chat.completion.chunk", "model": "gpt-4o", "choices": [choice], **extra}
    return b"data: " + orjson.dumps(body) + b"\n\n"


def feed_all(adapter, *pieces: bytes) -> list[StreamEvent]:
    parser = adapter.stream_parser()
    events = [e for piece in pieces for e in parser.feed(piece)]
    return events + parser.close()
