"""byok.tokens: the prompt estimator, measured against provider-reported prompt counts and o200k counts.

No tokenizer is loaded: the estimator is a heuristic (see byok/tokens.py).
"""

from __future__ import annotations

import json
import statistics
from pathlib import Path

import pytest

from byok.catalog import Catalog, file_entries
from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.tests.providers.replay import corpus_case
from byok.tokens import FAMILIES, count_text_tokens, estimate_prompt_tokens, render_openai_tools

CALIBRATION = Path(__file__).parent / "fixtures" / "token_calibration.json"


def request_from_sidecar(case: str) -> tuple[ChatRequest, int, str]:
    """The request a corpus case records (messages, and tools where the sidecar shows their schema)."""
    sidecar, _ = corpus_case(case)
    summary = sidecar["request"]["body_summary"]
    messages = tuple(Message(role=m["role"], content=m["content"]) for m in summary["messages"])
    tools = tuple(
        Tool(
            name=t["function"]["name"],
            description=t["function"].get("description", ""),
            parameters=t["function"]["parameters"],
        )
        for t in summary.get("tools", ())
        if isinstance(t, dict)
    )
    return (
        ChatRequest(model=summary["model"], messages=messages, tools=tools),
        sidecar["expected"]["usage"]["input_tokens"],
        sidecar["provider"],
    )


# Every corpus case whose request is fully shown in its sidecar (model, messages, tool schemas).
KNOWN = [
    "openai_json_text",
    "openai_stream_text_usage_chunk",
    "openai_stream_unicode_json_mode",
    "openai_stream_tool_call_fragments",
    "anthropic_stream_sdk_basic",
]


def test_estimator_error_on_the_corpus_cases_with_known_requests():
    """Estimated vs provider-reported prompt tokens, the five corpus cases whose request is fully known.

    Measured: openai_json_text 14/14, openai_stream_text_usage_chunk 14/14,
    openai_stream_unicode_json_mode 19/19 (gpt-4o-2024-08-06; its json_object
    response_format, which byok's request type does not carry, cost nothing),
    openai_stream_tool_call_fragments 45/44 (+2.3 %, one function tool),
    anthropic_stream_sdk_basic 12/11 (+9.1 %, claude-3-opus; the 1.1 Claude
    factor is an assumption). Mean absolute error 2.3 %, worst +9.1 %; never
    under by more than 0.
    """
    errors = {}
    for case in KNOWN:
        req, reported, provider = request_from_sidecar(case)
        estimate = estimate_prompt_tokens(req, provider)
        errors[case] = (estimate - reported) / reported
    assert errors["openai_json_text"] == 0
    assert errors["openai_stream_text_usage_chunk"] == 0
    assert errors["openai_stream_unicode_json_mode"] == 0
    assert abs(errors["openai_stream_tool_call_fragments"]) <= 0.03
    assert abs(errors["anthropic_stream_sdk_basic"]) <= 0.10
    assert statistics.mean(abs(e) for e in errors.values()) <= 0.03


