"""Every error byok raises, in one tree.

    ByokError                      code, status_code, retryable, message
    ├── ProviderError              an upstream said no (or said nonsense)
    │   ├── KeyFaultError          the key is at fault: never retried with that key
    │   │   ├── AuthError          401/403, Gemini API_KEY_INVALID -> key invalid
    │   │   │   └── KeyEncodingError a stored key an HTTP header cannot carry -> key invalid
    │   │   └── KeyQuotaError      balance / insufficient_quota / daily quota -> key parked
    │   ├── RateLimitError         429: retryable, `retry_after` seconds
    │   ├── OverloadedError        529, Anthropic overloaded_error: retryable
    │   ├── ServerError            500/502/503/504: retryable
    │   ├── UpstreamTimeout        connect/read timeout: retryable
    │   ├── UpstreamConnectionError connection refused/reset/dropped: retryable
    │   ├── MalformedResponseError unparseable upstream data: retryable (another key/provider may be sane)
    │   └── ClientError            400/404/413/422: passed to the caller, neither retried nor failed over
    │       ├── BadRequestError
    │       └── NotFoundError
    └── GatewayError               byok itself refuses or gives up (see byok.gateway.handler)
        ├── ContextLengthExceededError 400: prompt + max_tokens over the model's window (byok.maxtokens)
        ├── MasterKeyMismatchError 503: a stored key this process cannot decrypt (byok.crypto)
        └── BudgetExceededError    429: the user's token/spend budget is used up, `retry_after` to the reset

`code` is a stable machine string, `status_code` the HTTP status byok answers
with, `retryable` whether trying again (later, elsewhere) can help. Messages
never contain a key: adapters build them from provider error bodies, and
`redact()` scrubs anything key-shaped before it is stored.
"""

from __future__ import annotations

from typing import Any

from byok.secrets import redact

__all__ = [
    "AllProvidersFailedError",
    "NoUsableProviderError",
    "RateLimitedError",
    "StreamInterruptedError",
    "AuthError",
    "BudgetExceededError",
    "ContextLengthExceededError",
    "ConflictError",
    "DuplicateNameError",
    "InvalidConfigError",
    "NotFound",
    "ProviderNotFoundError",
    "BadRequestError",
    "ByokError",
    "ClientError",
    "GatewayError",
    "KeyFaultError",
    "KeyQuotaError",
    "MalformedResponseError",
    "NotFoundError",
    "OverloadedError",
    "ProviderError",
    "RateLimitError",
    "ServerError",
    "UpstreamConnectionError",
    "UpstreamTimeout",
]


class ByokError(Exception):
    """Base of every byok error; subclasses set the class attributes."""

    code = "error"
    status_code = 500
    retryable = False
    default_message = "Something went wrong."
    overhead_ms: float | None = None  # set by the handler: byok's time on the request, upstream excluded

    def __init__(self, message: str | None = None, **details: Any) -> None:
        self.message = redact(message or self.default_message)
        self.details = details
        super().__init__(self.message)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r})"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "retryable": self.retryable}


class ProviderError(ByokError):
    """An upstream provider's error, classified by its adapter.

    `status` is the upstream HTTP status (None for transport errors),
    `headers` are lowercased, `retry_after` is seconds to wait or None,
    `provider_code` is the provider's own error code/type/status string.
    """

    code = "upstream_error"
    status_code = 502
    retryable = True
    error_class = "server"
    default_message = "The provider returned an error."

    def __init__(
        self,
        message: str | None = None,
        *,
        provider: str = "",
        status: int | None = None,
        headers: dict[str, str] | None = None,
        retry_after: float | None = None,
        provider_code: str | None = None,
        in_stream: bool = False,
    ) -> None:
        super().__init__(message)
        self.provider = provider
        self.status = status
        self.headers = {k.lower(): v for k, v in (headers or {}).items()}
        self.retry_after = retry_after
        self.provider_code = provider_code
        self.in_stream = in_stream

    def to_dict(self) -> dict[str, Any]:
        out = super().to_dict()
        out.update(provider=self.provider, upstream_status=self.status, error_class=self.error_class)
        if self.retry_after is not None:
            out["retry_after"] = self.retry_after
        return out


