"""OpenAI's Responses wire format, out: byok's answers and stream events -> Responses objects and SSE. Pure.

    body = render_response(answer, response_id=..., created_at=..., model=..., echo=parsed.echo)
    stream = ResponsesStream(response_id, created_at, model, echo)     # a chat_entry.StreamRenderer
    stream.event(ev) / stream.done(done) / stream.failed(failed) / stream.error(exc)     # -> SSE bytes

A stream is the documented sequence, every event with its `sequence_number`: `response.created`,
`response.in_progress`, then per output item `response.output_item.added`, its content events
(`response.content_part.added`, `response.output_text.delta` ... `.done`, `response.content_part.done`;
`response.function_call_arguments.delta` ... `.done`; `response.reasoning_summary_part.added`,
`response.reasoning_summary_text.delta` ... for reasoning), `response.output_item.done`, and one terminal
event: `response.completed`, `response.incomplete` (the answer was cut: `incomplete_details.reason`),
or `response.failed` followed by an `error` event whose `error` object makes the SDKs raise.

Reasoning text (DeepSeek `reasoning_content`, Anthropic thinking, Gemini thoughts) is a `reasoning` item's
`summary_text`: what OpenAI shows of its own models' reasoning, and what Responses clients display.
"""

from __future__ import annotations

from typing import Any

from byok.api.render_openai import error_body
from byok.api.sse import sse_event
from byok.exceptions import ByokError
from byok.providers.types import ChatResponse, GatewayEvent, StreamDone, StreamEvent, StreamFailed, Usage

__all__ = ["ResponsesStream", "render_response", "response_object", "status_of", "usage_dict"]

# byok finish reasons that end a response early -> OpenAI's incomplete_details.reason
# ("error": the provider stopped for its own reason, e.g. a malformed function call: no reason to give).
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter", "error": None}


def usage_dict(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    return {
        "input_tokens": usage.input_tokens,
        # cache writes: OpenAI's own count (its SDK requires the field); byok's providers report none apart yet
        "input_tokens_details": {"cached_tokens": usage.cached_input_tokens or 0, "cache_write_tokens": 0},
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) for a byok finish reason."""
    if finish_reason in _INCOMPLETE:
        return "incomplete", {"reason": _INCOMPLETE[finish_reason]}
    return "completed", None


def response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    error: dict[str, Any] | None = None,
    incomplete: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object, its request parameters echoed as OpenAI echoes them."""
    reasoning = echo.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice") or "auto",
        "tools": echo.get("tools") or [],
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": usage_dict(usage) if usage is not None else None,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
    }


# -- output items ---------------------------------------------------------------------------------------


