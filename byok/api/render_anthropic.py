"""Anthropic's Messages wire format, out: byok's results and stream events -> Anthropic's shapes. Pure.

    body = render_message(response, message_id=..., model=...)     # a full `message` object
    writer = MessageStreamWriter(message_id, model, input_tokens=estimate)
    writer.event(ev) / writer.done(done) / writer.failed(failed)    # -> SSE bytes (`event:` + `data:`)
    status, body, headers = error_response(exc)                    # ByokError -> Anthropic's error shape

The stream follows https://docs.anthropic.com/en/api/messages-streaming: `message_start`, a
`ping`, then per content block `content_block_start` / `content_block_delta` (`text_delta`,
`thinking_delta`, `signature_delta`, `input_json_delta`) / `content_block_stop`, then
`message_delta` (stop reason, cumulative usage) and `message_stop`. A failure after the stream
started is an `error` event, which the anthropic SDK raises.

`message_start` waits for the first piece of the answer: an Anthropic upstream has told its
input tokens by then; for other providers it carries byok's estimate, and `message_delta`
carries the provider's count (the SDK takes the later one).

Usage: byok counts prompt-cache reads and writes inside `input_tokens` (one cost formula for
every provider); Anthropic counts them apart, so they are taken out again here.
"""

from __future__ import annotations

from typing import Any

import orjson

from byok.api.render_openai import SDK_MAX_RETRY_AFTER_S, retry_after_headers
from byok.exceptions import ByokError
from byok.providers.types import ChatResponse, StreamDone, StreamEvent, StreamFailed, StreamStarted, Usage

__all__ = [
    "MessageStreamWriter",
    "error_body",
    "error_response",
    "error_type",
    "model_info",
    "model_page",
    "render_message",
    "stop_reason",
    "usage_dict",
]

# byok's finish reasons -> Anthropic's stop_reason. "error" (the answer ended early) is told as max_tokens.
_STOP = {
    "stop": "end_turn",
    "length": "max_tokens",
    "tool_calls": "tool_use",
    "content_filter": "refusal",
    "error": "max_tokens",
}
# What an Anthropic upstream said, kept when it maps back to itself. `stop_sequence` (with the matched
# string in `stop_sequence`) comes only from Anthropic: OpenAI and DeepSeek answer finish_reason "stop",
# Gemini "STOP", both for a natural end and for a stop string, and none says which string matched (it is
# not in the text either), so their answers say `end_turn` and `stop_sequence: null`.
_RAW_KEPT = frozenset({"end_turn", "max_tokens", "stop_sequence", "tool_use", "refusal", "pause_turn"})

# Anthropic's error `type` by HTTP status (https://docs.anthropic.com/en/api/errors).
_ERROR_TYPES = {
    400: "invalid_request_error",
    401: "authentication_error",
    402: "billing_error",
    403: "permission_error",
    404: "not_found_error",
    409: "invalid_request_error",
    413: "request_too_large",
    422: "invalid_request_error",
    429: "rate_limit_error",
    500: "api_error",
    502: "api_error",
    503: "overloaded_error",
    504: "timeout_error",
    529: "overloaded_error",
}


# -- the answer ---------------------------------------------------------------------------------


def stop_reason(reason: str | None, raw: str | None = None, *, tool_calls: bool = False) -> str:
    """byok's finish reason (and the provider's own word for it) -> Anthropic's `stop_reason`."""
    if raw in _RAW_KEPT:
        return raw
    mapped = _STOP.get(reason or "stop", "end_turn")
    return "tool_use" if tool_calls and mapped == "end_turn" else mapped


def usage_dict(usage: Usage | None, *, input_estimate: int = 0) -> dict[str, Any]:
    """byok's usage in Anthropic's terms: `input_tokens` without cache reads and writes."""
    if usage is None:
        return {"input_tokens": input_estimate, "output_tokens": 0}
    read = usage.cached_input_tokens or 0
    written = usage.cache_creation_input_tokens or 0
    return {
        "input_tokens": max(0, usage.input_tokens - read - written),
        "output_tokens": usage.output_tokens,
        "cache_creation_input_tokens": written,
        "cache_read_input_tokens": read,
    }


def _tool_input(arguments: str | None) -> dict[str, Any]:
    try:
        value = orjson.loads(arguments or "{}")
    except orjson.JSONDecodeError:
        return {}
    return value if isinstance(value, dict) else {}


