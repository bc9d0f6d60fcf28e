"""What OpenAI-dialect clients get back so the next turn can carry it: Anthropic thinking blocks with signatures
(`thinking_blocks`), Gemini thought signatures on tool calls (`extra_content.google.thought_signature`, where
Google's OpenAI-compatible API puts them), cache reads and writes in usage; whole answers and streams, checked
with the official openai SDK's models."""

from __future__ import annotations

from pathlib import Path

import orjson
from openai.types.chat import ChatCompletion, ChatCompletionChunk

from byok.api.render_openai import ChunkWriter, render_completion
from byok.providers import get_adapter
from byok.providers.types import ChatResponse, ToolCall, Usage
from byok.tests.providers.replay import corpus_case

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "anthropic"


def chunks(adapter_kind: str, body: bytes) -> list[dict]:
    parser = get_adapter(adapter_kind).stream_parser()
    writer = ChunkWriter("chatcmpl-1", 0, "m")
    out = b"".join(writer.event(ev) or b"" for ev in parser.feed(body) + parser.close())
    return [orjson.loads(line[6:]) for line in out.split(b"\n\n") if line.startswith(b"data: {")]


def test_a_whole_anthropic_answer_carries_its_signed_thinking_blocks_and_cache_usage():
    answer = get_adapter("anthropic").parse_response((FIXTURES / "json_redacted_thinking_cache.body.json").read_bytes())
    body = render_completion(answer, completion_id="chatcmpl-1", created=0, model="claude")
    message = body["choices"][0]["message"]
    assert message["reasoning_content"] == "Let me analyze this step by step..."
    assert [b["type"] for b in message["thinking_blocks"]] == ["thinking", "redacted_thinking"]
    assert message["thinking_blocks"][0]["signature"] == answer.thinking[0].signature
    assert message["thinking_blocks"][1]["data"] == answer.thinking[1].redacted
    assert body["usage"]["cache_creation_input_tokens"] == 1800 and body["usage"]["cache_read_input_tokens"] == 0
    parsed = ChatCompletion.model_validate(body)  # the SDK keeps the extra fields
    assert parsed.choices[0].message.model_extra["thinking_blocks"] == message["thinking_blocks"]


def test_usage_without_cache_writes_keeps_openai_s_shape():
    usage = Usage(input_tokens=10, output_tokens=2, total_tokens=12, cached_input_tokens=4)
    body = render_completion(ChatResponse(text="x", usage=usage), completion_id="c", created=0, model="m")
    assert body["usage"] == {
        "prompt_tokens": 10,
        "completion_tokens": 2,
        "total_tokens": 12,
        "prompt_tokens_details": {"cached_tokens": 4},
    }


def test_a_gemini_tool_call_carries_its_thought_signature():
    call = ToolCall(id="call_1", name="now", arguments="{}", thought_signature="CiIBVKhc")
    body = render_completion(ChatResponse(text=None, tool_calls=(call,)), completion_id="c", created=0, model="m")
    (out,) = body["choices"][0]["message"]["tool_calls"]
    assert out["extra_content"] == {"google": {"thought_signature": "CiIBVKhc"}}
    ChatCompletion.model_validate(body)


def test_a_streamed_thinking_block_arrives_whole_and_signed_after_its_deltas():
    got = chunks("anthropic", (FIXTURES / "stream_thinking.sse").read_bytes())
    for chunk in got:
        ChatCompletionChunk.model_validate(chunk)
    deltas = [c["choices"][0]["delta"] for c in got]
    blocks = [d["thinking_blocks"] for d in deltas if "thinking_blocks" in d]
    assert blocks == [
        [
            {
                "type": "thinking",
                "thinking": "Let me solve this step by step:\n\n1. First break down 27 * 453\n2. 453 = 400 + 50 + 3",
                "signature": "EqQBCgIYAhIM1gbcDa9GJwZA2b3hGgxBdjrkzLoky3dl1pkiMOYds...",
            }
        ]
    ]
    assert "".join(d.get("reasoning_content") or "" for d in deltas).startswith("Let me solve")


def test_a_streamed_redacted_block_and_a_gemini_signature():
    got = chunks("anthropic", (FIXTURES / "stream_redacted_thinking.sse").read_bytes())
    blocks = [c["choices"][0]["delta"]["thinking_blocks"] for c in got if "thinking_blocks" in c["choices"][0]["delta"]]
    assert blocks[0][0]["type"] == "redacted_thinking" and blocks[0][0]["data"].startswith("EmwKAhgBEgy3va3pzix")
    _, body = corpus_case("gemini_stream_thinking_function_call")
    calls = [
        c["choices"][0]["delta"]["tool_calls"][0]
        for c in chunks("gemini", body)
        if "tool_calls" in c["choices"][0]["delta"]
    ]
    assert calls[0]["extra_content"]["google"]["thought_signature"].startswith("CiIBVKhc7vB+vaaq6rA/")