def _message(item_id: str, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def _text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def _refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def _reasoning(item_id: str, text: str | None) -> dict[str, Any]:
    return {"id": item_id, "type": "reasoning", "summary": [{"type": "summary_text", "text": text}] if text else []}


def _call(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def _ids(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def render_response(
    answer: ChatResponse, *, response_id: str, created_at: int, model: str, echo: dict[str, Any]
) -> dict[str, Any]:
    """A whole answer as a `response` object: reasoning, message, then function calls."""
    rid = _ids(response_id)
    reason = "tool_calls" if answer.tool_calls and answer.finish_reason == "stop" else answer.finish_reason
    status, incomplete = status_of(reason)
    output: list[dict[str, Any]] = []
    if answer.reasoning:
        output.append(_reasoning(f"rs_{rid}", answer.reasoning))
    parts = ([_text_part(answer.text)] if answer.text else []) + (
        [_refusal_part(answer.refusal)] if answer.refusal else []
    )
    if parts:
        output.append(_message(f"msg_{rid}", status, parts))
    for i, call in enumerate(answer.tool_calls):
        output.append(_call(f"fc_{rid}_{i}", call.id or f"call_{rid[:12]}_{i}", call.name, call.arguments, "completed"))
    return response_object(
        response_id=response_id,
        created_at=created_at,
        model=model,
        echo=echo,
        status=status,
        output=output,
        usage=answer.usage or Usage(),
        incomplete=incomplete,
    )


# -- streaming ------------------------------------------------------------------------------------------


class ResponsesStream:
    """One stream's Responses events as SSE bytes (`byok.api.chat_entry.StreamRenderer`).

    Output items open as their first delta arrives and close when another kind starts (a message or
    reasoning item) or the next call starts (a function call); whatever is open closes at the end.
    """

    def __init__(self, response_id: str, created_at: int, model: str, echo: dict[str, Any]) -> None:
        self.response_id, self.created_at, self.model, self.echo = response_id, created_at, model, echo
        self._rid = _ids(response_id)
        self._seq = 0
        self._started = False
        self.output: list[dict[str, Any]] = []  # items as they stand, by output_index
        self._open: int | None = None  # the open message or reasoning item
        self._part: dict[str, Any] | None = None  # the open content part of the open message
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

    # -- opening and closing items --

    def _add(self, item: dict[str, Any]) -> tuple[int, bytes]:
        index = len(self.output)
        self.output.append(item)
        return index, self._emit("response.output_item.added", output_index=index, item=dict(item))

    def _close_part(self) -> bytes:
        part, index = self._part, self._open
        if part is None or index is None:
            return b""
        self._part = None
        item = self.output[index]
        where = {"item_id": item["id"], "output_index": index, "content_index": len(item["content"]) - 1}
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
        item = self.output[index]
        where = {"item_id": item["id"], "output_index": index}
        if item["type"] == "reasoning":
            text = item.pop("_text")
            item["summary"] = [{"type": "summary_text", "text": text}]
            part = {"type": "summary_text", "text": text}
            out += self._emit("response.reasoning_summary_text.done", **where, summary_index=0, text=text)
            out += self._emit("response.reasoning_summary_part.done", **where, summary_index=0, part=part)
        else:
            item["status"] = status
        self._open = None
        return out + self._emit("response.output_item.done", output_index=index, item=item)

    def _close_call(self, status: str = "completed") -> bytes:
        index = self._open_call
        if index is None:
            return b""
        self._open_call = None
        item = self.output[index]
        item["status"] = status
        where = {"item_id": item["id"], "output_index": index}
        out = self._emit("response.function_call_arguments.done", **where, arguments=item["arguments"])
        return out + self._emit("response.output_item.done", output_index=index, item=item)

    def _message_part(self, kind: str) -> tuple[dict[str, Any], dict[str, Any], bytes]:
        """The open message's open part of `kind` ("output_text" or "refusal"), opening what is missing."""
        out = b""
        item = self.output[self._open] if self._open is not None else None
        if item is None or item["type"] != "message":
            out += self._close_open() + self._close_call()
            self._open, added = self._add(_message(f"msg_{self._rid}_{len(self.output)}", "in_progress", []))
            out += added
            item = self.output[self._open]
        if self._part is not None and self._part["type"] != kind:
            out += self._close_part()
        if self._part is None:
            self._part = _text_part("") if kind == "output_text" else _refusal_part("")
            item["content"].append(self._part)
            where = {"item_id": item["id"], "output_index": self._open, "content_index": len(item["content"]) - 1}
            out += self._emit("response.content_part.added", **where, part=dict(self._part))
        where = {"item_id": item["id"], "output_index": self._open, "content_index": len(item["content"]) - 1}
        return self._part, where, out

    # -- StreamRenderer --

    def event(self, ev: GatewayEvent) -> bytes | None:
        out = self._start()
        if isinstance(ev, StreamEvent):
            out += self._delta(ev)
        return out or None

    def _delta(self, ev: StreamEvent) -> bytes:
        if ev.kind == "text_delta" and ev.text:
            part, where, opened = self._message_part("output_text")
            part["text"] += ev.text
            return opened + self._emit("response.output_text.delta", **where, delta=ev.text, logprobs=[])
        if ev.kind == "refusal_delta" and ev.text:
            part, where, opened = self._message_part("refusal")
            part["refusal"] += ev.text
            return opened + self._emit("response.refusal.delta", **where, delta=ev.text)
        if ev.kind == "reasoning_delta" and ev.text:
            return self._reasoning_delta(ev.text)
        if ev.kind == "tool_call_start":
            return self._call_start(ev)
        if ev.kind == "tool_call_delta" and ev.arguments:
            return self._call_delta(ev)
        return b""  # usage, finish, meta: the terminal event tells them

    def _reasoning_delta(self, text: str) -> bytes:
        out = b""
        item = self.output[self._open] if self._open is not None else None
        if item is None or item["type"] != "reasoning":
            out += self._close_open() + self._close_call()
            self._open, added = self._add(_reasoning(f"rs_{self._rid}_{len(self.output)}", None))
            item = self.output[self._open]
            item["_text"] = ""
            where = {"item_id": item["id"], "output_index": self._open}
            part = {"type": "summary_text", "text": ""}
            out += added + self._emit("response.reasoning_summary_part.added", **where, summary_index=0, part=part)
        item["_text"] += text
        where = {"item_id": item["id"], "output_index": self._open}
        return out + self._emit("response.reasoning_summary_text.delta", **where, summary_index=0, delta=text)

    def _call_start(self, ev: StreamEvent) -> bytes:
        self._saw_call = True
        out = self._close_open() + self._close_call()
        position = len(self.output)
        call_id = ev.tool_call_id or f"call_{self._rid[:12]}_{position}"
        index, added = self._add(_call(f"fc_{self._rid}_{position}", call_id, ev.name or "", "", "in_progress"))
        self._calls[ev.index or 0] = index
        self._open_call = index
        return out + added

    def _call_delta(self, ev: StreamEvent) -> bytes:
        index = self._calls.get(ev.index or 0)
        if index is None:
            return b""  # a fragment of a call that never started: nothing to attach it to
        item = self.output[index]
        item["arguments"] += ev.arguments
        if index != self._open_call:
            return b""  # a late fragment of a call already done: the terminal response carries it
        where = {"item_id": item["id"], "output_index": index}
        return self._emit("response.function_call_arguments.delta", **where, delta=ev.arguments)

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
        for item in self.output:
            text = item.pop("_text", None)
            if text:
                item["summary"] = [{"type": "summary_text", "text": text}]
            if item.get("status") == "in_progress":
                item["status"] = "incomplete"
        code = "rate_limit_exceeded" if exc.status_code == 429 else "server_error"
        final = self._snapshot("failed", error={"code": code, "message": exc.message})
        out += self._emit("response.failed", response=final)
        detail = error_body(exc.status_code, exc.message, exc.code)["error"]
        return out + self._emit("error", code=exc.code, message=exc.message, param=None, error=detail)
