"""`ByokError`: the base of every byok error (code, HTTP status, retryable, a message with keys redacted)."""

from __future__ import annotations

from typing import Any

from byok.secrets import redact

__all__ = ["ByokError"]


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
