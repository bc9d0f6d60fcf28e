"""OpenAI's Responses stream, out: byok's stream events -> Responses SSE events. Pure.

    stream = ResponsesStream(response_id, created_at, model, echo)     # a chat_entry.StreamRenderer
    stream.event(ev) / stream.done(done) / stream.failed(failed) / stream.error(exc)     # -> SSE bytes

The documented sequence, every event with its `sequence_number`: `response.created`,
`response.in_progress`, then per output item `response.output_item.added`, its content events
(`response.content_part.added`, `response.output_text.delta` ... `.done`, `response.content_part.done`;
`response.function_call_arguments.delta` ... `.done`; `response.reasoning_summary_part.added`,
`response.reasoning_summary_text.delta` ... for reasoning), `response.output_item.done`, and one terminal
event: `response.completed`, `response.incomplete` (the answer was cut: `incomplete_details.reason`),
or `response.failed` followed by an `error` event whose `error` object makes the SDKs raise.

Items open as their first delta arrives and close when another kind starts (a message or reasoning
item) or the next call starts (a function call); whatever is open closes at the end. A Gemini call's
thought signature arrives with the call, after any reasoning item closed: it gets a reasoning item of
its own, just before the call, so the client sends it back (`byok.schemas.responses_carry`).
"""

from __future__ import annotations

from typing import Any

from byok.api.render_openai import error_body
from byok.api.render_responses import (
    call_item,
    message_item,
    reasoning_item,
    refusal_part,
    response_object,
    short_id,
    status_of,
    text_part,
)
from byok.api.sse import sse_event
from byok.exceptions import ByokError
from byok.providers.types import GatewayEvent, StreamDone, StreamEvent, StreamFailed, Thinking
from byok.schemas import responses_carry

__all__ = ["ResponsesStream"]


class _Thought:
    """The open reasoning item's thinking: its shown text and its blocks (signed as they complete)."""

    def __init__(self) -> None:
        self.text = ""  # all of it, the summary shown
        self.pending = ""  # the block not signed yet
        self.blocks: list[Thinking] = []
        self.summary_open = False

    def finish(self) -> str | None:
        if self.pending:
            self.blocks.append(Thinking(text=self.pending))
            self.pending = ""
        return responses_carry.pack(self.blocks, {})


