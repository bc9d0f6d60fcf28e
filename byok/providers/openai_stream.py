"""Reading OpenAI-style `chat.completion.chunk` streams (https://platform.openai.com/docs/api-reference/chat-streaming).

Only choice 0 is read: byok asks for one choice (`n` above 1 is refused before sending).
"""

from __future__ import annotations

from typing import Any, Protocol

import orjson

from byok.exceptions import MalformedResponseError, ProviderError
from byok.providers.base import StreamParser
from byok.providers.sse import SSEDecoder
from byok.providers.types import FinishReason, StreamEvent, Usage


class ChunkReader(Protocol):
    """What the parser needs of its adapter (`OpenAIAdapter` and its vendor subclasses)."""

    reasoning_field: str | None

    def malformed(self, what: str, *, in_stream: bool = False) -> MalformedResponseError: ...

    def error_from_payload(
        self, payload: dict[str, Any], *, status: int | None, headers: dict[str, str], in_stream: bool = False
    ) -> ProviderError: ...

    def parse_usage(self, usage: dict[str, Any]) -> Usage: ...


__all__ = ["OpenAIStreamParser", "map_finish_reason"]

_FINISH_REASONS: dict[str, FinishReason] = {
    "stop": "stop",
    "length": "length",
    "tool_calls": "tool_calls",
    "function_call": "tool_calls",  # legacy functions API
    "content_filter": "content_filter",
    # DeepSeek: "interrupted due to insufficient resource of the inference system".
    "insufficient_system_resource": "error",
    "error": "error",
}


def map_finish_reason(raw: str | None) -> FinishReason:
    """OpenAI-family finish reasons to byok's five; unknown ones read as an ordinary stop."""
    return _FINISH_REASONS.get(raw or "stop", "stop")


class OpenAIStreamParser(StreamParser):
    """`chat.completion.chunk` SSE events to `StreamEvent`s; kept lean, since it runs once per token."""

    def __init__(self, adapter: ChunkReader) -> None:
        self._adapter = adapter
        self._sse = SSEDecoder()
        self._reasoning_field = adapter.reasoning_field
        self._started_calls: set[int] = set()
        self._meta_sent = False
        self._finish_sent = False
        self._pending: ProviderError | None = None
        self.finished = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        return self._run(self._sse.feed(chunk))

    def close(self) -> list[StreamEvent]:
        return self._run(self._sse.close())

    def _run(self, decoded) -> list[StreamEvent]:
        # An error that arrives in the same read as tokens is raised on the next call,
        # so the tokens before it still reach the caller (and the stream ends as partial).
        if self._pending is not None:
            raise self._pending
        events: list[StreamEvent] = []
        for sse in decoded:
            try:
                self._handle(sse.data, events)
            except ProviderError as exc:
                if not events:
                    raise
                self._pending = exc
                break
        return events

    def _handle(self, data: str, events: list[StreamEvent]) -> None:
        if self.finished:
            return
        if data == "[DONE]":
            self.finished = True
            return
        try:
            chunk = orjson.loads(data)
        except orjson.JSONDecodeError:
            raise self._adapter.malformed("a stream chunk that is not JSON", in_stream=True) from None
        try:
            self._chunk(chunk, events)
        except (AttributeError, TypeError, KeyError):
            raise self._adapter.malformed("a stream chunk of an unexpected shape", in_stream=True) from None

    def _chunk(self, chunk: dict[str, Any], events: list[StreamEvent]) -> None:
        if chunk.get("error"):
            raise self._adapter.error_from_payload(chunk, status=None, headers={}, in_stream=True)
        if not self._meta_sent:
            self._meta_sent = True
            events.append(StreamEvent(kind="meta", response_id=chunk.get("id"), model=chunk.get("model")))
        choices = chunk.get("choices")
        if choices:
            for choice in choices:
                if choice.get("index", 0) == 0:  # n>1 is not supported: choice 0 only
                    self._choice(choice, events)
                    break
        usage = chunk.get("usage")
        if usage:
            events.append(StreamEvent(kind="usage", usage=self._adapter.parse_usage(usage)))

    def _choice(self, choice: dict[str, Any], events: list[StreamEvent]) -> None:
        delta = choice.get("delta")
        if delta:
            if self._reasoning_field:
                reasoning = delta.get(self._reasoning_field)
                if reasoning:
                    events.append(StreamEvent(kind="reasoning_delta", text=reasoning))
            content = delta.get("content")
            if content:
                logprobs = choice.get("logprobs")
                tokens = logprobs.get("content") if logprobs else None  # only when asked for
                events.append(StreamEvent(kind="text_delta", text=content, logprobs=tokens or None))
            refusal = delta.get("refusal")
            if refusal:
                events.append(StreamEvent(kind="refusal_delta", text=refusal))
            calls = delta.get("tool_calls")
            if calls:
                for position, call in enumerate(calls):
                    self._tool_call(call.get("index", position), call.get("id"), call.get("function") or {}, events)
            elif delta.get("function_call"):  # the legacy functions API: one call, no id
                self._tool_call(0, None, delta["function_call"], events)
        raw = choice.get("finish_reason")
        if raw and not self._finish_sent:
            self._finish_sent = True
            events.append(StreamEvent(kind="finish", finish_reason=map_finish_reason(raw), raw_finish_reason=raw))

    def _tool_call(self, index: int, call_id: str | None, fn: dict[str, Any], events: list[StreamEvent]) -> None:
        # The first fragment of a call carries its id and name; later ones only argument text.
        if index not in self._started_calls:
            self._started_calls.add(index)
            name = fn.get("name") or ""
            events.append(StreamEvent(kind="tool_call_start", index=index, tool_call_id=call_id, name=name))
        arguments = fn.get("arguments")
        if arguments:
            events.append(StreamEvent(kind="tool_call_delta", index=index, arguments=arguments))
