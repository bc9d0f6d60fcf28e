"""Errors of an upstream provider, classified by its adapter: whose fault, retried or not, failed over or not."""

from __future__ import annotations

from typing import Any

from byok.exceptions.base import ByokError

__all__ = [
    "AuthError",
    "BadRequestError",
    "ClientError",
    "KeyEncodingError",
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