def render_message(response: ChatResponse, *, message_id: str, model: str) -> dict[str, Any]:
    """A full answer as Anthropic's `message` object: thinking, then text, then tool_use blocks."""
    content: list[dict[str, Any]] = []
    for block in response.thinking:
        if block.redacted is not None:
            content.append({"type": "redacted_thinking", "data": block.redacted})
        else:
            content.append({"type": "thinking", "thinking": block.text, "signature": block.signature or ""})
    if response.reasoning and not response.thinking:  # reasoning text without blocks (DeepSeek, Gemini)
        content.append({"type": "thinking", "thinking": response.reasoning, "signature": ""})
    if response.text or response.refusal:
        content.append({"type": "text", "text": response.text or response.refusal})
    for i, call in enumerate(response.tool_calls):
        content.append(
            {
                "type": "tool_use",
                "id": call.id or f"toolu_{message_id[-12:]}_{i}",
                "name": call.name,
                "input": _tool_input(call.arguments),
            }
        )
    return {
        "id": message_id,
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": content,
        "stop_reason": stop_reason(
            response.finish_reason, response.raw_finish_reason, tool_calls=bool(response.tool_calls)
        ),
        "stop_sequence": response.stop_sequence,
        "usage": usage_dict(response.usage),
    }


# -- the stream ------------------------------------------------------------------------------------


def _sse(event: str, payload: dict[str, Any]) -> bytes:
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(payload) + b"\n\n"


PING = _sse("ping", {"type": "ping"})


class MessageStreamWriter:
    """One stream's events as Anthropic SSE bytes; content blocks are opened and closed in order."""

    def __init__(self, message_id: str, model: str, *, input_tokens: int = 0, request_id: str | None = None) -> None:
        self.message_id, self.model, self.request_id = message_id, model, request_id
        self.input_estimate = input_tokens
        self.started = False
        self._usage: Usage | None = None
        self._block = -1  # index of the last block opened
        self._open: str | None = None  # type of the open block, None when none is open
        self._tool_blocks: dict[int, int] = {}  # byok tool index -> block index
        self._saw_tool = False
        self._stop_sequence: str | None = None  # from the finish event, told in message_delta

    def _start(self) -> bytes:
        if self.started:
            return b""
        self.started = True
        message: dict[str, Any] = {
            "id": self.message_id,
            "type": "message",
            "role": "assistant",
            "model": self.model,
            "content": [],
            "stop_reason": None,
            "stop_sequence": None,
            "usage": usage_dict(self._usage, input_estimate=self.input_estimate),
        }
        return _sse("message_start", {"type": "message_start", "message": message}) + PING

    def keepalive(self) -> bytes:
        """What to send when the provider has been silent: a `ping` (after `message_start`, which comes first)."""
        return self._start() or PING

    def _close(self) -> bytes:
        if self._open is None:
            return b""
        self._open = None
        return _sse("content_block_stop", {"type": "content_block_stop", "index": self._block})

    def _open_block(self, block: dict[str, Any]) -> bytes:
        out = self._close()
        self._block += 1
        self._open = block["type"]
        return out + _sse(
            "content_block_start", {"type": "content_block_start", "index": self._block, "content_block": block}
        )

    def _delta(self, delta: dict[str, Any], index: int | None = None) -> bytes:
        index = self._block if index is None else index
        return _sse("content_block_delta", {"type": "content_block_delta", "index": index, "delta": delta})

    def event(self, ev: StreamStarted | StreamEvent) -> bytes | None:
        """One normalised event -> the bytes Anthropic's stream has for it (None when nothing yet)."""
        if isinstance(ev, StreamStarted):
            return None  # headers carry who serves it; message_start waits for the first piece of the answer
        kind = ev.kind
        if kind == "usage":
            self._usage = ev.usage
            return None
        if kind == "finish":
            self._stop_sequence = ev.stop_sequence
            return None  # the finish is told by done()
        if kind == "meta":
            return None
        out = self._start()
        if kind == "thinking_signature":  # the thinking block is complete and signed; the next one is new
            if self._open != "thinking":
                out += self._open_block({"type": "thinking", "thinking": "", "signature": ""})
            return out + self._delta({"type": "signature_delta", "signature": ev.signature or ""}) + self._close()
        if kind == "redacted_thinking":
            out += self._open_block({"type": "redacted_thinking", "data": ev.signature or ""})
            return out + self._close()
        if kind in ("text_delta", "refusal_delta"):
            if not ev.text:
                return out or None
            if self._open != "text":
                out += self._open_block({"type": "text", "text": ""})
            return out + self._delta({"type": "text_delta", "text": ev.text})
        if kind == "reasoning_delta":
            if self._open != "thinking":
                out += self._open_block({"type": "thinking", "thinking": "", "signature": ""})
            return out + self._delta({"type": "thinking_delta", "thinking": ev.text or ""})
        if kind == "tool_call_start":
            self._saw_tool = True
            index = ev.index or 0
            call_id = ev.tool_call_id or f"toolu_{self.message_id[-12:]}_{index}"
            out += self._open_block({"type": "tool_use", "id": call_id, "name": ev.name or "", "input": {}})
            self._tool_blocks[index] = self._block
            return out
        if kind == "tool_call_delta":
            block = self._tool_blocks.get(ev.index or 0)
            if block is None or not ev.arguments:
                return out or None
            return out + self._delta({"type": "input_json_delta", "partial_json": ev.arguments}, block)
        return out or None

    def done(self, done: StreamDone) -> bytes:
        """The last block's stop, `message_delta` (stop reason, usage) and `message_stop`."""
        if done.usage is not None and (done.usage.input_tokens or done.usage.output_tokens):
            self._usage = done.usage
        out = self._start() + self._close()
        usage = usage_dict(self._usage, input_estimate=self.input_estimate)
        delta = {
            "stop_reason": stop_reason(done.finish_reason, done.raw_finish_reason, tool_calls=self._saw_tool),
            "stop_sequence": self._stop_sequence,
        }
        out += _sse("message_delta", {"type": "message_delta", "delta": delta, "usage": usage})
        return out + _sse("message_stop", {"type": "message_stop"})

    def failed(self, failed: StreamFailed) -> bytes:
        """A failure after the stream started: Anthropic's `error` event (the SDK raises it)."""
        return self.error(failed.error)

    def error(self, exc: ByokError) -> bytes:
        """byok broke, or the stream ended without a terminal event: an `error` event too."""
        status = _status(exc)
        return _sse("error", error_body(status, exc.message, request_id=self.request_id))


