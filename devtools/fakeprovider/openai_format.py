"""OpenAI Chat Completions wire format, and DeepSeek's variant of it.

DeepSeek differences kept here: `reasoning_content` deltas for models whose
name contains "reasoner", `usage` on every chunk (null until the final one,
which carries finish_reason and usage together), cache-hit usage fields, and
`: keep-alive` comments between chunks.

Stream frames are built by concatenating pre-encoded byte pieces around
orjson-encoded text, so a chunk costs one small `orjson.dumps` of its text.
"""

from __future__ import annotations

import os
import time
from typing import Any

import orjson

from devtools.fakeprovider.answer import Answer, Prompt, PromptError, count_words, text_of
from devtools.fakeprovider.settings import Settings
from devtools.fakeprovider.streaming import StreamPlan

__all__ = ["MODELS", "models_list", "read_prompt", "render_json", "render_stream"]

MODELS = {
    "openai": ("gpt-4o", "gpt-4o-mini", "gpt-4.1", "o3-mini"),
    "deepseek": ("deepseek-chat", "deepseek-reasoner"),
}
_FINGERPRINT = "fp_fakeprovider"
_ERROR = {
    "message": "The server had an error while processing your request. Sorry about that!",
    "type": "server_error",
    "param": None,
    "code": None,
}


def read_prompt(body: dict[str, Any], provider: str) -> Prompt:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise PromptError("you must provide a model parameter")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptError("Missing required parameter: 'messages'.")
    texts = [text_of(m.get("content")) for m in messages[:10_000] if isinstance(m, dict)]
    last = messages[-1]
    last_user = text_of(last.get("content")) if isinstance(last, dict) and last.get("role") == "user" else None
    tool = None
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict):
        fn = tools[0].get("function") or {}
        if isinstance(fn, dict) and isinstance(fn.get("name"), str):
            tool = (fn["name"], fn.get("parameters") or {})
    max_tokens = body.get("max_completion_tokens", body.get("max_tokens"))
    stream = body.get("stream") is True
    options = body.get("stream_options")
    return Prompt(
        model=model,
        stream=stream,
        input_tokens=count_words(texts),
        last_user_text=last_user,
        tool=tool,
        include_usage=stream and isinstance(options, dict) and options.get("include_usage") is True,
        max_tokens=max_tokens if isinstance(max_tokens, int) and not isinstance(max_tokens, bool) else None,
        reasoning=provider == "deepseek" and "reasoner" in model,
    )


def _new_id(provider: str) -> str:
    if provider == "deepseek":  # DeepSeek ids are UUIDs
        h = os.urandom(16).hex()
        return f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}"
    return "chatcmpl-" + os.urandom(12).hex()


def _finish(answer: Answer) -> str:
    return "tool_calls" if answer.tool_name else "length" if answer.truncated else "stop"


def _usage(provider: str, prompt: Prompt, answer: Answer) -> dict[str, Any]:
    out = answer.output_tokens + len(answer.reasoning)
    usage: dict[str, Any] = {
        "prompt_tokens": prompt.input_tokens,
        "completion_tokens": out,
        "total_tokens": prompt.input_tokens + out,
        "prompt_tokens_details": {"cached_tokens": 0},
        "completion_tokens_details": {"reasoning_tokens": len(answer.reasoning)},
    }
    if provider == "deepseek":
        usage["prompt_cache_hit_tokens"] = 0
        usage["prompt_cache_miss_tokens"] = prompt.input_tokens
    return usage


def _tool_call_id() -> str:
    return "call_" + os.urandom(12).hex()


