"""Every error byok raises, in one tree (`base`: ByokError; `provider`: upstream errors; `gateway`: byok's own).

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

from byok.exceptions.base import ByokError
from byok.exceptions.gateway import (
    AllProvidersFailedError,
    BudgetExceededError,
    ConflictError,
    ContextLengthExceededError,
    DuplicateNameError,
    GatewayError,
    InvalidConfigError,
    MasterKeyMismatchError,
    NotFound,
    NoUsableProviderError,
    ProviderNotFoundError,
    RateLimitedError,
    StreamInterruptedError,
)
from byok.exceptions.provider import (
    AuthError,
    BadRequestError,
    ClientError,
    KeyEncodingError,
    KeyFaultError,
    KeyQuotaError,
    MalformedResponseError,
    NotFoundError,
    OverloadedError,
    ProviderError,
    RateLimitError,
    ServerError,
    UpstreamConnectionError,
    UpstreamTimeout,
)

__all__ = [
    "AllProvidersFailedError",
    "NoUsableProviderError",
    "RateLimitedError",
    "StreamInterruptedError",
    "AuthError",
    "KeyEncodingError",
    "MasterKeyMismatchError",
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