class KeyFaultError(ProviderError):
    """The key itself is at fault; the handler takes it out of the pool."""

    code = "upstream_key_error"
    retryable = False
    error_class = "auth"


class AuthError(KeyFaultError):
    """The provider rejected the key (401/403, Gemini API_KEY_INVALID)."""

    code = "upstream_auth_error"
    default_message = "The provider rejected the API key."


class KeyEncodingError(AuthError):
    """A stored key holds characters an HTTP header cannot carry (stored before keys were checked for them)."""

    code = "upstream_auth_error"
    default_message = "The stored API key contains characters that cannot be sent in an HTTP header."


class KeyQuotaError(KeyFaultError):
    """The key's account is out of balance or quota; it is parked until `retry_after` or an admin."""

    code = "upstream_quota_exhausted"
    error_class = "quota"
    default_message = "The provider key's balance or quota is exhausted."


class RateLimitError(ProviderError):
    """429: too many requests or tokens for now."""

    code = "upstream_rate_limited"
    status_code = 429
    error_class = "rate_limit"
    default_message = "The provider rate limit was hit."


class OverloadedError(ProviderError):
    """The provider is overloaded (Anthropic 529 / overloaded_error)."""

    code = "upstream_overloaded"
    status_code = 503
    error_class = "overloaded"
    default_message = "The provider is overloaded."


class ServerError(ProviderError):
    """A 5xx from the provider."""

    code = "upstream_server_error"
    error_class = "server"


class UpstreamTimeout(ProviderError):
    """The provider did not answer in time."""

    code = "upstream_timeout"
    status_code = 504
    error_class = "timeout"
    default_message = "The provider did not answer in time."


class UpstreamConnectionError(ProviderError):
    """The connection to the provider failed or dropped."""

    code = "upstream_connection_error"
    error_class = "connection"
    default_message = "The connection to the provider failed."


class MalformedResponseError(ProviderError):
    """The provider sent data that could not be read."""

    code = "upstream_malformed_response"
    error_class = "malformed"
    default_message = "The provider sent a response that could not be read."


class ClientError(ProviderError):
    """The provider refused the request itself; the caller must change it."""

    code = "upstream_bad_request"
    status_code = 400
    retryable = False
    error_class = "bad_request"
    default_message = "The provider rejected the request."

    def __init__(self, message: str | None = None, **kwargs: Any) -> None:
        super().__init__(message, **kwargs)
        # Pass the provider's own status on (400, 404, 413, 422).
        if self.status in (400, 404, 413, 422):
            self.status_code = self.status


class BadRequestError(ClientError):
    """400/413/422 from the provider."""


class NotFoundError(ClientError):
    """404: unknown model or endpoint at the provider."""

    code = "upstream_not_found"
    status_code = 404
    error_class = "not_found"
    default_message = "The provider does not know this model or endpoint."


class GatewayError(ByokError):
    """byok itself refuses or gives up; subclasses live beside the handler."""

    code = "gateway_error"
    status_code = 502


class InvalidConfigError(GatewayError):
    """A provider or key configuration failed validation; `errors` maps field -> messages."""

    code = "validation_error"
    status_code = 422
    default_message = "The request is not valid."

    def __init__(self, errors: dict[str, list[str]], message: str | None = None) -> None:
        super().__init__(message)
        self.errors = {field: [redact(m) for m in msgs] for field, msgs in errors.items()}

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "errors": self.errors}


class DuplicateNameError(GatewayError):
    """A provider with this name exists already."""

    code = "duplicate_name"
    status_code = 409
    default_message = "A provider with this name already exists."


class ConflictError(GatewayError):
    """The change conflicts with the current state (e.g. rotating a key that is no longer active)."""

    code = "conflict"
    status_code = 409


class NotFound(GatewayError):
    """No such provider, key or model."""

    code = "not_found"
    status_code = 404
    default_message = "Not found."


