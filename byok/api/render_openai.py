"""OpenAI's chat-completions wire format, out: byok's results and stream events -> OpenAI's shapes. Pure.

    body = render_completion(response, completion_id=..., created=..., model=...)  # a `chat.completion` object
    writer = ChunkWriter(completion_id, created, model, include_usage=...)
    writer.event(ev) / writer.done(reason, usage) / writer.failed(error)        # -> SSE bytes
    status, body, headers = error_response(exc)                                  # ByokError -> OpenAI's error shape

The parsing side is `byok.api.openai_compat`; the view (`byok.api.views_openai`) reads
top to bottom: parse -> handler -> this renderer.
"""

from __future__ import annotations

import math
from typing import TYPE_CHECKING, Any

import orjson

from byok.exceptions import ByokError
from byok.providers.types import ChatResponse, StreamEvent, StreamStarted, Thinking, Usage
from byok.schemas.carry import thinking_blocks

if TYPE_CHECKING:
    from byok.catalog import Catalog

__all__ = [
    "DONE",
    "SDK_MAX_RETRY_AFTER_S",
    "ChunkWriter",
    "error_body",
    "error_response",
    "finish_reason",
    "model_list",
    "render_completion",
    "retry_after_headers",
    "usage_dict",
]

DONE = b"data: [DONE]\n\n"

# The openai SDK sleeps for a Retry-After of at most this long before retrying by itself.
SDK_MAX_RETRY_AFTER_S = 60

# byok's finish reasons -> OpenAI's. "error" (DeepSeek insufficient_system_resource, Gemini
# MALFORMED_FUNCTION_CALL and the like: the answer ended early) is told as "length".
_FINISH = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "content_filter": "content_filter",
    "error": "length",
}

# OpenAI error `type` by HTTP status (the SDK picks its exception class by status alone).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    403: "permission_error",
    404: "not_found_error",
    409: "conflict_error",
    413: "invalid_request_error",
    422: "invalid_request_error",
    429: "rate_limit_error",
    502: "upstream_error",
    503: "service_unavailable",
    504: "timeout",
}


# -- rendering ------------------------------------------------------------------------------------


def finish_reason(reason: str | None, *, legacy: bool = False) -> str:
    mapped = _FINISH.get(reason or "stop", "stop")
    return "function_call" if legacy and mapped == "tool_calls" else mapped