# -- errors and models ------------------------------------------------------------------------------


def _status(exc: ByokError) -> int:
    """The HTTP status Anthropic would use: 529 for an overloaded upstream, else byok's."""
    return 529 if exc.code == "upstream_overloaded" else exc.status_code


def error_type(status: int) -> str:
    return _ERROR_TYPES.get(status, "api_error" if status >= 500 else "invalid_request_error")


def error_body(status: int, message: str, *, request_id: str | None = None, kind: str | None = None) -> dict[str, Any]:
    """Anthropic's error object: `{"type": "error", "error": {"type", "message"}, "request_id"}`."""
    body: dict[str, Any] = {"type": "error", "error": {"type": kind or error_type(status), "message": message}}
    if request_id:
        body["request_id"] = request_id
    return body


def error_response(exc: ByokError, request_id: str | None = None) -> tuple[int, dict[str, Any], dict[str, str]]:
    """A byok error -> (status, Anthropic error body, headers).

    An upstream that stayed overloaded answers 529 `overloaded_error`, as Anthropic does; 429 and
    503 carry `retry-after` when byok knows when to come back; `x-should-retry` tells the SDK
    whether its automatic retry can help (not when the wait is over a minute).
    """
    status = _status(exc)
    retry_after = getattr(exc, "retry_after", None)
    retry = exc.retryable and (retry_after is None or retry_after <= SDK_MAX_RETRY_AFTER_S)
    headers = {"x-should-retry": "true" if retry else "false"}
    if status in (429, 503, 529):
        headers.update(retry_after_headers(retry_after))
    return status, error_body(status, exc.message, request_id=request_id), headers


def model_info(model_id: str, owner: str) -> dict[str, Any]:
    """One model in Anthropic's `ModelInfo` shape (release date unknown: the epoch, as Anthropic allows)."""
    return {
        "type": "model",
        "id": model_id,
        "display_name": f"{model_id} ({owner})",
        "created_at": "1970-01-01T00:00:00Z",
        "lifecycle": "active",
    }


def model_page(items: list[dict[str, Any]]) -> dict[str, Any]:
    """`GET /v1/models` for Anthropic's clients: every model in one page."""
    return {
        "data": items,
        "has_more": False,
        "first_id": items[0]["id"] if items else None,
        "last_id": items[-1]["id"] if items else None,
    }
