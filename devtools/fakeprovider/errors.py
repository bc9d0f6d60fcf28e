"""Error answers in each provider's real shape: status, headers and JSON body.

    status, headers, body = error_response("anthropic", "529", model="claude-x", key=key, retry_after=2)

Shapes follow the providers' documentation and the recorded bodies in
byok/tests/fixtures/corpus (Gemini ones are modelled on those exactly). The
Gemini API_KEY_INVALID body echoes the key as the real API does, so gateway
tests can check that byok redacts provider error text.
"""

from __future__ import annotations

import math
import os
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson

__all__ = ["error_response", "fault_status", "mask_key", "ratelimit_headers", "request_id", "simple_error"]

_STATUS = {"insufficient_quota": 429, "gemini_key_invalid": 400}


def fault_status(provider: str, fault: str) -> int:
    """The HTTP status a status fault (or stream_error on a non-stream request) answers with."""
    if fault == "stream_error":
        return 529 if provider == "anthropic" else 503
    return _STATUS.get(fault) or int(fault)


def request_id(prefix: str = "req_") -> str:
    return prefix + os.urandom(12).hex()


def mask_key(key: str) -> str:
    """How providers quote a key back: a short prefix and the last four characters."""
    return f"{key[:3]}{'*' * 10}{key[-4:]}" if len(key) >= 12 else "****"


def _duration(seconds: float) -> str:
    """OpenAI's reset format: 20ms, 1s, 6m0s."""
    if seconds < 1:
        return f"{int(seconds * 1000)}ms"
    if seconds < 60:
        return f"{seconds:g}s"
    return f"{int(seconds // 60)}m{seconds % 60:g}s"


# --- OpenAI and DeepSeek (same envelope) ---------------------------------


def _oai(message: str, type_: str, code: Any = None, param: Any = None) -> dict[str, Any]:
    return {"error": {"message": message, "type": type_, "param": param, "code": code}}


def _openai_body(status: int, fault: str, model: str, key: str, retry_after: float) -> dict[str, Any]:
    if fault == "insufficient_quota":
        return _oai(
            "You exceeded your current quota, please check your plan and billing details. For more information "
            "on this error, read the docs: https://platform.openai.com/docs/guides/error-codes/api-errors.",
            "insufficient_quota",
            "insufficient_quota",
        )
    table = {
        400: _oai(
            "This model's maximum context length is 128000 tokens. However, your messages resulted in "
            "200000 tokens. Please reduce the length of the messages.",
            "invalid_request_error",
            "context_length_exceeded",
            "messages",
        ),
        401: _oai(
            f"Incorrect API key provided: {mask_key(key)}. You can find your API key at "
            "https://platform.openai.com/account/api-keys.",
            "invalid_request_error",
            "invalid_api_key",
        ),
        402: _oai("Payment required.", "billing_error", "payment_required"),
        403: _oai(
            "Country, region, or territory not supported", "request_forbidden", "unsupported_country_region_territory"
        ),
        404: _oai(
            f"The model `{model}` does not exist or you do not have access to it.",
            "invalid_request_error",
            "model_not_found",
        ),
        429: _oai(
            f"Rate limit reached for {model} in organization org-fakeprovider on requests per min (RPM): "
            f"Limit 500, Used 500, Requested 1. Please try again in {_duration(retry_after)}. Visit "
            "https://platform.openai.com/account/rate-limits to learn more.",
            "requests",
            "rate_limit_exceeded",
        ),
        500: _oai("The server had an error while processing your request. Sorry about that!", "server_error"),
        502: {"error": {"code": 502, "message": "Bad gateway.", "param": None, "type": "cf_bad_gateway"}},
        503: _oai("The server is overloaded or not ready yet.", "server_error"),
        504: {"error": {"code": 504, "message": "Gateway timeout.", "param": None, "type": "cf_gateway_timeout"}},
    }
    return table.get(status) or _oai("The server is overloaded.", "server_error")


def _deepseek_body(status: int, fault: str, model: str, key: str, retry_after: float) -> dict[str, Any]:
    table = {
        400: _oai(
            "Invalid Format: this model's maximum context length is 65536 tokens.",
            "invalid_request_error",
            "invalid_request_error",
        ),
        401: _oai(
            f"Authentication Fails, Your api key: ****{key[-4:]} is invalid",
            "authentication_error",
            "invalid_request_error",
        ),
        402: _oai("Insufficient Balance", "unknown_error", "invalid_request_error"),
        403: _oai("Permission denied", "permission_error", "invalid_request_error"),
        404: _oai(f"Model Not Exist: {model}", "invalid_request_error", "invalid_request_error"),
        429: _oai("Rate Limit Reached", "rate_limit_error", "rate_limit_reached"),
        500: _oai("Server Error", "api_error", "server_error"),
        502: _oai("Bad Gateway", "api_error", "server_error"),
        503: _oai("Server Overloaded", "service_unavailable_error", "server_overloaded"),
        504: _oai("Gateway Timeout", "api_error", "server_error"),
    }
    return table.get(status) or _oai("Server Overloaded", "service_unavailable_error", "server_overloaded")


