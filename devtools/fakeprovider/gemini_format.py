"""Gemini generateContent / streamGenerateContent wire format.

Streams use SSE with CRLF line ends (`?alt=sse`, as the SDKs ask) or, without
`alt=sse`, one JSON array written piece by piece, as the REST API does. Every
chunk repeats usageMetadata; the last one carries finishReason and the counts.
Function calls arrive whole (Gemini does not stream arguments) and have no id.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from devtools.fakeprovider.answer import Answer, Prompt, PromptError, count_words
from devtools.fakeprovider.settings import Settings
from devtools.fakeprovider.streaming import StreamPlan

__all__ = ["models_list", "read_prompt", "render_json", "render_stream"]

MODELS = ("gemini-2.5-flash", "gemini-2.5-pro", "gemini-2.0-flash", "gemini-3-pro-preview")
# Every function call carries a thought signature, as Gemini 3 (and 2.5 while thinking) sends one;
# Gemini 3 models refuse history whose current-turn calls lost theirs.
# https://ai.google.dev/gemini-api/docs/thought-signatures
SIGNATURE = "ZmFrZXByb3ZpZGVyLWdlbWluaS10aG91Z2h0"
_PLACEHOLDERS = ("skip_thought_signature_validator", "context_engineering_is_the_way_to_go")
_STREAM_ERROR = {
    "error": {"code": 503, "message": "The model is overloaded. Please try again later.", "status": "UNAVAILABLE"}
}


def _get(d: dict[str, Any], camel: str, snake: str) -> Any:
    return d.get(camel, d.get(snake))


def _texts(content: Any) -> list[str]:
    parts = content.get("parts") if isinstance(content, dict) else None
    if not isinstance(parts, list):
        return []
    return [p["text"] for p in parts[:1000] if isinstance(p, dict) and isinstance(p.get("text"), str)]


def read_prompt(body: dict[str, Any], model: str, stream: bool) -> Prompt:
    contents = body.get("contents")
    if not isinstance(contents, list) or not contents:
        raise PromptError("* GenerateContentRequest.contents: contents is not specified")
    texts = _texts(_get(body, "systemInstruction", "system_instruction"))
    for c in contents[:10_000]:
        texts.extend(_texts(c))
    if model.startswith("gemini-3"):
        _check_signatures(contents)
    last = contents[-1]
    last_user = None
    if isinstance(last, dict) and last.get("role", "user") == "user":
        last_user = " ".join(_texts(last))
    tool = None
    tools = body.get("tools")
    if isinstance(tools, list):
        for entry in tools[:100]:
            decls = _get(entry, "functionDeclarations", "function_declarations") if isinstance(entry, dict) else None
            if (
                isinstance(decls, list)
                and decls
                and isinstance(decls[0], dict)
                and isinstance(decls[0].get("name"), str)
            ):
                d = decls[0]
                tool = (
                    d["name"],
                    d.get("parameters") or _get(d, "parametersJsonSchema", "parameters_json_schema") or {},
                )
                break
    config = _get(body, "generationConfig", "generation_config")
    config = config if isinstance(config, dict) else {}
    max_tokens = _get(config, "maxOutputTokens", "max_output_tokens")
    thinking = _get(config, "thinkingConfig", "thinking_config")
    return Prompt(
        model=model,
        stream=stream,
        include_usage=True,
        input_tokens=count_words(texts),
        last_user_text=last_user,
        tool=tool,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        reasoning=isinstance(thinking, dict) and _get(thinking, "includeThoughts", "include_thoughts") is True,
    )


def _check_signatures(contents: list[Any]) -> None:
    """Gemini 3: the first functionCall part of each model step in the current turn must be signed."""
    current = 0  # the current turn starts at the last user content with text (not a function response)
    for i, c in enumerate(contents):
        if isinstance(c, dict) and c.get("role", "user") == "user" and _texts(c):
            current = i
    for i, c in enumerate(contents[current:], start=current):
        parts = c.get("parts") if isinstance(c, dict) and c.get("role") == "model" else None
        calls = [p for p in parts or () if isinstance(p, dict) and "functionCall" in p]
        if calls and calls[0].get("thoughtSignature") not in (SIGNATURE, *_PLACEHOLDERS):
            name = calls[0]["functionCall"].get("name")
            raise PromptError(
                "Function call is missing a thought_signature in functionCall parts. This is required for tools "
                "to work correctly, and missing thought_signature may lead to degraded model performance. "
                f"Additional data, function call `default_api:{name}` , position {i + 1}."
            )


def _finish(answer: Answer) -> str:
    return "MAX_TOKENS" if answer.truncated and not answer.tool_name else "STOP"


def _usage(prompt: Prompt, answer: Answer) -> dict[str, Any]:
    out, thoughts = answer.output_tokens, len(answer.reasoning)
    usage = {
        "promptTokenCount": prompt.input_tokens,
        "candidatesTokenCount": out,
        "totalTokenCount": prompt.input_tokens + out + thoughts,
    }
    if thoughts:
        usage["thoughtsTokenCount"] = thoughts
    return usage


def _response_id() -> str:
    return os.urandom(12).hex()


def render_json(prompt: Prompt, answer: Answer) -> bytes:
    parts: list[dict[str, Any]] = []
    if answer.reasoning:
        parts.append({"text": "".join(answer.reasoning), "thought": True})
    if answer.tool_name:
        parts.append(
            {"functionCall": {"name": answer.tool_name, "args": answer.tool_args}, "thoughtSignature": SIGNATURE}
        )
    else:
        parts.append({"text": answer.text})
    return orjson.dumps(
        {
            "candidates": [{"content": {"parts": parts, "role": "model"}, "finishReason": _finish(answer), "index": 0}],
            "usageMetadata": _usage(prompt, answer),
            "modelVersion": prompt.model,
            "responseId": _response_id(),
        }
    )


def render_stream(prompt: Prompt, answer: Answer, s: Settings, sse: bool = True) -> StreamPlan:
    rid = _response_id().encode()
    running_usage = b'"usageMetadata":{"promptTokenCount":%d,"totalTokenCount":%d},' % (
        prompt.input_tokens,
        prompt.input_tokens,
    )
    post = (
        b'],"role":"model"},"index":0}],'
        + running_usage
        + b'"modelVersion":'
        + orjson.dumps(prompt.model)
        + b',"responseId":"'
        + rid
        + b'"}'
    )
    pre = b'{"candidates":[{"content":{"parts":['
    start, sep, end = (b"data: ", b"\r\n\r\n", b"") if sse else (b"", b"", b"]")
    first = [True]

    def frame(part: bytes) -> bytes:
        # JSON-array streams put a comma before every element but the first.
        lead = b"" if sse or first[0] else b",\r\n"
        first[0] = False
        return lead + start + pre + part + post + sep

    chunks = [frame(b'{"text":' + orjson.dumps(p) + b',"thought":true}') for p in answer.reasoning]
    if answer.tool_name:
        call = {"functionCall": {"name": answer.tool_name, "args": answer.tool_args}, "thoughtSignature": SIGNATURE}
        chunks.append(frame(orjson.dumps(call)))
    else:
        chunks.extend(frame(b'{"text":' + orjson.dumps(p) + b"}") for p in answer.pieces)
    final = orjson.dumps(
        {
            "candidates": [
                {"content": {"parts": [{"text": ""}], "role": "model"}, "finishReason": _finish(answer), "index": 0}
            ],
            "usageMetadata": _usage(prompt, answer),
            "modelVersion": prompt.model,
            "responseId": rid.decode(),
        }
    )
    lead = b"" if sse or first[0] else b",\r\n"
    return StreamPlan(
        head=b"" if sse else b"[",
        chunks=chunks,
        tail=lead + start + final + sep + end,
        # An error after a 200: the error object as the next element (SSE data line or array item).
        error_frame=(b"" if sse or s.mid_stream_k() == 0 else lead) + start + orjson.dumps(_STREAM_ERROR) + sep + end,
        malformed_frame=(b"data: " if sse else b",\r\n") + pre + b'{"text":"broken' + (sep or b"\r\n"),
        content_type="text/event-stream" if sse else "application/json; charset=UTF-8",
    )


def models_list() -> bytes:
    return orjson.dumps(
        {
            "models": [
                {
                    "name": f"models/{m}",
                    "displayName": m,
                    "inputTokenLimit": 1048576,
                    "outputTokenLimit": 65536,
                    "supportedGenerationMethods": ["generateContent", "countTokens"],
                }
                for m in MODELS
            ]
        }
    )
