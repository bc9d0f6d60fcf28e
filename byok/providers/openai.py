"""OpenAI's Chat Completions wire format, and every vendor that copies it.

    adapter = OpenAIAdapter()
    up = adapter.build_request(req, api_key=key)        # POST {base}/chat/completions
    answer = adapter.parse_response(body)               # or adapter.stream_parser()

Vendors that speak this format subclass `OpenAIAdapter` and change only the
profile attributes below (see `byok.providers.deepseek`); nothing here checks
`kind`. Only `choices[0]` is read: byok never sends `n`, and a stream with
several choices yields choice 0 alone.

Wire-format reference: https://platform.openai.com/docs/api-reference/chat
"""

from __future__ import annotations

from collections.abc import Mapping
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
from byok.providers.base import ProviderAdapter, StreamParser
from byok.providers.ratelimit import int_header, parse_duration, retry_after_seconds
from byok.providers.sse import SSEDecoder
from byok.providers.types import (
    ChatRequest,
    ChatResponse,
    FinishReason,
    Message,
    RateLimitInfo,
    StreamEvent,
    Tool,
    ToolCall,
    UpstreamRequest,
    Usage,
)

__all__ = ["OpenAIAdapter", "OpenAICompatibleAdapter", "OpenAIStreamParser", "map_finish_reason"]

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

# 429 bodies whose type or code means money, not speed: retrying will not help.
# https://platform.openai.com/docs/guides/error-codes
_QUOTA_CODES = frozenset(
    {"insufficient_quota", "credit_balance_exhausted", "billing_hard_limit_reached"}
    | {"organization_spend_limit_exceeded", "project_spend_limit_exceeded", "organization_usage_limit_exceeded"}
)
# For errors without a status (inside a stream): the provider's type/code decides.
_CODE_CLASSES: dict[str, type[ProviderError]] = {
    "invalid_api_key": AuthError,
    "authentication_error": AuthError,
    "permission_error": AuthError,
    "rate_limit_exceeded": RateLimitError,
    "rate_limit_error": RateLimitError,
    "requests": RateLimitError,
    "tokens": RateLimitError,
    "invalid_request_error": BadRequestError,
    "context_length_exceeded": BadRequestError,
    "model_not_found": NotFoundError,
    "overloaded_error": OverloadedError,
    "server_error": ServerError,
}


def _function(tool: Tool) -> dict[str, Any]:
    return {"name": tool.name, "description": tool.description, "parameters": tool.parameters}


def map_finish_reason(raw: str | None) -> FinishReason:
    """OpenAI-family finish reasons to byok's five; unknown ones read as an ordinary stop."""
    return _FINISH_REASONS.get(raw or "stop", "stop")


