"""Reading Anthropic Messages streams, and the vocabulary both Anthropic readers share.

The stream is named SSE events (https://docs.anthropic.com/en/docs/build-with-claude/streaming):
`message_start`, then per content block `content_block_start` / `_delta` / `_stop`,
then `message_delta` (stop reason, cumulative usage) and `message_stop`. `ping`
may come at any time, and `error` may arrive after the 200 (e.g. `overloaded_error`,
which would have been a 529 before the stream started).
"""

from __future__ import annotations

from typing import Any

import orjson

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ServerError,
    UpstreamTimeout,
)
from byok.providers.anthropic_request import FORMAT_TOOL
from byok.providers.base import StreamParser
from byok.providers.sse import SSEDecoder, SSEEvent
from byok.providers.types import FinishReason, StreamEvent, Usage

__all__ = ["ERROR_TYPES", "FINISH_REASONS", "AnthropicStreamParser", "error_for_type", "read_usage"]

PROVIDER = "anthropic"

# stop_reason values: https://docs.anthropic.com/en/api/messages#response-stop-reason
FINISH_REASONS: dict[str, FinishReason] = {
    "end_turn": "stop",
    "stop_sequence": "stop",
    "max_tokens": "length",
    "model_context_window_exceeded": "length",
    "tool_use": "tool_calls",
    "refusal": "content_filter",
    # A server tool paused a long turn; the caller may continue it. Nothing was cut off.
    "pause_turn": "stop",
}

# error.type values: https://docs.anthropic.com/en/api/errors
ERROR_TYPES: dict[str, type[ProviderError]] = {
    "invalid_request_error": BadRequestError,
    "request_too_large": BadRequestError,
    "authentication_error": AuthError,
    "permission_error": AuthError,
    "billing_error": KeyQuotaError,
    "not_found_error": NotFoundError,
    "rate_limit_error": RateLimitError,
    "api_error": ServerError,
    "overloaded_error": OverloadedError,
    "timeout_error": UpstreamTimeout,
}


def error_for_type(error: Any, **kwargs: Any) -> ProviderError:
    """The byok error for an Anthropic `error` object (`{"type": ..., "message": ...}`)."""
    if not isinstance(error, dict):
        error = {}
    etype = error.get("type") if isinstance(error.get("type"), str) else None
    message = error.get("message") if isinstance(error.get("message"), str) else None
    cls = ERROR_TYPES.get(etype or "", ServerError)  # an unknown type mid-stream: treat as transient
    return cls(message, provider=PROVIDER, provider_code=etype, **kwargs)


def read_usage(raw: Any, base: Usage | None = None) -> Usage | None:
    """Normalised usage from an Anthropic `usage` object, on top of what `base` already knew.

    Anthropic's `input_tokens` excludes prompt-cache reads and writes; byok counts
    them in `input_tokens` (as OpenAI and Gemini do) with reads also in
    `cached_input_tokens` and writes in `cache_creation_input_tokens` (the
    one-hour share in `cache_creation_1h_input_tokens`), so one cost formula
    fits every provider.
    """
    if not isinstance(raw, dict):
        return base
    prev_in = base.input_tokens if base else 0
    uncached = raw.get("input_tokens")
    cache_write = raw.get("cache_creation_input_tokens") or 0
    cache_read = raw.get("cache_read_input_tokens")
    if uncached is None and "cache_read_input_tokens" not in raw:
        input_tokens, cached = prev_in, base.cached_input_tokens if base else None
    else:
        input_tokens = (uncached or 0) + cache_write + (cache_read or 0)
        cached = cache_read
    output = raw.get("output_tokens")
    if output is None:
        output = base.output_tokens if base else 0
    if "cache_creation_input_tokens" in raw:
        written: int | None = cache_write
        split = raw.get("cache_creation")  # by TTL: {"ephemeral_5m_input_tokens", "ephemeral_1h_input_tokens"}
        written_1h = split.get("ephemeral_1h_input_tokens") if isinstance(split, dict) else None
    else:
        written = base.cache_creation_input_tokens if base else None
        written_1h = base.cache_creation_1h_input_tokens if base else None
    return Usage(
        input_tokens=input_tokens,
        output_tokens=output,
        total_tokens=input_tokens + output,
        cached_input_tokens=cached,
        cache_creation_input_tokens=written,
        cache_creation_1h_input_tokens=written_1h or None,
    )


