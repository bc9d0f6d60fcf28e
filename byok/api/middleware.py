"""Refuse oversized or unreadable request bodies with a JSON error before any view runs.

Django only checks `DATA_UPLOAD_MAX_MEMORY_SIZE` when something reads
`request.body` or `request.POST` (and then as a generic 400); DRF's parsers
read the stream directly. This middleware answers 413 from the
`Content-Length` header alone, for every endpoint (the chat ones included),
and 400 for a `Content-Length` that is not a number. Errors under `/v1/` are
in OpenAI's error format (what the openai SDK reads); elsewhere in byok's
one error shape `{"code", "message"}`.
"""

from __future__ import annotations

from asgiref.sync import iscoroutinefunction, markcoroutinefunction
from django.conf import settings
from django.http import JsonResponse

__all__ = ["BodySizeLimitMiddleware"]


def _error(request, status: int, code: str, message: str) -> JsonResponse:
    if request.path.startswith("/v1/"):
        kind = "invalid_request_error"
        return JsonResponse({"error": {"message": message, "type": kind, "param": None, "code": code}}, status=status)
    return JsonResponse({"code": code, "message": message}, status=status)


def check_body(request) -> JsonResponse | None:
    """The error response for a request whose declared body is too large or unreadable, else None."""
    declared = request.META.get("CONTENT_LENGTH") or ""
    if not declared:
        return None
    try:
        length = int(declared)
    except ValueError:
        length = -1
    if length < 0:
        return _error(request, 400, "bad_request", "The Content-Length header is not a valid length.")
    limit = settings.DATA_UPLOAD_MAX_MEMORY_SIZE
    if limit is not None and length > limit:
        return _error(request, 413, "payload_too_large", f"The request body is too large (at most {limit} bytes).")
    return None


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