def test_estimator_on_corpus_cases_whose_tools_are_only_summarised():
    """Two cases show their tools only by name and parameters; rebuilt minimally, so the error is indicative.

    anthropic_stream_sdk_tool_use (claude-sonnet-4, get_weather(location), 377
    reported): 371 estimated (-1.6 %), 346 of which is Anthropic's documented
    tool-use system prompt. openai_json_parallel_tool_calls (two strict
    pydantic tools, 149 reported): 91 estimated (-39 %): strict structured
    tools carry schema text the summary does not show and the TypeScript-like
    rendering does not reproduce; treat estimates for strict tools as low.
    """
    weather = Tool(
        name="get_weather",
        parameters={"type": "object", "properties": {"location": {"type": "string"}}, "required": ["location"]},
    )
    req = ChatRequest(
        model="claude-sonnet-4-20250514",
        messages=(Message(role="user", content="What's the weather in Paris?"),),
        tools=(weather,),
    )
    info = Catalog(file_entries()).lookup("anthropic", req.model)
    assert abs(estimate_prompt_tokens(req, "anthropic", info) - 377) / 377 <= 0.05

    strict = {"additionalProperties": False}
    tools = (
        Tool(
            name="GetWeatherArgs",
            parameters={
                "type": "object",
                "required": ["city", "country", "units"],
                **strict,
                "properties": {
                    "city": {"type": "string"},
                    "country": {"type": "string"},
                    "units": {"type": "string", "enum": ["c", "f"]},
                },
            },
        ),
        Tool(
            name="get_stock_price",
            parameters={
                "type": "object",
                "required": ["ticker", "exchange"],
                **strict,
                "properties": {"ticker": {"type": "string"}, "exchange": {"type": "string"}},
            },
        ),
    )
    req = ChatRequest(
        model="gpt-4o",
        tools=tools,
        messages=(
            Message(role="user", content="What's the weather like in Edinburgh?"),
            Message(role="user", content="What's the price of AAPL?"),
        ),
    )
    estimate = estimate_prompt_tokens(req, "openai")
    assert 0.5 * 149 < estimate < 149  # the documented under-estimate, not a promise


def test_content_estimate_against_o200k_counts():
    """31 texts (prose, code, JSON, answers incl. CJK, European and Cyrillic lines) with their o200k counts.

    Measured: mean absolute error 5.7 %, aggregate -1.9 %, worst single text
    36 % (a short accented French line); every code slice within 12 %.
    """
    samples = json.loads(CALIBRATION.read_text(encoding="utf-8"))["samples"]
    errors = [(count_text_tokens(s["text"]) - s["o200k"]) / s["o200k"] for s in samples]
    assert statistics.mean(abs(e) for e in errors) <= 0.08
    assert max(abs(e) for e in errors) <= 0.40
    total = sum(count_text_tokens(s["text"]) for s in samples) / sum(s["o200k"] for s in samples)
    assert 0.93 <= total <= 1.07
    code = [e for s, e in zip(samples, errors) if s["kind"] == "code"]
    assert max(abs(e) for e in code) <= 0.15
    naive = [(len(s["text"]) / 4 - s["o200k"]) / s["o200k"] for s in samples]
    assert statistics.mean(abs(e) for e in naive) > statistics.mean(abs(e) for e in errors)


@pytest.mark.parametrize(
    "text,low,high",
    [
        ("", 0, 0),
        ("Hello", 1, 1),
        ("What's the weather like in SF?", 7, 7),
        ("internationalization", 3, 5),
        ("12345678", 3, 3),
        ("今天天气很好", 4, 6),
        ("\n\n    ", 2, 2),
        ("=> {}", 2, 4),
    ],
)
def test_count_text_tokens_pieces(text, low, high):
    assert low <= count_text_tokens(text) <= high


def test_counts_of_long_texts_are_remembered_without_the_texts(monkeypatch):
    from byok import tokens

    monkeypatch.setattr(tokens, "_CACHE", {})
    monkeypatch.setattr(tokens, "_CACHE_MAX", 2)
    texts = [f"{i} " + "lorem ipsum dolor sit amet " * 5 for i in range(3)]
    first = count_text_tokens(texts[0])
    assert count_text_tokens(texts[0]) == first and len(tokens._CACHE) == 1
    assert all(isinstance(k, tuple) and all(isinstance(x, int) for x in k) for k in tokens._CACHE)
    count_text_tokens(texts[1])
    count_text_tokens(texts[2])  # over the limit: the cache starts again
    assert len(tokens._CACHE) == 1