def _openai_headers(provider: str, status: int, fault: str, retry_after: float) -> dict[str, str]:
    headers = {"x-request-id": request_id()}
    if status == 429 and fault != "insufficient_quota":
        headers["retry-after"] = str(math.ceil(retry_after))
        if provider == "openai":
            reset = _duration(retry_after)
            headers.update(
                {
                    "x-ratelimit-limit-requests": "500",
                    "x-ratelimit-remaining-requests": "0",
                    "x-ratelimit-reset-requests": reset,
                    "x-ratelimit-limit-tokens": "30000",
                    "x-ratelimit-remaining-tokens": "0",
                    "x-ratelimit-reset-tokens": reset,
                }
            )
    return headers


# --- Anthropic ------------------------------------------------------------

_ANTHROPIC = {
    400: ("invalid_request_error", "prompt is too long: 200000 tokens > 199999 maximum"),
    401: ("authentication_error", "invalid x-api-key"),
    402: (
        "billing_error",
        "Your credit balance is too low to access the Anthropic API. "
        "Please go to Plans & Billing to upgrade or purchase credits.",
    ),
    403: ("permission_error", "Your API key does not have permission to use the specified resource."),
    404: ("not_found_error", "model: {model}"),
    429: (
        "rate_limit_error",
        "This request would exceed the rate limit for your organization of 50 requests "
        "per minute. For details, refer to: https://docs.claude.com/en/api/rate-limits. "
        "Please try again later.",
    ),
    500: ("api_error", "Internal server error"),
    502: ("api_error", "Bad gateway"),
    503: ("api_error", "Service unavailable"),
    504: ("timeout_error", "Request timeout"),
    529: ("overloaded_error", "Overloaded"),
}


def anthropic_error(status: int, model: str = "", rid: str | None = None) -> dict[str, Any]:
    type_, message = _ANTHROPIC.get(status, ("api_error", "Internal server error"))
    return {
        "type": "error",
        "error": {"type": type_, "message": message.format(model=model)},
        "request_id": rid or request_id(),
    }


def _anthropic_headers(status: int, retry_after: float, rid: str) -> dict[str, str]:
    headers = {"request-id": rid}
    if status == 429:
        reset = (datetime.now(UTC) + timedelta(seconds=retry_after)).strftime("%Y-%m-%dT%H:%M:%SZ")
        headers["retry-after"] = str(math.ceil(retry_after))
        for kind, limit in (
            ("requests", "50"),
            ("tokens", "100000"),
            ("input-tokens", "80000"),
            ("output-tokens", "20000"),
        ):
            headers[f"anthropic-ratelimit-{kind}-limit"] = limit
            headers[f"anthropic-ratelimit-{kind}-remaining"] = "0" if kind == "requests" else limit
            headers[f"anthropic-ratelimit-{kind}-reset"] = reset
    return headers


# --- Gemini (google.rpc.Status) -------------------------------------------