def usage_dict(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    out: dict[str, Any] = {
        "prompt_tokens": usage.input_tokens,
        "completion_tokens": usage.output_tokens,
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }
    if usage.cached_input_tokens is not None:
        out["prompt_tokens_details"] = {"cached_tokens": usage.cached_input_tokens}
    if usage.reasoning_tokens is not None:
        out["completion_tokens_details"] = {"reasoning_tokens": usage.reasoning_tokens}
    if usage.cache_creation_input_tokens is not None:
        # Anthropic's cache counts, under Anthropic's names (as LiteLLM and other gateways show them).
        out["cache_creation_input_tokens"] = usage.cache_creation_input_tokens
        out["cache_read_input_tokens"] = usage.cached_input_tokens or 0
    return out


def _signature(call: dict[str, Any], signature: str | None) -> dict[str, Any]:
    """Gemini's thought signature on a tool call, where Google's OpenAI-compatible API puts it."""
    if signature:
        call["extra_content"] = {"google": {"thought_signature": signature}}
    return call


def _logprobs(tokens: list[dict[str, Any]] | None) -> dict[str, Any] | None:
    """OpenAI's `choices[0].logprobs`: null unless the provider sent some (they were asked for)."""
    return None if tokens is None else {"content": tokens, "refusal": None}


def _call_id(call_id: str | None, completion_id: str, index: int) -> str:
    return call_id or f"call_{completion_id[-12:]}_{index}"


def render_completion(
    response: ChatResponse, *, completion_id: str, created: int, model: str, legacy: bool = False
) -> dict[str, Any]:
    """A full answer as OpenAI's `chat.completion` object."""
    message: dict[str, Any] = {"role": "assistant", "content": response.text, "refusal": response.refusal}
    if response.tool_calls:
        calls = [
            _signature(
                {
                    "id": _call_id(tc.id, completion_id, i),
                    "type": "function",
                    "function": {"name": tc.name, "arguments": tc.arguments},
                },
                tc.thought_signature,
            )
            for i, tc in enumerate(response.tool_calls)
        ]
        if legacy:
            message["function_call"] = calls[0]["function"]
        else:
            message["tool_calls"] = calls
    if response.reasoning:
        message["reasoning_content"] = response.reasoning
    blocks = thinking_blocks(response.thinking)
    if blocks:
        message["thinking_blocks"] = blocks
    reason = response.finish_reason
    if response.tool_calls and reason == "stop":
        reason = "tool_calls"  # the model asked for a call: say so, whatever the provider called it
    return {
        "id": completion_id,
        "object": "chat.completion",
        "created": created,
        "model": model,
        "choices": [
            {
                "index": 0,
                "message": message,
                "logprobs": _logprobs(response.logprobs),
                "finish_reason": finish_reason(reason, legacy=legacy),
            }
        ],
        "usage": usage_dict(response.usage),
        "system_fingerprint": None,
    }


def _sse(payload: bytes) -> bytes:
    return b"data: " + payload + b"\n\n"


class ChunkWriter:
    """One stream's `chat.completion.chunk` events, as SSE bytes ready to send."""

    def __init__(
        self, completion_id: str, created: int, model: str, *, include_usage: bool = False, legacy: bool = False
    ) -> None:
        self.completion_id = completion_id
        self.include_usage = include_usage
        self.legacy = legacy
        self._head = orjson.dumps(
            {"id": completion_id, "object": "chat.completion.chunk", "created": created, "model": model}
        )[:-1]
        self._role_sent = False
        self._saw_tool_call = False
        self._legacy_index: int | None = None  # the one call the legacy shape can carry
        self._thought: list[str] = []  # reasoning of the thinking block not yet signed

    def _chunk(
        self, delta: dict[str, Any], finish: str | None = None, logprobs: list[dict[str, Any]] | None = None
    ) -> bytes:
        if not self._role_sent:
            self._role_sent = True
            delta = {"role": "assistant", **delta}
        choice = {"index": 0, "delta": delta, "logprobs": _logprobs(logprobs), "finish_reason": finish}
        return _sse(self._head + b',"choices":' + orjson.dumps([choice]) + b"}")

    def event(self, ev: StreamStarted | StreamEvent) -> bytes | None:
        """One normalised event -> one chunk (None for events OpenAI's stream does not show)."""
        if isinstance(ev, StreamStarted):
            return None  # the headers carry it
        kind = ev.kind
        if kind == "text_delta":
            return self._chunk({"content": ev.text}, logprobs=ev.logprobs)
        if kind == "reasoning_delta":
            self._thought.append(ev.text or "")
            return self._chunk({"reasoning_content": ev.text})
        if kind == "thinking_signature":  # the block is complete: the whole of it, signed, to send back
            block = Thinking(text="".join(self._thought), signature=ev.signature)
            self._thought = []
            return self._chunk({"thinking_blocks": thinking_blocks((block,))})
        if kind == "redacted_thinking":
            return self._chunk({"thinking_blocks": thinking_blocks((Thinking(redacted=ev.signature or ""),))})
        if kind == "refusal_delta":
            return self._chunk({"refusal": ev.text})
        if kind == "tool_call_start":
            self._saw_tool_call = True
            index = ev.index or 0
            if self.legacy:
                if self._legacy_index is not None:
                    return None  # the legacy shape carries one call
                self._legacy_index = index
                return self._chunk({"function_call": {"name": ev.name, "arguments": ""}})
            call = {
                "index": index,
                "id": _call_id(ev.tool_call_id, self.completion_id, index),
                "type": "function",
                "function": {"name": ev.name, "arguments": ""},
            }
            return self._chunk({"tool_calls": [_signature(call, ev.signature)]})
        if kind == "tool_call_delta":
            index = ev.index or 0
            if self.legacy:
                return (
                    self._chunk({"function_call": {"arguments": ev.arguments}}) if index == self._legacy_index else None
                )
            return self._chunk({"tool_calls": [{"index": index, "function": {"arguments": ev.arguments}}]})
        return None  # usage, finish, meta: told by done()

    def done(self, reason: str | None, usage: Usage | None) -> bytes:
        """The final chunk (finish_reason), the usage chunk when asked for, and [DONE]."""
        if self._saw_tool_call and reason == "stop":
            reason = "tool_calls"
        out = self._chunk({}, finish_reason(reason, legacy=self.legacy))
        if self.include_usage:
            out += _sse(self._head + b',"choices":[],"usage":' + orjson.dumps(usage_dict(usage)) + b"}")
        return out + DONE

    def failed(self, exc: ByokError) -> bytes:
        """A failure after the stream started: an error event the SDK raises on, then [DONE]."""
        return _sse(orjson.dumps(error_body(exc.status_code, exc.message, exc.code))) + DONE


# -- errors and models ----------------------------------------------------------------------------


def error_body(status: int, message: str, code: str | None, param: str | None = None) -> dict[str, Any]:
    """OpenAI's error object: `{"error": {"message", "type", "param", "code"}}`."""
    kind = _ERROR_TYPES.get(status, "server_error" if status >= 500 else "invalid_request_error")
    return {"error": {"message": message, "type": kind, "param": param, "code": code}}


def retry_after_headers(seconds: float | None) -> dict[str, str]:
    if seconds is None:
        return {}
    return {"Retry-After": str(max(1, math.ceil(seconds))), "retry-after-ms": str(max(1, round(seconds * 1000)))}


def error_response(exc: ByokError) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A byok error -> (status, OpenAI error body, headers).

    429 and 503 carry Retry-After when byok knows when to come back, and every
    error says through `x-should-retry` whether the SDK's automatic retry can
    help: not when the wait is longer than the SDK would honour (a minute).
    """
    status = exc.status_code
    retry_after = getattr(exc, "retry_after", None)
    retry = exc.retryable and (retry_after is None or retry_after <= SDK_MAX_RETRY_AFTER_S)
    headers = {"x-should-retry": "true" if retry else "false"}
    if status in (429, 503):
        headers.update(retry_after_headers(retry_after))
    return status, error_body(status, exc.message, exc.code), headers


def model_list(providers, catalog: Catalog | None = None) -> dict[str, Any]:
    """`GET /v1/models`: `<provider>/<model>` for each enabled provider's default model and the catalog's models of
    its kind (or naming it, from an override), then the bare default models (what a bare `model` routes to)."""
    data, seen = [], set()
    enabled = [p for p in providers if p.enabled and p.default_model]
    for p in enabled:
        known = catalog.models_of(p.kind, p.name) if catalog is not None else []
        for model in [p.default_model, *known]:
            if f"{p.name}/{model}" not in seen:
                seen.add(f"{p.name}/{model}")
                data.append({"id": f"{p.name}/{model}", "object": "model", "created": 0, "owned_by": p.name})
    for p in enabled:
        if p.default_model not in seen:
            seen.add(p.default_model)
            data.append({"id": p.default_model, "object": "model", "created": 0, "owned_by": p.name})
    return {"object": "list", "data": data}