class ResponsesStream:
    """One stream's Responses events as SSE bytes (`byok.api.chat_entry.StreamRenderer`)."""

    def __init__(self, response_id: str, created_at: int, model: str, echo: dict[str, Any]) -> None:
        self.response_id, self.created_at, self.model, self.echo = response_id, created_at, model, echo
        self._rid = short_id(response_id)
        self._seq = 0
        self._started = False
        self.output: list[dict[str, Any]] = []  # items as they stand, by output_index
        self._open: int | None = None  # the open message or reasoning item
        self._part: dict[str, Any] | None = None  # the open content part of the open message
        self._thought: _Thought | None = None  # the open reasoning item's thinking
        self._calls: dict[int, int] = {}  # the provider's tool call index -> output_index
        self._open_call: int | None = None
        self._saw_call = False

    # -- bytes --

    def _emit(self, kind: str, **fields: Any) -> bytes:
        data = {"type": kind, "sequence_number": self._seq, **fields}
        self._seq += 1
        return sse_event(kind, data)

    def _snapshot(self, status: str, **extra: Any) -> dict[str, Any]:
        return response_object(
            response_id=self.response_id,
            created_at=self.created_at,
            model=self.model,
            echo=self.echo,
            status=status,
            output=self.output,
            **extra,
        )

    def _start(self) -> bytes:
        if self._started:
            return b""
        self._started = True
        head = self._snapshot("in_progress")
        return self._emit("response.created", response=head) + self._emit("response.in_progress", response=head)

    def _where(self, index: int, **more: Any) -> dict[str, Any]:
        return {"item_id": self.output[index]["id"], "output_index": index, **more}

    # -- opening and closing items --

    def _add(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self.output)
        self.output.append(item)
        return index, self._emit("response.output_item.added", output_index=index, item=dict(item))

    def _done(self, index: int) -> bytes:
        return self._emit("response.output_item.done", output_index=index, item=self.output[index])

    def _close_part(self) -> bytes:
        part, index = self._part, self._open
        if part is None or index is None:
            return b""
        self._part = None
        where = self._where(index, content_index=len(self.output[index]["content"]) - 1)
        if part["type"] == "output_text":
            out = self._emit("response.output_text.done", **where, text=part["text"], logprobs=[])
        else:
            out = self._emit("response.refusal.done", **where, refusal=part["refusal"])
        return out + self._emit("response.content_part.done", **where, part=dict(part))

    def _close_open(self, status: str = "completed") -> bytes:
        index = self._open
        if index is None:
            return b""
        out = self._close_part()
        item, thought = self.output[index], self._thought
        if thought is not None:
            self._thought = None
            if thought.summary_open:
                text, where = thought.text, self._where(index, summary_index=0)
                out += self._emit("response.reasoning_summary_text.done", **where, text=text)
                part = {"type": "summary_text", "text": text}
                out += self._emit("response.reasoning_summary_part.done", **where, part=part)
            item.update(reasoning_item(item["id"], thought.text, thought.finish()))
        else:
            item["status"] = status
        self._open = None
        return out + self._done(index)

    def _close_call(self, status: str = "completed") -> bytes:
        index = self._open_call
        if index is None:
            return b""
        self._open_call = None
        item = self.output[index]
        item["status"] = status
        out = self._emit("response.function_call_arguments.done", **self._where(index), arguments=item["arguments"])
        return out + self._done(index)

    def _message_part(self, kind: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        """The open message's open part of `kind` ("output_text" or "refusal"), opening what is missing."""
        out = b""
        if self._open is None or self.output[self._open]["type"] != "message":
            out += self._close_open() + self._close_call()
            self._open, added = self._add(message_item(f"msg_{self._rid}_{len(self.output)}", "in_progress", []))
            out += added
        content = self.output[self._open]["content"]
        if self._part is not None and self._part["type"] != kind:
            out += self._close_part()
        if self._part is None:
            self._part = text_part("") if kind == "output_text" else refusal_part("")
            content.append(self._part)
            where = self._where(self._open, content_index=len(content) - 1)
            out += self._emit("response.content_part.added", **where, part=dict(self._part))
        return self._part, self._where(self._open, content_index=len(content) - 1), out

    def _reasoning(self) -> tuple[_Thought, int, bytes]:
        """The open reasoning item and its thinking, opening one if another kind is open."""
        if self._thought is not None and self._open is not None:
            return self._thought, self._open, b""
        out = self._close_open() + self._close_call()
        self._open, added = self._add(reasoning_item(f"rs_{self._rid}_{len(self.output)}", None))
        self._thought = _Thought()
        return self._thought, self._open, out + added

    # -- StreamRenderer --

    def event(self, ev: GatewayEvent) -> bytes | None:
        out = self._start()
        if isinstance(ev, StreamEvent):
            out += self._delta(ev)
        return out or None

    def _delta(self, ev: StreamEvent) -> bytes:
        kind = ev.kind
        if kind == "text_delta" and ev.text:
            part, where, out = self._message_part("output_text")
            part["text"] += ev.text
            return out + self._emit("response.output_text.delta", **where, delta=ev.text, logprobs=[])
        if kind == "refusal_delta" and ev.text:
            part, where, out = self._message_part("refusal")
            part["refusal"] += ev.text
            return out + self._emit("response.refusal.delta", **where, delta=ev.text)
        if kind == "reasoning_delta" and ev.text:
            return self._reasoning_delta(ev.text)
        if kind in ("thinking_signature", "redacted_thinking") and ev.signature:
            thought, _, out = self._reasoning()
            if kind == "thinking_signature":
                thought.blocks.append(Thinking(text=thought.pending, signature=ev.signature))
                thought.pending = ""
            else:
                thought.finish()  # an unsigned block before it stays a block of its own
                thought.blocks.append(Thinking(redacted=ev.signature))
            return out
        if kind == "tool_call_start":
            return self._call_start(ev)
        if kind == "tool_call_delta" and ev.arguments:
            return self._call_delta(ev)
        return b""  # usage, finish, meta: the terminal event tells them

    def _reasoning_delta(self, text: str) -> bytes:
        thought, index, out = self._reasoning()
        where = self._where(index, summary_index=0)
        if not thought.summary_open:
            thought.summary_open = True
            part = {"type": "summary_text", "text": ""}
            out += self._emit("response.reasoning_summary_part.added", **where, part=part)
        thought.text += text
        thought.pending += text
        return out + self._emit("response.reasoning_summary_text.delta", **where, delta=text)

    def _call_start(self, ev: StreamEvent) -> bytes:
        self._saw_call = True
        out = self._close_open() + self._close_call()
        call_id = ev.tool_call_id or f"call_{self._rid[:12]}_{len(self.output)}"
        if ev.signature:  # Gemini's thought signature: carried by a reasoning item of its own
            carry = responses_carry.pack((), {call_id: ev.signature})
            index, added = self._add(reasoning_item(f"rs_{self._rid}_{len(self.output)}", None, carry))
            out += added + self._done(index)
        position = len(self.output)
        index, added = self._add(call_item(f"fc_{self._rid}_{position}", call_id, ev.name or "", "", "in_progress"))
        self._calls[ev.index or 0] = index
        self._open_call = index
        return out + added

    def _call_delta(self, ev: StreamEvent) -> bytes:
        index = self._calls.get(ev.index or 0)
        if index is None:
            return b""  # a fragment of a call that never started: nothing to attach it to
        self.output[index]["arguments"] += ev.arguments
        if index != self._open_call:
            return b""  # a late fragment of a call already done: the terminal response carries it
        return self._emit("response.function_call_arguments.delta", **self._where(index), delta=ev.arguments)

    def done(self, done: StreamDone) -> bytes:
        reason = "tool_calls" if self._saw_call and done.finish_reason == "stop" else done.finish_reason
        status, incomplete = status_of(reason)
        out = self._start() + self._close_open(status) + self._close_call()
        final = self._snapshot(status, usage=done.usage, incomplete=incomplete)
        kind = "response.completed" if status == "completed" else "response.incomplete"
        return out + self._emit(kind, response=final)

    def failed(self, failed: StreamFailed) -> bytes:
        return self.error(failed.error)

    def error(self, exc: ByokError) -> bytes:
        """`response.failed` (the lifecycle's end), then an `error` event the SDKs raise on."""
        out = self._start()
        if self._thought is not None and self._open is not None:
            item = self.output[self._open]
            item.update(reasoning_item(item["id"], self._thought.text, self._thought.finish()))
        for item in self.output:
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        code = "rate_limit_exceeded" if exc.status_code == 429 else "server_error"
        final = self._snapshot("failed", error={"code": code, "message": exc.message})
        out += self._emit("response.failed", response=final)
        detail = error_body(exc.status_code, exc.message, exc.code)["error"]
        return out + self._emit("error", code=exc.code, message=exc.message, param=None, error=detail)