def _g(code: int, status: str, message: str, details: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    err: dict[str, Any] = {"code": code, "message": message, "status": status}
    if details:
        err["details"] = details
    return {"error": err}


def _gemini_quota(retry_after: float, quota_id: str, message: str) -> dict[str, Any]:
    return _g(
        429,
        "RESOURCE_EXHAUSTED",
        message,
        [
            {
                "@type": "type.googleapis.com/google.rpc.QuotaFailure",
                "violations": [
                    {
                        "quotaMetric": "generativelanguage.googleapis.com/generate_content_free_tier_requests",
                        "quotaId": quota_id,
                        "quotaValue": "10",
                    }
                ],
            },
            {
                "@type": "type.googleapis.com/google.rpc.Help",
                "links": [
                    {
                        "description": "Learn more about Gemini API quotas",
                        "url": "https://ai.google.dev/gemini-api/docs/rate-limits",
                    }
                ],
            },
            {"@type": "type.googleapis.com/google.rpc.RetryInfo", "retryDelay": f"{retry_after:g}s"},
        ],
    )


def _gemini_body(status: int, fault: str, model: str, key: str, retry_after: float) -> dict[str, Any]:
    svc = {"service": "generativelanguage.googleapis.com"}
    if fault == "gemini_key_invalid":
        return _g(
            400,
            "INVALID_ARGUMENT",
            "API key not valid. Please pass a valid API key.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "API_KEY_INVALID",
                    "domain": "googleapis.com",
                    "metadata": svc,
                },
                {
                    "@type": "type.googleapis.com/google.rpc.LocalizedMessage",
                    "locale": "en-US",
                    "message": "API key not valid. Please pass a valid API key.",
                },
                {"@type": "type.googleapis.com/google.rpc.DebugInfo", "detail": f"Invalid API key: {key}"},
            ],
        )
    if fault == "insufficient_quota":
        return _gemini_quota(
            retry_after,
            "GenerateRequestsPerDayPerProjectPerModel-FreeTier",
            "You exceeded your current quota, please check your plan and billing details.",
        )
    if status == 429:
        return _gemini_quota(
            retry_after,
            "GenerateRequestsPerMinutePerProjectPerModel-FreeTier",
            "You exceeded your current quota, please check your plan and billing details.",
        )
    if status == 403:
        return _g(
            403,
            "PERMISSION_DENIED",
            "Generative Language API has not been used in project 12345678 before or it is disabled.",
            [
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {**svc, "consumer": "projects/12345678"},
                }
            ],
        )
    table = {
        400: (400, "INVALID_ARGUMENT", "The input token count exceeds the maximum number of tokens allowed 1048576."),
        401: (
            401,
            "UNAUTHENTICATED",
            "Request had invalid authentication credentials. Expected OAuth 2 access "
            "token, login cookie or other valid authentication credential.",
        ),
        402: (402, "FAILED_PRECONDITION", "Billing account required."),
        404: (
            404,
            "NOT_FOUND",
            f"models/{model} is not found for API version v1beta, or is not supported for "
            "generateContent. Call ListModels to see the list of available models and their "
            "supported methods.",
        ),
        500: (
            500,
            "INTERNAL",
            "An internal error has occurred. Please retry or report in "
            "https://developers.generativeai.google/guide/troubleshooting",
        ),
        502: (502, "UNAVAILABLE", "Bad Gateway"),
        503: (503, "UNAVAILABLE", "The model is overloaded. Please try again later."),
        504: (504, "DEADLINE_EXCEEDED", "Deadline expired before operation could complete."),
    }
    code, name, message = table.get(status, (status, "UNAVAILABLE", "The service is currently unavailable."))
    return _g(code, name, message)


def ratelimit_headers(provider: str, remaining: int, reset_s: float) -> dict[str, str]:
    """Rate-limit headers on a successful answer (remaining_requests >= 0), so pools can steer early."""
    if provider == "openai":
        return {
            "x-ratelimit-limit-requests": "500",
            "x-ratelimit-remaining-requests": str(remaining),
            "x-ratelimit-reset-requests": _duration(reset_s),
            "x-ratelimit-limit-tokens": "30000",
            "x-ratelimit-remaining-tokens": "30000",
            "x-ratelimit-reset-tokens": _duration(reset_s),
        }
    if provider == "anthropic":
        reset = (datetime.now(UTC) + timedelta(seconds=reset_s)).strftime("%Y-%m-%dT%H:%M:%SZ")
        return {
            "anthropic-ratelimit-requests-limit": "50",
            "anthropic-ratelimit-requests-remaining": str(remaining),
            "anthropic-ratelimit-requests-reset": reset,
            "anthropic-ratelimit-tokens-limit": "100000",
            "anthropic-ratelimit-tokens-remaining": "100000",
            "anthropic-ratelimit-tokens-reset": reset,
        }
    return {}


def error_response(
    provider: str, fault: str, *, model: str, key: str, retry_after: float = 1.0
) -> tuple[int, dict[str, str], bytes]:
    """(status, headers, body) for a status fault in `provider`'s format."""
    status = fault_status(provider, fault)
    if provider == "anthropic":
        rid = request_id()
        return status, _anthropic_headers(status, retry_after, rid), orjson.dumps(anthropic_error(status, model, rid))
    if provider == "gemini":
        return status, {}, orjson.dumps(_gemini_body(status, fault, model, key, retry_after))
    build = _deepseek_body if provider == "deepseek" else _openai_body
    return (
        status,
        _openai_headers(provider, status, fault, retry_after),
        orjson.dumps(build(status, fault, model, key, retry_after)),
    )


def simple_error(provider: str, status: int, message: str) -> bytes:
    """A request-validation error (missing field, bad JSON) in the provider's envelope."""
    if provider == "anthropic":
        type_ = {401: "authentication_error", 404: "not_found_error"}.get(status, "invalid_request_error")
        return orjson.dumps({"type": "error", "error": {"type": type_, "message": message}, "request_id": request_id()})
    if provider == "gemini":
        name = {401: "UNAUTHENTICATED", 403: "PERMISSION_DENIED", 404: "NOT_FOUND"}.get(status, "INVALID_ARGUMENT")
        return orjson.dumps(_g(status, name, message))
    return orjson.dumps(_oai(message, "invalid_request_error"))
