"""The Anthropic Messages API wire format (https://docs.anthropic.com/en/api/messages).

Differences from the OpenAI shape that this module absorbs (the request body
is built by `anthropic_request`, streams are read by `anthropic_stream`):

- answers are content blocks: `text`, `thinking` (kept with its `signature`),
  `redacted_thinking` (kept as opaque data), `tool_use` (input parsed);
- errors are `{"type": "error", "error": {"type", "message"}}`, 529 means
  overloaded, and a stream can still fail after its 200 (see `anthropic_stream`).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
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
)
from byok.providers.anthropic_request import FORMAT_TOOL, build_body
from byok.providers.anthropic_stream import FINISH_REASONS, PROVIDER, AnthropicStreamParser, read_usage
from byok.providers.base import ProviderAdapter
from byok.providers.ratelimit import int_header, retry_after_seconds, seconds_until
from byok.providers.types import ChatRequest, ChatResponse, RateLimitInfo, Thinking, ToolCall, UpstreamRequest

__all__ = ["AnthropicAdapter"]

API_VERSION = "2023-06-01"

# HTTP status first: it is what Anthropic documents; error.type refines only 4xx we do not list.
_BY_STATUS: dict[int, type[ProviderError]] = {
    400: BadRequestError,
    401: AuthError,
    402: KeyQuotaError,  # billing_error
    403: AuthError,
    404: NotFoundError,
    413: BadRequestError,
    422: BadRequestError,
    429: RateLimitError,
    529: OverloadedError,
}

# Account-level money limits come back as ordinary 400s; only the wording tells them apart.
# https://docs.anthropic.com/en/api/rate-limits#spend-limits
_QUOTA_PHRASES = ("credit balance is too low", "reached your specified api usage limits")

# The rate-limit header families, each with -limit, -remaining and -reset (RFC 3339).
# https://docs.anthropic.com/en/api/rate-limits#response-headers
_LIMIT_FAMILIES = ("requests", "tokens", "input-tokens", "output-tokens")


class AnthropicAdapter(ProviderAdapter):
    """Claude through `POST /v1/messages`, authenticated with `x-api-key`."""

    kind = "anthropic"
    default_base_url = "https://api.anthropic.com"
    requires_max_tokens = True
    default_max_tokens = 4096

    def build_request(self, req: ChatRequest, *, api_key: str, base_url: str | None = None) -> UpstreamRequest:
        body = build_body(req, self.default_max_tokens)
        headers = {"x-api-key": api_key, "anthropic-version": API_VERSION, "content-type": "application/json"}
        if req.betas:
            headers["anthropic-beta"] = ",".join(req.betas)
        return UpstreamRequest(method="POST", url=f"{self.base_url(base_url)}/v1/messages", headers=headers, json=body)

    def parse_response(self, body: bytes, *, status: int = 200) -> ChatResponse:
        data = _loads(body)
        if data.get("type") == "error":
            raise self.classify_error(status, {}, body)
        texts: list[str] = []
        thoughts: list[str] = []
        thinking: list[Thinking] = []
        calls: list[ToolCall] = []
        formatted = False
        for block in data.get("content") or ():
            btype = block.get("type")
            if btype == "text":
                texts.append(block.get("text") or "")
            elif btype == "thinking":
                thoughts.append(block.get("thinking") or "")
                thinking.append(Thinking(text=block.get("thinking") or "", signature=block.get("signature")))
            elif btype == "redacted_thinking":
                thinking.append(Thinking(redacted=block.get("data") or ""))
            elif btype == "tool_use":
                args = orjson.dumps(block.get("input") or {}).decode()
                if block.get("name") == FORMAT_TOOL:
                    texts.append(args)  # response_format through a forced tool: its input is the answer
                    formatted = True
                    continue
                calls.append(ToolCall(id=block.get("id"), name=block.get("name") or "", arguments=args))
        raw = data.get("stop_reason")
        reason = FINISH_REASONS.get(raw or "", "stop")
        if reason == "tool_calls" and formatted and not calls:
            reason = "stop"  # only the format tool was called: that is a finished answer
        seq = data.get("stop_sequence")  # which of the request's stop_sequences ended it (stop_reason "stop_sequence")
        return ChatResponse(
            text="".join(texts) or None,
            reasoning="".join(thoughts) or None,
            tool_calls=tuple(calls),
            thinking=tuple(thinking),
            finish_reason=reason,
            raw_finish_reason=raw,
            stop_sequence=seq if isinstance(seq, str) else None,
            usage=read_usage(data.get("usage")),
            provider=self.kind,
            model=data.get("model") or "",
            response_id=data.get("id"),
        )

    def stream_parser(self) -> AnthropicStreamParser:
        return AnthropicStreamParser()

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        h = self.lower_headers(headers)
        error = _error_object(body)
        etype = error.get("type") if isinstance(error.get("type"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        kwargs: dict[str, Any] = {"provider": PROVIDER, "status": status, "headers": h, "provider_code": etype}
        raw_details = error.get("details")
        details = raw_details if isinstance(raw_details, dict) else {}
        if status == 429 and details.get("error_code") == "enforced_spend_limit_reached":
            # The usage tier's monthly spend cap: access resumes at 00:00 UTC on the 1st.
            # https://docs.anthropic.com/en/api/rate-limits#spend-limits
            return KeyQuotaError(message, retry_after=_seconds_until_next_month(), **kwargs)
        if status == 400 and message and any(p in message.lower() for p in _QUOTA_PHRASES):
            return KeyQuotaError(message, **kwargs)
        cls = _BY_STATUS.get(status)
        if cls is None:
            cls = ServerError if status >= 500 or status < 400 else BadRequestError
        if message is None:
            message = f"Anthropic answered HTTP {status}."
        if cls is RateLimitError:
            return cls(message, retry_after=_rate_limit_wait(h), **kwargs)
        if cls in (OverloadedError, ServerError):
            return cls(message, retry_after=retry_after_seconds(h), **kwargs)
        return cls(message, **kwargs)

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo:
        h = self.lower_headers(headers)
        return RateLimitInfo(
            remaining_requests=int_header(h, "anthropic-ratelimit-requests-remaining"),
            remaining_tokens=int_header(h, "anthropic-ratelimit-tokens-remaining"),
            reset_requests_s=_reset(h, "requests"),
            reset_tokens_s=_reset(h, "tokens"),
        )


def _loads(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        raise MalformedResponseError("Anthropic sent a response that is not JSON.", provider=PROVIDER) from None
    if not isinstance(data, dict):
        raise MalformedResponseError("Anthropic sent a response that is not a JSON object.", provider=PROVIDER)
    return data


def _error_object(body: bytes) -> dict[str, Any]:
    try:
        data = orjson.loads(body)
    except orjson.JSONDecodeError:
        return {}
    error = data.get("error") if isinstance(data, dict) else None
    return error if isinstance(error, dict) else {}


def _reset(h: Mapping[str, str], family: str) -> float | None:
    value = h.get(f"anthropic-ratelimit-{family}-reset")
    return seconds_until(value) if value else None


def _rate_limit_wait(h: Mapping[str, str]) -> float | None:
    """`retry-after`, else the latest reset among the limits that are used up.

    A family whose `-remaining` header says there is room is not what stopped
    us; one with no `-remaining` header may be, so its reset counts.
    """
    wait = retry_after_seconds(h)
    if wait is not None:
        return wait
    waits = []
    for family in _LIMIT_FAMILIES:
        remaining = int_header(h, f"anthropic-ratelimit-{family}-remaining")
        if remaining is not None and remaining > 0:
            continue
        seconds = _reset(h, family)
        if seconds is not None:
            waits.append(seconds)
    return max(waits) if waits else None


def _seconds_until_next_month(now: datetime | None = None) -> float:
    now = now or datetime.now(UTC)
    year, month = (now.year + 1, 1) if now.month == 12 else (now.year, now.month + 1)
    return (datetime(year, month, 1, tzinfo=UTC) - now).total_seconds()
