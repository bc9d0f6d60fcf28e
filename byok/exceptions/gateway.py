"""Errors byok raises itself: it refuses a request or a change, or gives up on one."""

from __future__ import annotations

from typing import Any

from byok.exceptions.base import ByokError
from byok.secrets import redact

__all__ = [
    "AllProvidersFailedError",
    "BudgetExceededError",
    "ConflictError",
    "ContextLengthExceededError",
    "DuplicateNameError",
    "GatewayError",
    "InvalidConfigError",
    "MasterKeyMismatchError",
    "NoUsableProviderError",
    "NotFound",
    "ProviderNotFoundError",
    "RateLimitedError",
    "StreamInterruptedError",
]


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