def render_json(provider: str, prompt: Prompt, answer: Answer) -> bytes:
    message: dict[str, Any] = {"role": "assistant", "content": None if answer.tool_name else answer.text}
    if provider == "openai":
        message["refusal"] = None
        message["annotations"] = []
    if answer.reasoning:
        message["reasoning_content"] = "".join(answer.reasoning)
    if answer.tool_name:
        message["tool_calls"] = [
            {
                "id": _tool_call_id(),
                "type": "function",
                "function": {"name": answer.tool_name, "arguments": answer.tool_json},
            }
        ]
    return orjson.dumps(
        {
            "id": _new_id(provider),
            "object": "chat.completion",
            "created": int(time.time()),
            "model": prompt.model,
            "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": _finish(answer)}],
            "usage": _usage(provider, prompt, answer),
            "system_fingerprint": _FINGERPRINT,
        }
    )


def render_stream(provider: str, prompt: Prompt, answer: Answer, s: Settings) -> StreamPlan:
    deepseek = provider == "deepseek"
    pre = b"".join(
        (
            b'data: {"id":"',
            _new_id(provider).encode(),
            b'","object":"chat.completion.chunk","created":',
            str(int(time.time())).encode(),
            b',"model":',
            orjson.dumps(prompt.model),
            b',"system_fingerprint":"',
            _FINGERPRINT.encode(),
            b'","choices":[{"index":0,"delta":',
        )
    )
    usage_null = b',"usage":null' if deepseek or prompt.include_usage else b""
    post = b',"logprobs":null,"finish_reason":null}]' + usage_null + b"}\n\n"

    def frame(delta: bytes) -> bytes:
        return pre + delta + post

    tool_head = b""
    if answer.tool_name:
        tool_head = (
            b'"tool_calls":[{"index":0,"id":"'
            + _tool_call_id().encode()
            + b'","type":"function","function":{"name":'
            + orjson.dumps(answer.tool_name)
            + b',"arguments":""}}]'
        )
    chunks: list[bytes] = []
    if answer.reasoning:
        head = frame(b'{"role":"assistant","content":null,"reasoning_content":""}')
        chunks.extend(frame(b'{"content":null,"reasoning_content":' + orjson.dumps(p) + b"}") for p in answer.reasoning)
        if tool_head:
            chunks.append(frame(b"{" + tool_head + b"}"))
    elif tool_head:
        head = frame(
            b'{"role":"assistant","content":null,' + tool_head + (b"" if deepseek else b',"refusal":null') + b"}"
        )
    else:
        head = frame(b'{"role":"assistant","content":""' + (b"" if deepseek else b',"refusal":null') + b"}")
    text_tail = b',"reasoning_content":null}' if answer.reasoning else b"}"
    chunks.extend(frame(b'{"content":' + orjson.dumps(p) + text_tail) for p in answer.pieces)
    chunks.extend(
        frame(b'{"tool_calls":[{"index":0,"function":{"arguments":' + orjson.dumps(f) + b"}}]}")
        for f in answer.tool_fragments
    )

    finish = b',"logprobs":null,"finish_reason":"' + _finish(answer).encode() + b'"}]'
    usage = orjson.dumps(_usage(provider, prompt, answer))
    if deepseek:
        tail = pre + b'{"content":""}' + finish + b',"usage":' + usage + b"}\n\n"
    else:
        tail = pre + b"{}" + finish + usage_null + b"}\n\n"
        if prompt.include_usage:
            tail += pre[: pre.rindex(b'"choices":')] + b'"choices":[],"usage":' + usage + b"}\n\n"
    tail += b"data: [DONE]\n\n"
    return StreamPlan(
        head=head,
        chunks=chunks,
        tail=tail,
        error_frame=b"data: " + orjson.dumps({"error": _ERROR}) + b"\n\n",
        malformed_frame=pre + b'{"content":"broken\n\n',
        keepalive=b": keep-alive\n\n" if deepseek else b"",
        keepalive_every=s.keepalive_every if deepseek else 0,
    )


def models_list(provider: str) -> bytes:
    owner = "deepseek" if provider == "deepseek" else "openai"
    return orjson.dumps(
        {
            "object": "list",
            "data": [{"id": m, "object": "model", "created": 1715367049, "owned_by": owner} for m in MODELS[provider]],
        }
    )
