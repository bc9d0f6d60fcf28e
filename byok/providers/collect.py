"""Stream events summed up into one `ChatResponse`.

    builder = ResponseBuilder(provider="gemini")
    for ev in events:
        builder.add(ev)
    answer = builder.response()

Used by adapters whose whole answers share their stream reader (Gemini), and by
front ends that need the complete answer of a stream (thinking blocks with their
signatures, tool calls with Gemini thought signatures) to render it at the end.
"""

from __future__ import annotations

from typing import Any

from byok.providers.types import ChatResponse, FinishReason, StreamEvent, Thinking, ToolCall, Usage

__all__ = ["ResponseBuilder", "collect"]


class ResponseBuilder:
    """Accumulates `StreamEvent`s; `response()` gives the answer they amount to."""

    def __init__(self, *, provider: str = "") -> None:
        self.provider = provider
        self.text: list[str] = []
        self.refusal: list[str] = []
        self.reasoning: list[str] = []
        self.thinking: list[Thinking] = []
        self._open_thought: list[str] = []  # reasoning text of the block not yet signed
        self.calls: dict[int, dict[str, Any]] = {}
        self.usage: Usage | None = None
        self.finish_reason: FinishReason = "stop"
        self.raw_finish_reason: str | None = None
        self.stop_sequence: str | None = None
        self.model = ""
        self.response_id: str | None = None
        self.logprobs: list[dict[str, Any]] | None = None

    def add(self, ev: StreamEvent) -> None:
        kind = ev.kind
        if kind == "text_delta":
            self.text.append(ev.text or "")
            if ev.logprobs is not None:
                self.logprobs = self.logprobs if self.logprobs is not None else []
                self.logprobs.extend(ev.logprobs)
        elif kind == "reasoning_delta":
            self.reasoning.append(ev.text or "")
            self._open_thought.append(ev.text or "")
        elif kind == "thinking_signature":
            self.thinking.append(Thinking(text="".join(self._open_thought), signature=ev.signature))
            self._open_thought = []
        elif kind == "redacted_thinking":
            self._close_thought()
            self.thinking.append(Thinking(redacted=ev.signature))
        elif kind == "refusal_delta":
            self.refusal.append(ev.text or "")
        elif kind == "tool_call_start":
            self._close_thought()
            self.calls[ev.index or 0] = {"id": ev.tool_call_id, "name": ev.name or "", "args": [], "sig": ev.signature}
        elif kind == "tool_call_delta":
            call = self.calls.setdefault(ev.index or 0, {"id": None, "name": "", "args": [], "sig": None})
            call["args"].append(ev.arguments or "")
        elif kind == "usage":
            self.usage = ev.usage
        elif kind == "finish":
            self.finish_reason = ev.finish_reason or "stop"
            self.raw_finish_reason = ev.raw_finish_reason
            self.stop_sequence = ev.stop_sequence
        elif kind == "meta":
            self.model = ev.model or self.model
            self.response_id = ev.response_id or self.response_id

    def _close_thought(self) -> None:
        """Reasoning text no signature followed (DeepSeek, Gemini summaries) becomes an unsigned block."""
        if self._open_thought:
            self.thinking.append(Thinking(text="".join(self._open_thought)))
            self._open_thought = []

    def response(self) -> ChatResponse:
        self._close_thought()
        calls = tuple(
            ToolCall(id=c["id"], name=c["name"], arguments="".join(c["args"]) or "{}", thought_signature=c["sig"])
            for c in (self.calls[k] for k in sorted(self.calls))
        )
        return ChatResponse(
            text="".join(self.text) or None,
            reasoning="".join(self.reasoning) or None,
            refusal="".join(self.refusal) or None,
            tool_calls=calls,
            thinking=tuple(self.thinking),
            finish_reason=self.finish_reason,
            raw_finish_reason=self.raw_finish_reason,
            stop_sequence=self.stop_sequence,
            usage=self.usage,
            provider=self.provider,
            model=self.model,
            response_id=self.response_id,
            logprobs=self.logprobs,
        )


def collect(events: list[StreamEvent], *, provider: str = "") -> ChatResponse:
    """The answer a list of events amounts to."""
    builder = ResponseBuilder(provider=provider)
    for ev in events:
        builder.add(ev)
    return builder.response()
