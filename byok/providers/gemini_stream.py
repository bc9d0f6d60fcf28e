"""Reading Gemini `GenerateContentResponse` chunks, streamed (`alt=sse`) or whole.

Each SSE `data:` line is a complete response object
(https://ai.google.dev/api/generate-content#v1beta.GenerateContentResponse);
text and function calls arrive as parts, usage is repeated (cumulative) on
every chunk, and there is no end marker beyond a `finishReason`. Gemini gives
function calls no id and sends each call whole, arguments included.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from typing import Any

import orjson

from byok.exceptions import MalformedResponseError, ProviderError
from byok.providers.base import StreamParser
from byok.providers.sse import SSEDecoder, SSEEvent
from byok.providers.types import FinishReason, StreamEvent, Usage

__all__ = ["FINISH_REASONS", "GeminiStreamParser", "read_usage"]

PROVIDER = "gemini"

# https://ai.google.dev/api/generate-content#FinishReason. A STOP after function calls
# becomes tool_calls (Gemini has no tool-specific reason); values not listed map to stop.
_FILTERED = (
    "SAFETY",
    "RECITATION",
    "BLOCKLIST",
    "PROHIBITED_CONTENT",
    "SPII",
    "IMAGE_SAFETY",
    "IMAGE_PROHIBITED_CONTENT",
    "IMAGE_RECITATION",
)
_FAILED = (
    "MALFORMED_FUNCTION_CALL",
    "UNEXPECTED_TOOL_CALL",
    "TOO_MANY_TOOL_CALLS",
    "LANGUAGE",
    "OTHER",
    "FINISH_REASON_UNSPECIFIED",
)
FINISH_REASONS: dict[str, FinishReason] = {
    "STOP": "stop",
    "MAX_TOKENS": "length",
    **{reason: "content_filter" for reason in _FILTERED},
    **{reason: "error" for reason in _FAILED},
}

_SSE_FIELDS = frozenset(("data", "event", "id", "retry"))


def read_usage(raw: Any) -> Usage | None:
    """`usageMetadata` normalised. Gemini's candidatesTokenCount excludes thoughts, which
    are counted apart in thoughtsTokenCount; totalTokenCount includes both."""
    if not isinstance(raw, dict):
        return None
    prompt = raw.get("promptTokenCount") or 0
    output = raw.get("candidatesTokenCount") or 0
    reasoning = raw.get("thoughtsTokenCount")
    total = raw.get("totalTokenCount")
    return Usage(
        input_tokens=prompt,
        output_tokens=output,
        total_tokens=total if total is not None else prompt + output + (reasoning or 0),
        cached_input_tokens=raw.get("cachedContentTokenCount"),
        reasoning_tokens=reasoning,
    )


class _LenientSSEDecoder(SSEDecoder):
    """The shared decoder, also keeping lines that are not SSE fields.

    Gemini has been seen appending a bare, pretty-printed JSON error object
    after the last `data:` event of a 200 stream (corpus case
    `gemini_stream_error_mid_stream`); the SSE rules would silently drop those
    lines, so they are collected in `stray` instead.
    """

    def __init__(self) -> None:
        super().__init__()
        self.stray: list[str] = []

    def _line(self, line: str, events: list[SSEEvent]) -> None:
        if line and line[0] != ":" and line.partition(":")[0] not in _SSE_FIELDS:
            self.stray.append(line)
            return
        super()._line(line, events)


class GeminiStreamParser(StreamParser):
    """Gemini response chunks in, `StreamEvent`s out.

    `on_error` turns an `error` object found in the body into the byok error to
    raise (the adapter's classifier). An error arriving in the same chunk as
    earlier output is raised on the next call, so that output is not lost.
    The finish event is sent at the end of the body: older models repeat
    `finishReason: STOP` on every chunk (`gemini_stream_cjk_multichunk`), and
    whether a STOP means tool_calls is only known once every part is in.
    """

    def __init__(self, on_error: Callable[[dict[str, Any]], ProviderError]) -> None:
        self.finished = False
        self._on_error = on_error
        self._sse = _LenientSSEDecoder()
        # Tool call ids are synthesised (Gemini sends none): unique per response, so that
        # ids from different turns never clash when a conversation moves to a provider that
        # insists on unique ids (Anthropic), and short enough for OpenAI's 40-character limit.
        self._id_prefix = ""  # made at the first call: most answers have none
        self._tool_count = 0
        self._raw_finish: str | None = None
        self._block_reason: str | None = None
        self._raw_usage: Any = None
        self._meta_sent = False
        self._pending: ProviderError | None = None

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        return self._run(self._sse.feed(chunk), final=False)

    def close(self) -> list[StreamEvent]:
        if self._pending is not None:
            raise self._pending
        # No later call can carry a deferred error, so an error here is raised at once. (The
        # last SSE event and a stray error cannot both end up here: an event only waits for
        # close() when the body ended without its blank line, and then nothing follows it.)
        out = self._run(self._sse.close(), final=True)
        out.extend(self.finish_events())
        return out

    def finish_events(self) -> list[StreamEvent]:
        """The one finish event the body so far amounts to (none if it never said)."""
        if self._block_reason is not None:
            return [StreamEvent(kind="finish", finish_reason="content_filter", raw_finish_reason=self._block_reason)]
        raw = self._raw_finish
        if raw is None:
            return []
        reason = FINISH_REASONS.get(raw, "stop")
        if reason == "stop" and self._tool_count:
            reason = "tool_calls"
        return [StreamEvent(kind="finish", finish_reason=reason, raw_finish_reason=raw)]

    def handle(self, obj: Any, out: list[StreamEvent]) -> None:
        """Append the events of one response object (one SSE chunk, or a whole answer)."""
        if not isinstance(obj, dict):
            raise MalformedResponseError(
                "Gemini sent a response chunk that is not an object.", provider=PROVIDER, in_stream=True
            )
        if "error" in obj:
            raise self._on_error(obj["error"] if isinstance(obj["error"], dict) else {})
        if not self._meta_sent and ("responseId" in obj or "modelVersion" in obj):
            self._meta_sent = True
            out.append(StreamEvent(kind="meta", response_id=obj.get("responseId"), model=obj.get("modelVersion")))
        feedback = obj.get("promptFeedback")
        if feedback and feedback.get("blockReason"):
            self._block_reason = feedback["blockReason"]
            self.finished = True
        candidates = obj.get("candidates")
        if candidates:
            # byok asks for one candidate; candidate 0 is the answer.
            candidate = candidates[0]
            for part in (candidate.get("content") or {}).get("parts") or ():
                self._part(part, out)
            if candidate.get("finishReason"):
                self._raw_finish = candidate["finishReason"]
                self.finished = True
        raw_usage = obj.get("usageMetadata")
        if raw_usage and raw_usage != self._raw_usage:  # repeated unchanged on most chunks
            self._raw_usage = raw_usage
            out.append(StreamEvent(kind="usage", usage=read_usage(raw_usage)))

    def _part(self, part: dict[str, Any], out: list[StreamEvent]) -> None:
        text = part.get("text")
        if text:
            out.append(StreamEvent(kind="reasoning_delta" if part.get("thought") else "text_delta", text=text))
            return
        call = part.get("functionCall")
        if call:
            index = self._tool_count
            self._tool_count += 1
            if not self._id_prefix:
                self._id_prefix = f"call_{secrets.token_hex(6)}_"
            call_id = call.get("id") or f"{self._id_prefix}{index}"
            signature = part.get("thoughtSignature")  # Gemini 3 checks it when the call comes back
            out.append(
                StreamEvent(
                    kind="tool_call_start",
                    index=index,
                    tool_call_id=call_id,
                    name=call.get("name"),
                    signature=signature,
                )
            )
            args = orjson.dumps(call.get("args") or {}).decode()
            out.append(StreamEvent(kind="tool_call_delta", index=index, arguments=args))

    def _run(self, sse_events: list[SSEEvent], *, final: bool) -> list[StreamEvent]:
        out: list[StreamEvent] = []
        try:
            for sse in sse_events:
                self.handle(_loads(sse.data), out)
            self._stray(out, final=final)
        except ProviderError as exc:
            if final or not out:
                raise
            self._pending = exc
        return out

    def _stray(self, out: list[StreamEvent], *, final: bool) -> None:
        """Read collected non-SSE lines once they make a whole JSON value."""
        stray = self._sse.stray
        if not stray or not (final or stray[-1].lstrip()[:1] in ("}", "]")):
            return
        text = "\n".join(stray)
        try:
            obj = orjson.loads(text)
        except orjson.JSONDecodeError:
            if final and text.lstrip()[:1] in ("{", "["):
                raise MalformedResponseError(
                    "Gemini's stream ended inside a JSON value.", provider=PROVIDER, in_stream=True
                ) from None
            if final:
                stray.clear()  # not JSON at all: ignored, as SSE ignores unknown lines
            return
        stray.clear()
        for item in obj if isinstance(obj, list) else (obj,):
            self.handle(item, out)


def _loads(data: str) -> Any:
    try:
        return orjson.loads(data)
    except orjson.JSONDecodeError:
        raise MalformedResponseError(
            "Gemini sent a stream chunk that is not JSON.", provider=PROVIDER, in_stream=True
        ) from None
