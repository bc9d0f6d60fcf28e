"""The pure renderers, one per dialect, on event sequences recorded from real providers.

A corpus body is replayed through its adapter's stream parser (the events the handler would pass
on), then rendered by `ChunkWriter` (OpenAI chunks), `ByokStreamRenderer` (byok's /api/chat SSE
events) and `byok.ws.render` (websocket frames); each wire output is parsed back and checked.
"""

from __future__ import annotations

import json

import pytest

from byok.api.openai_compat import DONE, ChunkWriter
from byok.api.render_byok import ByokStreamRenderer
from byok.exceptions import AllProvidersFailedError
from byok.providers import get_adapter
from byok.providers.types import StreamDone, StreamEvent, StreamFailed, StreamStarted, Usage
from byok.tests.providers.replay import corpus_case
from byok.ws import render as ws_render

CASES = {  # corpus case -> adapter kind
    "deepseek_stream_reasoner_tool_call": "deepseek",
    "anthropic_stream_sdk_basic": "anthropic",
    "openai_stream_text_usage_chunk": "openai",
}


STARTED = StreamStarted(
    provider="p", model="m", key_hint="sk-…abcd", attempts=[{"provider": "p"}], request_id="req1", failover_ms=0.0
)


def recorded_events(case: str) -> list[StreamStarted | StreamEvent]:
    """What the handler yields for this recorded body: StreamStarted, then the adapter's events."""
    _, body = corpus_case(case)
    parser = get_adapter(CASES[case]).stream_parser()
    return [STARTED, *parser.feed(body), *parser.close()]


def done_for(events: list[StreamEvent]) -> StreamDone:
    usage = next((e.usage for e in reversed(events) if e.kind == "usage"), None) or Usage()
    finish = next((e.finish_reason for e in reversed(events) if e.kind == "finish"), "stop")
    return StreamDone(
        finish_reason=finish,  # type: ignore[arg-type]
        raw_finish_reason=None,
        usage=usage,
        provider="p",
        model="m",
        key_hint="sk-…abcd",
        attempts=[{"provider": "p"}],
        latency_ms=12.345,
        failover_ms=0.0,
        ttft_ms=3.21,
        request_id="req1",
    )


def expected(events: list[StreamEvent]) -> tuple[str, str, dict[int, tuple[str | None, str]]]:
    text = "".join(e.text or "" for e in events if e.kind == "text_delta")
    reasoning = "".join(e.text or "" for e in events if e.kind == "reasoning_delta")
    calls: dict[int, tuple[str | None, str]] = {}
    for e in events:
        if e.kind == "tool_call_start":
            calls[e.index or 0] = (e.name, "")
        elif e.kind == "tool_call_delta":
            name, args = calls[e.index or 0]
            calls[e.index or 0] = (name, args + (e.arguments or ""))
    return text, reasoning, calls


def sse_blocks(raw: bytes) -> list[tuple[str | None, str]]:
    out = []
    for block in raw.decode().split("\n\n"):
        if block:
            fields = dict(line.split(": ", 1) for line in block.split("\n"))
            out.append((fields.get("event"), fields["data"]))
    return out


@pytest.mark.parametrize("case", CASES)
def test_openai_chunks(case):
    events = recorded_events(case)
    text, reasoning, calls = expected(events)
    writer = ChunkWriter("chatcmpl-1", 1700000000, "p/m", include_usage=True)
    raw = b"".join(writer.event(e) or b"" for e in events) + writer.done(
        done_for(events).finish_reason, done_for(events).usage
    )
    assert raw.endswith(DONE)
    chunks = [json.loads(data) for _, data in sse_blocks(raw[: -len(DONE)])]
    assert all(
        c["object"] == "chat.completion.chunk" and c["id"] == "chatcmpl-1" and c["model"] == "p/m" for c in chunks
    )
    deltas = [c["choices"][0]["delta"] for c in chunks if c["choices"]]
    assert deltas[0]["role"] == "assistant"
    assert "".join(d.get("content") or "" for d in deltas) == text
    assert "".join(d.get("reasoning_content") or "" for d in deltas) == reasoning
    got: dict[int, list[str]] = {}
    for d in deltas:
        for tc in d.get("tool_calls", ()):
            got.setdefault(tc["index"], ["", ""])
            got[tc["index"]][0] = tc["function"].get("name") or got[tc["index"]][0]
            got[tc["index"]][1] += tc["function"].get("arguments") or ""
    assert {i: tuple(v) for i, v in got.items()} == calls
    finish = [c["choices"][0]["finish_reason"] for c in chunks if c["choices"] and c["choices"][0]["finish_reason"]]
    assert finish == ["tool_calls" if calls else "stop" if done_for(events).finish_reason == "stop" else finish[0]]
    assert (
        chunks[-1]["choices"] == [] and chunks[-1]["usage"]["completion_tokens"] == done_for(events).usage.output_tokens
    )