class ProviderNotFoundError(NotFound):
    """The request named a provider byok does not know; nothing was sent upstream."""

    code = "provider_not_found"
    default_message = "Unknown provider."


class MasterKeyMismatchError(GatewayError):
    """A stored key cannot be decrypted with this process's master key(s): a rotation not yet rolled out here."""

    code = "master_key_mismatch"
    status_code = 503
    retryable = True
    default_message = (
        "This server cannot decrypt the provider keys it needs: its BYOK_MASTER_KEY does not match the one they "
        "were encrypted with (a master-key rotation not rolled out to every process)."
    )


class NoUsableProviderError(GatewayError):
    """No enabled provider with a usable key could take the request."""

    code = "no_usable_provider"
    status_code = 503
    retryable = True
    default_message = "No provider or key is usable for this request."


class RateLimitedError(GatewayError):
    """Every target is rate limited or cooling down past the request's
    deadline; `retry_after` says when to come back.
    """

    code = "rate_limited"
    status_code = 429
    retryable = True
    default_message = "Every provider and key is rate limited right now."

    def __init__(self, message: str | None = None, *, retry_after: float, attempts: list[dict] | None = None) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)
        self.attempts = attempts or []

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "retry_after": round(self.retry_after, 3), "attempts": self.attempts}


class AllProvidersFailedError(GatewayError):
    """Every attempt failed; `attempts` lists each (provider, key hint, status, class), never a secret.

    502 in general, 504 when the last failure was a timeout.
    """

    code = "upstream_failed"
    status_code = 502
    retryable = True
    default_message = "Every provider failed to answer."

    def __init__(self, message: str | None = None, *, attempts: list[dict], timeout: bool = False) -> None:
        super().__init__(message)
        self.attempts = attempts
        if timeout:
            self.code, self.status_code = "upstream_timeout", 504

    def to_dict(self) -> dict[str, Any]:
        return {**super().to_dict(), "attempts": self.attempts}


class StreamInterruptedError(GatewayError):
    """The provider's stream ended before its end marker."""

    code = "stream_interrupted"
    status_code = 502
    retryable = True
    default_message = "The provider's stream ended early."


class ContextLengthExceededError(GatewayError):
    """The estimated prompt plus max_tokens does not fit the model's context window; nothing was sent upstream."""

    code = "context_length_exceeded"
    status_code = 400
    default_message = "The request does not fit the model's context window."

    def __init__(
        self,
        message: str | None = None,
        *,
        model: str = "",
        prompt_tokens: int = 0,
        max_tokens: int | None = None,
        context_window: int | None = None,
        max_input_tokens: int | None = None,
    ) -> None:
        super().__init__(message)
        self.model, self.prompt_tokens, self.max_tokens = model, prompt_tokens, max_tokens
        self.context_window, self.max_input_tokens = context_window, max_input_tokens

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "model": self.model,
            "estimated_prompt_tokens": self.prompt_tokens,
            "max_tokens": self.max_tokens,
            "context_window": self.context_window,
            **({"max_input_tokens": self.max_input_tokens} if self.max_input_tokens else {}),
        }


class BudgetExceededError(GatewayError):
    """The user's token or spend budget for the period is used up; `retry_after` is seconds to the period's reset."""

    code = "budget_exceeded"
    status_code = 429
    retryable = True
    default_message = "Your budget for this period is used up."

    def __init__(
        self,
        message: str | None = None,
        *,
        retry_after: float,
        period: str = "",
        reason: str = "",
        limit: float | None = None,
        used: float | None = None,
    ) -> None:
        super().__init__(message)
        self.retry_after = max(0.0, retry_after)
        self.period, self.reason, self.limit, self.used = period, reason, limit, used

    def to_dict(self) -> dict[str, Any]:
        return {
            **super().to_dict(),
            "retry_after": round(self.retry_after, 3),
            "period": self.period,
            "reason": self.reason,
            "limit": self.limit,
            "used": self.used,
        }