def test_framing_per_family_and_tool_calls():
    base = ChatRequest(
        model="m", messages=(Message(role="system", content="Be terse."), Message(role="user", content="Hi"))
    )
    openai = estimate_prompt_tokens(base)
    assert openai == estimate_prompt_tokens(base, "openai") == estimate_prompt_tokens(base, "deepseek")
    assert estimate_prompt_tokens(base, "no-such-kind") == openai
    assert openai == 3 + 2 * 4 + 4  # request + two messages + content ("Be terse." is 3, "Hi" 1)
    assert estimate_prompt_tokens(base, "gemini") == 2 + 4
    assert estimate_prompt_tokens(base, "anthropic") == 4 + 2 * 3 + 5  # content x 1.1, rounded up

    named = ChatRequest(model="m", messages=(Message(role="user", content="Hi", name="ada"),))
    assert (
        estimate_prompt_tokens(named)
        == estimate_prompt_tokens(ChatRequest(model="m", messages=(Message(role="user", content="Hi"),))) + 2
    )

    call = ToolCall(id="c1", name="get_weather", arguments='{"city": "Paris"}')
    history = ChatRequest(
        model="m",
        messages=(
            Message(role="user", content="Weather?"),
            Message(role="assistant", tool_calls=(call,)),
            Message(role="tool", content='{"temp": 21}', tool_call_id="c1", name="get_weather"),
        ),
    )
    assert (
        estimate_prompt_tokens(history)
        > estimate_prompt_tokens(ChatRequest(model="m", messages=history.messages[:1])) + 15
    )


def test_anthropic_tool_prompt_depends_on_tool_choice_and_model():
    tool = Tool(name="now", description="The time")
    auto = ChatRequest(model="claude-3-opus", messages=(Message(role="user", content="Time?"),), tools=(tool,))
    forced = ChatRequest(model="claude-3-opus", messages=auto.messages, tools=(tool,), tool_choice="required")
    without = ChatRequest(model="claude-3-opus", messages=auto.messages)
    default = FAMILIES["anthropic"].tool_prompt
    assert (
        estimate_prompt_tokens(auto, "anthropic") - estimate_prompt_tokens(forced, "anthropic")
        == default["auto"] - default["any"]
    )
    info = Catalog(file_entries()).lookup("anthropic", "claude-3-opus-20240229")
    assert estimate_prompt_tokens(auto, "anthropic", info) - estimate_prompt_tokens(without, "anthropic", info) > 530
    assert estimate_prompt_tokens(forced, "anthropic", info) - estimate_prompt_tokens(without, "anthropic", info) < 300


def test_openai_tool_rendering():
    tools = (
        Tool(
            name="search",
            description="Search the web",
            parameters={
                "type": "object",
                "required": ["q"],
                "properties": {
                    "q": {"type": "string", "description": "The query"},
                    "limit": {"type": "integer"},
                    "tags": {"type": "array", "items": {"type": "string"}},
                    "mode": {"enum": ["fast", "deep"]},
                    "strict": {"type": "boolean"},
                    "extra": {"type": "object", "properties": {"x": {"type": "number"}}},
                    "either": {"anyOf": [{"type": "string"}, {"type": "null"}]},
                    "multi": {"type": ["string", "number"]},
                    "blank": {},
                    "raw": "not a schema",
                },
            },
        ),
        Tool(name="now", parameters={"type": "object", "properties": {}}),
    )
    text = render_openai_tools(tools)
    assert "// Search the web\ntype search = (_: {\n// The query\nq: string,\nlimit?: number," in text
    assert 'tags?: string[],\nmode?: "fast" | "deep",\nstrict?: boolean,\nextra?: {\nx?: number,\n},' in text
    assert "either?: string | null,\nmulti?: string | number,\nblank?: any,\nraw?: any," in text
    assert "type now = () => any;" in text
    assert text.endswith("} // namespace functions")
    with_tools = ChatRequest(model="m", messages=(Message(role="user", content="Hi"),), tools=tools)
    assert (
        estimate_prompt_tokens(with_tools, "gemini")
        > estimate_prompt_tokens(ChatRequest(model="m", messages=with_tools.messages), "gemini") + 20
    )