@pytest.mark.parametrize("case", CASES)
def test_byok_sse_events(case):
    events = recorded_events(case)
    text, reasoning, calls = expected(events)
    render = ByokStreamRenderer()
    done = done_for(events)
    blocks = sse_blocks(b"".join(render.event(e) for e in events) + render.done(done))
    deltas = [json.loads(d) for kind, d in blocks if kind == "delta"]
    assert (
        "".join(d.get("text", "") for d in deltas) == text
        and "".join(d.get("reasoning", "") for d in deltas) == reasoning
    )
    tool_calls = [json.loads(d) for kind, d in blocks if kind == "tool_call"]
    assert {c["index"]: (c["name"], c["arguments"]) for c in tool_calls} == calls  # each call whole, once
    kind, data = blocks[-1]
    final = json.loads(data)
    assert kind == "done" and final["id"] == "req1" and final["key_hint"] == "sk-…abcd" and final["latency_ms"] == 12.35
    assert final["finish_reason"] == ("tool_calls" if calls and done.finish_reason == "stop" else done.finish_reason)
    assert final["usage"] == done.usage.to_dict()


@pytest.mark.parametrize("case", CASES)
def test_websocket_frames(case):
    events = recorded_events(case)
    text, reasoning, calls = expected(events)
    frames = [f for f in (ws_render.event_frame("r1", e) for e in events) if f is not None]
    frames.append(ws_render.done_frame("r1", done_for(events)))
    assert all(f["id"] == "r1" for f in frames)
    deltas = [f for f in frames if f["type"] == "chat.delta"]
    assert (
        "".join(f.get("text", "") for f in deltas) == text
        and "".join(f.get("reasoning", "") for f in deltas) == reasoning
    )
    got: dict[int, list[str]] = {}
    for f in frames:
        if f["type"] == "chat.tool_call":
            entry = got.setdefault(f["index"], [f.get("name"), ""])
            entry[1] += f["arguments"]
    assert {i: tuple(v) for i, v in got.items()} == calls
    assert frames[-1] == {
        "type": "chat.done",
        "id": "r1",
        "finish_reason": done_for(events).finish_reason,
        "usage": done_for(events).usage.to_dict(),
        "provider": "p",
        "model": "m",
        "latency_ms": 12.3,
        "ttft_ms": 3.2,
        "attempts": 1,
        "failover_ms": 0.0,
        "request_id": "req1",
    }


def test_a_failure_renders_in_each_dialect_with_partial_known():
    error = AllProvidersFailedError("Every provider failed.", attempts=[])
    failed = StreamFailed(error=error, partial=False, request_id="req9")
    render = ByokStreamRenderer()
    render.event(StreamEvent(kind="text_delta", text="half"))
    kind, data = sse_blocks(render.failed(failed))[0]
    assert (
        kind == "error" and json.loads(data)["partial"] is True and json.loads(data)["id"] == "req9"
    )  # a token went out
    frame = ws_render.failed_frame("r", failed)
    assert frame["type"] == "chat.error" and frame["code"] == error.code and frame["partial"] is False
    raw = ChunkWriter("c", 0, "m").failed(error)
    assert raw.endswith(DONE) and json.loads(sse_blocks(raw[: -len(DONE)])[0][1])["error"]["code"] == error.code
