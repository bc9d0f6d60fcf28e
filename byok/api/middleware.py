"""Refuse oversized or unreadable request bodies with a JSON error before any view runs.

In front of this, `byok.bodylimit` refuses the same bodies at the ASGI level
(and inside daphne) before they are read; this middleware keeps the rule for
requests that do not come through the ASGI app (Django's test client).

Django only checks `DATA_UPLOAD_MAX_MEMORY_SIZE` when something reads
`request.body` or `request.POST` (and then as a generic 400); DRF's parsers
read the stream directly. This middleware answers 413 from the
`Content-Length` header alone, for every endpoint (the chat ones included),
and 400 for a `Content-Length` that is not a number. Errors under `/v1/` are
in OpenAI's error format (what the openai SDK reads); elsewhere in byok's
one error shape `{"code", "message"}`.
"""

from __future__ import annotations

import logging

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.http import JsonResponse
from django.utils.deprecation import MiddlewareMixin

from byok.bodylimit import error_body, refusal
from byok.exceptions import ByokError

__all__ = ["BodySizeLimitMiddleware", "JsonErrorMiddleware"]

log = logging.getLogger("byok.api")


def check_body(request) -> JsonResponse | None:
    """The error response for a request whose declared body is too large or unreadable, else None."""
    refused = refusal(request.path, request.META.get("CONTENT_LENGTH"))
    if refused is None:
        return None
    status, body = refused
    return JsonResponse(body, status=status)


class BodySizeLimitMiddleware:
    """Sync and async capable, so async (streaming) views stay on the event loop."""

    sync_capable = True
    async_capable = True

    def __init__(self, get_response) -> None:
        self.get_response = get_response
        self.is_async = iscoroutinefunction(get_response)
        if self.is_async:
            markcoroutinefunction(self)

    def __call__(self, request):
        if self.is_async:
            return self._acall(request)
        return check_body(request) or self.get_response(request)

    async def _acall(self, request):
        return check_body(request) or await self.get_response(request)


class JsonErrorMiddleware(MiddlewareMixin):
    """An exception no view handled becomes a JSON error on every API path, never Django's HTML 500.

    A byok error keeps its status, code and `retryable` (e.g. 503 `state_unavailable` when Redis
    is down); anything else is a 500 `internal_error` whose detail goes to the log only. Under
    `/v1/` in OpenAI's error shape. The admin and the HTML pages keep Django's handling.
    Only an exception hook: Django's mixin then adds no thread hop to a request (Django calls
    exception hooks synchronously, in both modes, only on errors).
    """

    JSON_PREFIXES = ("/api/", "/v1/", "/healthz", "/readyz")

    def process_exception(self, request, exception):
        path = request.path
        if not path.startswith(self.JSON_PREFIXES) or path.startswith("/api/docs"):
            return None
        if isinstance(exception, ByokError):
            status, code, message, retryable = (
                exception.status_code,
                exception.code,
                exception.message,
                exception.retryable,
            )
        else:
            log.error(
                "unhandled error on %s %s",
                request.method,
                path,
                exc_info=(type(exception), exception, exception.__traceback__),
            )
            status, code, message, retryable = 500, "internal_error", "byok failed to answer this request.", False
        if path.startswith("/v1/"):
            body = error_body(path, code, message)
            body["error"]["type"] = "server_error" if status >= 500 else "invalid_request_error"
        else:
            body = {**error_body(path, code, message), "retryable": retryable}
        response = JsonResponse(body, status=status)
        if status == 503:
            response["Retry-After"] = "1"
        return response