class OpenAIAdapter(ProviderAdapter):
    """OpenAI Chat Completions."""

    kind = "openai"
    display_name = "OpenAI"
    default_base_url = "https://api.openai.com/v1"
    # OpenAI deprecated `max_tokens` for `max_completion_tokens`, and reasoning models
    # (o-series, gpt-5) refuse the old name; every current chat model takes the new one.
    max_tokens_field = "max_completion_tokens"
    # The message/delta field carrying reasoning text, for vendors that send it (DeepSeek).
    reasoning_field: str | None = None
    # A top-level usage field counting cached prompt tokens, read before `prompt_tokens_details`.
    cache_hit_field: str | None = None
    # Statuses meaning the key's account is out of money: 402 Payment Required is DeepSeek's
    # "Insufficient Balance" and other OpenAI-style vendors' out-of-credit answer.
    quota_statuses: frozenset[int] = frozenset({402})
    # Statuses meaning "busy, come back" rather than "broken".
    overloaded_statuses: frozenset[int] = frozenset({529})

    # Building the request.

    def build_request(self, req: ChatRequest, *, api_key: str, base_url: str | None = None) -> UpstreamRequest:
        base = self.base_url(base_url)
        if not base:
            raise ValueError(f"A base URL is required for {self.kind} providers.")
        body: dict[str, Any] = {"model": req.model, "messages": self._messages(req.messages)}
        if req.tools:
            body["tools"] = [{"type": "function", "function": _function(t)} for t in req.tools]
        if req.tool_choice:
            choice = req.tool_choice
            forced = {"type": "function", "function": {"name": choice}}
            body["tool_choice"] = choice if choice in ("auto", "none", "required") else forced
        if req.temperature is not None:
            body["temperature"] = req.temperature
        if req.top_p is not None:
            body["top_p"] = req.top_p
        if req.max_tokens is not None:
            body[self.max_tokens_field] = req.max_tokens
        elif self.requires_max_tokens:
            body[self.max_tokens_field] = self.default_max_tokens
        if req.stop:
            body["stop"] = list(req.stop)
        if req.stream:
            body["stream"] = True
            body["stream_options"] = {"include_usage": True}  # without it no usage arrives at all
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        return UpstreamRequest(method="POST", url=f"{base}/chat/completions", headers=headers, json=body)

    def _messages(self, messages: tuple[Message, ...]) -> list[dict[str, Any]]:
        out: list[dict[str, Any]] = []
        # History from a provider without call ids (Gemini) still needs ids here: invent
        # them, and pair each tool result with the oldest open call of its function's name.
        open_calls: dict[str, list[str]] = {}
        for turn, m in enumerate(messages):
            if m.role == "assistant":
                item: dict[str, Any] = {"role": "assistant", "content": m.content}
                if m.tool_calls:
                    calls = item["tool_calls"] = []
                    for i, tc in enumerate(m.tool_calls):
                        call_id = tc.id or f"call_{turn}_{i}"
                        open_calls.setdefault(tc.name, []).append(call_id)
                        fn = {"name": tc.name, "arguments": tc.arguments}
                        calls.append({"id": call_id, "type": "function", "function": fn})
                elif m.content is None:
                    item["content"] = ""
                out.append(item)
            elif m.role == "tool":
                answered = m.tool_call_id
                pending = open_calls.get(m.name or "")
                if pending and answered is None:
                    answered = pending.pop(0)
                elif pending and answered in pending:
                    pending.remove(answered)
                out.append({"role": "tool", "tool_call_id": answered or "", "content": m.content or ""})
            else:
                out.append({"role": m.role, "content": m.content or ""})
        return out

    # Reading a full answer.

    def parse_response(self, body: bytes, *, status: int = 200) -> ChatResponse:
        try:
            data = orjson.loads(body)  # leading blank lines (DeepSeek keep-alives) are JSON whitespace
        except orjson.JSONDecodeError:
            raise self.malformed("a body that is not JSON") from None
        try:
            return self._response(data)
        except (AttributeError, TypeError, IndexError, KeyError):
            raise self.malformed("an answer of an unexpected shape") from None

    def _response(self, data: dict[str, Any]) -> ChatResponse:
        if data.get("error"):  # some compatible servers answer 200 with an error body
            raise self.error_from_payload(data, status=None, headers={})
        if not data.get("choices"):
            raise self.malformed("an answer without choices")
        choice = data["choices"][0]
        message = choice.get("message") or {}
        tool_calls = tuple(
            ToolCall(id=tc.get("id"), name=fn.get("name") or "", arguments=fn.get("arguments") or "{}")
            for tc in message.get("tool_calls") or ()
            if (fn := tc.get("function") or {})
        )
        if not tool_calls and message.get("function_call"):  # the legacy functions API
            fn = message["function_call"]
            tool_calls = (ToolCall(id=None, name=fn.get("name") or "", arguments=fn.get("arguments") or "{}"),)
        raw = choice.get("finish_reason")
        usage = data.get("usage")
        return ChatResponse(
            text=message.get("content"),
            reasoning=(message.get(self.reasoning_field) or None) if self.reasoning_field else None,
            refusal=message.get("refusal"),
            tool_calls=tool_calls,
            finish_reason=map_finish_reason(raw),
            raw_finish_reason=raw,
            usage=self.parse_usage(usage) if usage else None,
            provider=self.kind,
            model=data.get("model") or "",
            response_id=data.get("id"),
        )

    def parse_usage(self, usage: dict[str, Any]) -> Usage:
        prompt = usage.get("prompt_tokens") or 0
        completion = usage.get("completion_tokens") or 0
        cached = usage.get(self.cache_hit_field) if self.cache_hit_field else None
        if cached is None:
            cached = (usage.get("prompt_tokens_details") or {}).get("cached_tokens")
        return Usage(
            input_tokens=prompt,
            output_tokens=completion,
            total_tokens=usage.get("total_tokens") or prompt + completion,
            cached_input_tokens=cached,
            reasoning_tokens=(usage.get("completion_tokens_details") or {}).get("reasoning_tokens"),
        )

    def stream_parser(self) -> OpenAIStreamParser:
        return OpenAIStreamParser(self)

    def malformed(self, what: str, *, in_stream: bool = False) -> MalformedResponseError:
        return MalformedResponseError(f"{self.display_name} sent {what}.", provider=self.kind, in_stream=in_stream)

    # Errors and rate limits.

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        try:
            payload = orjson.loads(body) if body else None
        except orjson.JSONDecodeError:
            payload = None
        if not isinstance(payload, dict):
            text = body.decode("utf-8", "replace").strip() if body else ""
            # A short plain-text reason is worth passing on; an HTML error page is not.
            payload = {"error": {"message": text}} if text and len(text) <= 300 and "<" not in text else {}
        return self.error_from_payload(payload, status=status, headers=self.lower_headers(headers))

    def error_from_payload(
        self, payload: dict[str, Any], *, status: int | None, headers: dict[str, str], in_stream: bool = False
    ) -> ProviderError:
        """The error for an error body: by HTTP status, or by the provider's type/code when there is none."""
        err = payload.get("error", payload)
        err = {"message": err} if isinstance(err, str) else err if isinstance(err, dict) else {}
        message = err.get("message") or payload.get("message") or payload.get("detail")
        text = str(message) if message else None
        code, etype = err.get("code"), err.get("type")
        if status is None and isinstance(code, int) and 400 <= code <= 599:
            status = code  # vLLM-style servers put the HTTP status in `code`
        labels = [c for c in (code, etype) if isinstance(c, str) and c]
        kwargs: dict[str, Any] = {
            "provider": self.kind,
            "status": status,
            "headers": headers,
            "provider_code": labels[0] if labels else None,
            "in_stream": in_stream,
        }
        quota = not _QUOTA_CODES.isdisjoint(labels)
        if status is None:
            by_label = next((_CODE_CLASSES[c] for c in labels if c in _CODE_CLASSES), ServerError)
            cls = KeyQuotaError if quota else by_label
            return cls(text or f"{self.display_name} reported an error in the stream.", **kwargs)
        prefix = f"{self.display_name} returned HTTP {status}"
        retry_after = retry_after_seconds(headers)
        if status in (401, 403):
            return AuthError(text or f"{prefix}: the API key was rejected.", **kwargs)
        if status in self.quota_statuses or (status == 429 and quota):
            return KeyQuotaError(text or f"{prefix}: the key's balance or quota is exhausted.", **kwargs)
        if status == 429:
            return RateLimitError(text or f"{prefix}: rate limited.", retry_after=self._reset(headers), **kwargs)
        if status in self.overloaded_statuses:
            return OverloadedError(text or f"{prefix}: overloaded.", retry_after=retry_after, **kwargs)
        if status == 404:
            return NotFoundError(text or f"{prefix}: not found.", **kwargs)
        if status == 408:
            return UpstreamTimeout(text or f"{prefix}: the provider timed out.", **kwargs)
        if 400 <= status < 500:  # 400, 413, 422 and the rarer rest: the request itself is wrong
            return BadRequestError(text or f"{prefix}: the request was refused.", **kwargs)
        return ServerError(text or f"{prefix}.", retry_after=retry_after, **kwargs)

    def _reset(self, headers: Mapping[str, str]) -> float | None:
        """Retry-After if given, else the reset of the exhausted limit (or the later of both)."""
        seconds = retry_after_seconds(headers)
        if seconds is not None:
            return seconds
        info = self.parse_rate_limits(headers)
        limits = ((info.remaining_requests, info.reset_requests_s), (info.remaining_tokens, info.reset_tokens_s))
        resets = [reset for remaining, reset in limits if reset is not None and remaining == 0]
        resets = resets or [reset for _, reset in limits if reset is not None]
        return max(resets) if resets else None

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo:
        headers = self.lower_headers(headers)
        reset_requests = headers.get("x-ratelimit-reset-requests")
        reset_tokens = headers.get("x-ratelimit-reset-tokens")
        return RateLimitInfo(
            remaining_requests=int_header(headers, "x-ratelimit-remaining-requests"),
            remaining_tokens=int_header(headers, "x-ratelimit-remaining-tokens"),
            reset_requests_s=parse_duration(reset_requests) if reset_requests else None,
            reset_tokens_s=parse_duration(reset_tokens) if reset_tokens else None,
        )


class OpenAICompatibleAdapter(OpenAIAdapter):
    """Any other OpenAI-style endpoint (vLLM, Ollama, OpenRouter, ...): the base URL must be configured."""

    kind = "openai_compatible"
    display_name = "The provider"
    default_base_url = ""
    # Self-hosted servers and most vendors know only the older name.
    max_tokens_field = "max_tokens"
    # What vLLM and vendors serving open reasoning models send; absent elsewhere, so harmless.
    reasoning_field = "reasoning_content"


class OpenAIStreamParser(StreamParser):
    """`chat.completion.chunk` SSE events to `StreamEvent`s; kept lean, since it runs once per token."""

    def __init__(self, adapter: OpenAIAdapter) -> None:
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
                events.append(StreamEvent(kind="text_delta", text=content))
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