class AnthropicStreamParser(StreamParser):
    """Bytes of a Messages stream in, `StreamEvent`s out.

    Content blocks are numbered across text, thinking and tool use; tool calls
    get their own 0, 1, 2… numbering, as OpenAI-style clients expect. An error
    that arrives in the same chunk as earlier output is raised on the next call,
    so that output is not lost.
    """

    def __init__(self) -> None:
        self.finished = False
        self._sse = SSEDecoder()
        self._tools: dict[int, int] = {}  # content block index -> tool call index
        self._format_blocks: set[int] = set()  # blocks of the response_format tool: their input is text
        self._tool_has_args: dict[int, bool] = {}
        self._usage: Usage | None = None
        self._stop_reason: str | None = None
        self._stop_sequence: str | None = None
        self._finish_sent = False
        self._pending: ProviderError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        return self._run(self._sse.feed(chunk), final=False)

    def close(self) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        # Nothing can follow close() to carry a deferred error, so here it is raised at once.
        out = self._run(self._sse.close(), final=True)
        if not self._finish_sent and self._stop_reason is not None:
            # The body ended after message_delta but before message_stop: say how it ended anyway.
            self._finish(out)
        return out

    def _run(self, sse_events: list[SSEEvent], *, final: bool) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        try:
            for sse in sse_events:
                self._handle(sse.data, out)
        except ProviderError as exc:
            if final or not out:
                raise
            self._pending = exc
        return out

    def _handle(self, data: str, out: list[StreamEvent]) -> None:
        try:
            obj = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise MalformedResponseError(
                "Anthropic sent a stream event that is not JSON.", provider=PROVIDER, in_stream=True
            ) from None
        if not isinstance(obj, dict):
            raise MalformedResponseError(
                "Anthropic sent a stream event that is not an object.", provider=PROVIDER, in_stream=True
            )
        kind = obj.get("type")
        if kind == "content_block_delta":
            self._delta(obj, out)
        elif kind == "content_block_start":
            self._block_start(obj, out)
        elif kind == "content_block_stop":
            index = obj.get("index")
            if index in self._format_blocks and not self._tool_has_args.get(index):
                out.append(StreamEvent(kind="text_delta", text="{}"))
                self._tool_has_args[index] = True
            elif index in self._tools and not self._tool_has_args[index]:
                # A tool_use block that streamed no input_json_delta was called with no arguments.
                out.append(StreamEvent(kind="tool_call_delta", index=self._tools[index], arguments="{}"))
                self._tool_has_args[index] = True
        elif kind == "message_start":
            message = obj.get("message") or {}
            out.append(StreamEvent(kind="meta", response_id=message.get("id"), model=message.get("model")))
            self._set_usage(message.get("usage"), out)
        elif kind == "message_delta":
            delta = obj.get("delta") or {}
            if delta.get("stop_reason"):
                self._stop_reason = delta["stop_reason"]
            if isinstance(delta.get("stop_sequence"), str):  # set with stop_reason "stop_sequence"
                self._stop_sequence = delta["stop_sequence"]
            self._set_usage(obj.get("usage"), out)
        elif kind == "message_stop":
            self.finished = True
            self._finish(out)
        elif kind == "error":
            raise error_for_type(obj.get("error"), in_stream=True)
        # ping, and event types added later, carry nothing for us.

    def _delta(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        delta = obj.get("delta") or {}
        dtype = delta.get("type")
        if dtype == "text_delta":
            if delta.get("text"):
                out.append(StreamEvent(kind="text_delta", text=delta["text"]))
        elif dtype == "input_json_delta":
            index = obj.get("index")
            fragment = delta.get("partial_json")
            if fragment and index in self._format_blocks:
                out.append(StreamEvent(kind="text_delta", text=fragment))
                self._tool_has_args[index] = True
            elif fragment and index in self._tools:
                out.append(StreamEvent(kind="tool_call_delta", index=self._tools[index], arguments=fragment))
                self._tool_has_args[index] = True
        elif dtype == "thinking_delta":
            if delta.get("thinking"):
                out.append(StreamEvent(kind="reasoning_delta", text=delta["thinking"]))
        elif dtype == "signature_delta":
            # The opaque proof of the thinking block just streamed: the next turn must send it back.
            if delta.get("signature"):
                out.append(StreamEvent(kind="thinking_signature", signature=delta["signature"]))
        # citations_delta is not relayed.

    def _block_start(self, obj: dict[str, Any], out: list[StreamEvent]) -> None:
        block = obj.get("content_block") or {}
        btype = block.get("type")
        if btype == "text":
            if block.get("text"):
                out.append(StreamEvent(kind="text_delta", text=block["text"]))
        elif btype == "tool_use" and block.get("name") == FORMAT_TOOL:
            self._format_blocks.add(obj.get("index"))  # type: ignore[arg-type]  # every content block has one
            if block.get("input"):
                out.append(StreamEvent(kind="text_delta", text=orjson.dumps(block["input"]).decode()))
                self._tool_has_args[obj.get("index")] = True  # type: ignore[index]
        elif btype == "tool_use":
            index: int = obj.get("index")  # type: ignore[assignment]  # every content block has one
            tool_index = len(self._tools)
            self._tools[index] = tool_index
            call_id, name = block.get("id"), block.get("name")
            out.append(StreamEvent(kind="tool_call_start", index=tool_index, tool_call_id=call_id, name=name))
            start_input = block.get("input")
            self._tool_has_args[index] = bool(start_input)
            if start_input:
                args = orjson.dumps(start_input).decode()
                out.append(StreamEvent(kind="tool_call_delta", index=tool_index, arguments=args))
        elif btype == "thinking":
            if block.get("thinking"):
                out.append(StreamEvent(kind="reasoning_delta", text=block["thinking"]))
            if block.get("signature"):
                out.append(StreamEvent(kind="thinking_signature", signature=block["signature"]))
        elif btype == "redacted_thinking":
            # Encrypted reasoning: nothing to show, but it must go back in the next turn.
            out.append(StreamEvent(kind="redacted_thinking", signature=block.get("data") or ""))
        # server-side tool blocks have nothing to show the caller.

    def _set_usage(self, raw: Any, out: list[StreamEvent]) -> None:
        usage = read_usage(raw, self._usage)
        if usage is not None and usage != self._usage:
            self._usage = usage
            out.append(StreamEvent(kind="usage", usage=usage))

    def _finish(self, out: list[StreamEvent]) -> None:
        if self._finish_sent:
            return
        self._finish_sent = True
        raw = self._stop_reason
        reason = FINISH_REASONS.get(raw or "", "stop")
        if reason == "tool_calls" and self._format_blocks and not self._tools:
            reason = "stop"  # only the response_format tool was called: a finished answer
        out.append(
            StreamEvent(kind="finish", finish_reason=reason, raw_finish_reason=raw, stop_sequence=self._stop_sequence)
        )
