"""OpenAI's Chat Completions wire format, and every vendor that copies it.

    adapter = OpenAIAdapter()
    up = adapter.build_request(req, api_key=key)        # POST {base}/chat/completions
    answer = adapter.parse_response(body)               # or adapter.stream_parser()

Vendors that speak this format subclass `OpenAIAdapter` and change only the
profile attributes below (see `byok.providers.deepseek`); nothing here checks
`kind`. The body is built by `openai_request`, streams read by `openai_stream`.
Only `choices[0]` is read: byok refuses `n` above 1, and a stream with
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
from byok.providers.base import ProviderAdapter
from byok.providers.openai_request import Profile, build_body
from byok.providers.openai_stream import OpenAIStreamParser, map_finish_reason
from byok.providers.ratelimit import int_header, parse_duration, retry_after_seconds
from byok.providers.types import (
    ChatRequest,
    ChatResponse,
    RateLimitInfo,
    Thinking,
    ToolCall,
    UpstreamRequest,
    Usage,
)

__all__ = ["OpenAIAdapter", "OpenAICompatibleAdapter", "OpenAIStreamParser", "map_finish_reason"]

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

    # What the vendor accepts beyond the common core (see openai_request.Profile).
    accepts_images = True
    accepts_json_schema = True
    accepts_top_k = False
    accepts_parallel_tool_calls = True
    accepts_user = True
    sends_reasoning_content = False
    thinking_switch = False
    accepts_logprobs = True

    # Building the request.

    @property
    def profile(self) -> Profile:
        return Profile(
            kind=self.kind,
            name=self.display_name,
            max_tokens_field=self.max_tokens_field,
            requires_max_tokens=self.requires_max_tokens,
            default_max_tokens=self.default_max_tokens,
            images=self.accepts_images,
            json_schema=self.accepts_json_schema,
            top_k=self.accepts_top_k,
            parallel_tool_calls=self.accepts_parallel_tool_calls,
            send_user=self.accepts_user,
            reasoning_content=self.sends_reasoning_content,
            thinking_switch=self.thinking_switch,
            logprobs=self.accepts_logprobs,
        )

    def build_request(self, req: ChatRequest, *, api_key: str, base_url: str | None = None) -> UpstreamRequest:
        base = self.base_url(base_url)
        if not base:
            raise ValueError(f"A base URL is required for {self.kind} providers.")
        body = build_body(req, self.profile)
        headers = {"Authorization": f"Bearer {api_key}", "Content-Type": "application/json"}
        return UpstreamRequest(method="POST", url=f"{base}/chat/completions", headers=headers, json=body)

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
        reasoning = (message.get(self.reasoning_field) or None) if self.reasoning_field else None
        logprobs = choice.get("logprobs")
        return ChatResponse(
            text=message.get("content"),
            reasoning=reasoning,
            thinking=(Thinking(text=reasoning),) if reasoning else (),
            refusal=message.get("refusal"),
            tool_calls=tool_calls,
            finish_reason=map_finish_reason(raw),
            raw_finish_reason=raw,
            usage=self.parse_usage(usage) if usage else None,
            provider=self.kind,
            model=data.get("model") or "",
            response_id=data.get("id"),
            logprobs=logprobs.get("content") if isinstance(logprobs, dict) else None,
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
    # vLLM, Ollama and most self-hosted servers take top_k; a server refuses what it does not know.
    accepts_top_k = True
