"""The Gemini API wire format (https://ai.google.dev/api/generate-content).

Differences from the OpenAI shape that this module absorbs:

- the key goes in the `x-goog-api-key` header, never in the URL (a `?key=`
  URL ends up in proxies' and servers' access logs);
- the model is in the path, and streaming is another method
  (`:streamGenerateContent?alt=sse`);
- turns are `contents` with roles `user` and `model`; tool calls are
  `functionCall` parts, and tool results are `functionResponse` parts that
  name the function (not a call id) inside a user turn (the body is built by
  `gemini_request`); a call's `thoughtSignature` is kept on the `ToolCall`;
- errors are Google RPC statuses, whose `details` say what really happened:
  an invalid key is a 400 `API_KEY_INVALID`, a daily quota and a per-minute
  rate limit are both 429 `RESOURCE_EXHAUSTED`.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import orjson

from byok.exceptions import (
    AuthError,
    BadRequestError,
    KeyQuotaError,
    MalformedResponseError,
    NotFoundError,
    ProviderError,
    RateLimitError,
    ServerError,
)
from byok.providers.base import ProviderAdapter
from byok.providers.collect import collect
from byok.providers.gemini_request import FILE_URIS, build_body
from byok.providers.gemini_stream import PROVIDER, GeminiStreamParser
from byok.providers.ratelimit import parse_duration, retry_after_seconds
from byok.providers.types import ChatRequest, ChatResponse, RateLimitInfo, StreamEvent, UpstreamRequest

__all__ = ["GeminiAdapter", "seconds_until_pacific_midnight"]

_PACIFIC = ZoneInfo("America/Los_Angeles")
_DETAIL = "type.googleapis.com/google.rpc."
_AUTH_STATUSES = ("UNAUTHENTICATED", "PERMISSION_DENIED")


class GeminiAdapter(ProviderAdapter):
    """Gemini through the Generative Language API (`v1beta`)."""

    kind = "gemini"
    default_base_url = "https://generativelanguage.googleapis.com/v1beta"

    def build_request(self, req: ChatRequest, *, api_key: str, base_url: str | None = None) -> UpstreamRequest:
        model = req.model.removeprefix("models/")
        method = "streamGenerateContent?alt=sse" if req.stream else "generateContent"
        headers = {"x-goog-api-key": api_key, "content-type": "application/json"}
        url = f"{self.base_url(base_url)}/models/{model}:{method}"
        return UpstreamRequest(method="POST", url=url, headers=headers, json=build_body(req))

    def reads_image_url(self, url: str) -> bool:
        return url.startswith(FILE_URIS)  # its Files API and Cloud Storage; Gemini fetches nothing else

    def parse_response(self, body: bytes, *, status: int = 200) -> ChatResponse:
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise MalformedResponseError("Gemini sent a response that is not JSON.", provider=PROVIDER) from None
        if not isinstance(data, dict):
            raise MalformedResponseError("Gemini sent a response that is not a JSON object.", provider=PROVIDER)
        if "error" in data:
            error = data["error"] if isinstance(data["error"], dict) else {}
            code = error.get("code") if isinstance(error.get("code"), int) else status
            raise self._error(code, {}, error, in_stream=False)
        parser = self.stream_parser()
        events: list[StreamEvent] = []
        parser.handle(data, events)
        events.extend(parser.finish_events())
        return collect(events, provider=PROVIDER)

    def stream_parser(self) -> GeminiStreamParser:
        return GeminiStreamParser(self._stream_error)

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        h = self.lower_headers(headers)
        try:
            data = orjson.loads(body)
        except orjson.JSONDecodeError:
            data = None
        if isinstance(data, list) and data:  # the JSON-array stream form wraps errors in a list
            data = data[0]
        error = data.get("error") if isinstance(data, dict) else None
        return self._error(status, h, error if isinstance(error, dict) else {}, in_stream=False)

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo:
        # Gemini sends no rate-limit headers; limits are per project, read from its 429 bodies.
        return RateLimitInfo()

    def _stream_error(self, error: dict[str, Any]) -> ProviderError:
        code = error.get("code")
        return self._error(code if isinstance(code, int) else None, {}, error, in_stream=True)

    def _error(self, status: int | None, h: dict[str, str], error: dict[str, Any], *, in_stream: bool) -> ProviderError:
        rpc_status = error.get("status") if isinstance(error.get("status"), str) else None
        message = error.get("message") if isinstance(error.get("message"), str) else None
        if message is None:
            message = f"Gemini answered HTTP {status}." if status else "Gemini reported an error."
        details = [d for d in error.get("details") or () if isinstance(d, dict)]
        reasons = {d.get("reason") for d in details if d.get("@type") == _DETAIL + "ErrorInfo"}
        kwargs: dict[str, Any] = {
            "provider": PROVIDER,
            "status": status,
            "headers": h,
            "provider_code": rpc_status,
            "in_stream": in_stream,
        }
        if status in (401, 403) or rpc_status in _AUTH_STATUSES or "API_KEY_INVALID" in reasons:
            return AuthError(message, **kwargs)
        if status == 429 or rpc_status == "RESOURCE_EXHAUSTED":
            if _is_daily(details):
                return KeyQuotaError(message, retry_after=seconds_until_pacific_midnight(), **kwargs)
            return RateLimitError(message, retry_after=_retry_delay(details) or retry_after_seconds(h), **kwargs)
        if status == 402:
            # Payment required: the account behind the key, not the request, must change.
            return KeyQuotaError(message, **kwargs)
        if status == 404 or rpc_status == "NOT_FOUND":
            return NotFoundError(message, **kwargs)
        if status is None or status >= 500 or status == 499 or rpc_status == "CANCELLED":
            # 499 CANCELLED inside a 200 stream (`gemini_stream_error_mid_stream`) is Google
            # ending the operation, not our caller (whose cancellation closes the connection
            # before anything is read), so like a 5xx it is worth another try.
            return ServerError(message, retry_after=retry_after_seconds(h), **kwargs)
        return BadRequestError(message, **kwargs)


def seconds_until_pacific_midnight(now: datetime | None = None) -> float:
    """Seconds until the next midnight in Mountain View, when Gemini's per-day quotas reset.

    https://ai.google.dev/gemini-api/docs/rate-limits ("Requests per day (RPD)
    quotas reset at midnight Pacific time"). Computed in the zone itself, so a
    day with a daylight-saving change is 23 or 25 hours long.
    """
    now = now or datetime.now(UTC)
    local = now.astimezone(_PACIFIC)
    midnight = datetime.combine(local.date() + timedelta(days=1), datetime.min.time(), tzinfo=_PACIFIC)
    return (midnight.astimezone(UTC) - now.astimezone(UTC)).total_seconds()


def _is_daily(details: list[dict[str, Any]]) -> bool:
    """Whether a RESOURCE_EXHAUSTED names a per-day quota (e.g. GenerateRequestsPerDayPerProjectPerModel)."""
    names: list[str] = []
    for detail in details:
        if detail.get("@type") == _DETAIL + "QuotaFailure":
            for violation in detail.get("violations") or ():
                if isinstance(violation, dict):
                    names += [str(violation.get("quotaId") or ""), str(violation.get("quotaMetric") or "")]
        elif detail.get("@type") == _DETAIL + "ErrorInfo":
            names.append(str((detail.get("metadata") or {}).get("quota_limit") or ""))
    return any("perday" in name.lower().replace("_", "") for name in names)


def _retry_delay(details: list[dict[str, Any]]) -> float | None:
    """google.rpc.RetryInfo.retryDelay, a protobuf Duration such as "34.4s"."""
    for detail in details:
        if detail.get("@type") == _DETAIL + "RetryInfo" and isinstance(detail.get("retryDelay"), str):
            return parse_duration(detail["retryDelay"])
    return None
