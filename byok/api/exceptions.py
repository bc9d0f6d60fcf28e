"""One shape for every API error: `{"code", "message", "retryable", ...}` with the right status.

byok's own errors carry the three fields (`ByokError.to_dict`); DRF's and Django's errors are put
into the same shape here, so a client reads every error body the same way.
"""

from __future__ import annotations

import logging

from django.core.exceptions import PermissionDenied, RequestDataTooBig
from django.http import Http404
from rest_framework import exceptions as drf
from rest_framework.response import Response
from rest_framework.views import set_rollback

from byok.exceptions import ByokError
from byok.secrets import redact

__all__ = ["exception_handler", "error_body"]

log = logging.getLogger("byok.api")


def error_body(code: str, message: str, *, retryable: bool = False, **extra) -> dict:
    return {"code": code, "message": message, "retryable": retryable, **extra}


def _flatten(detail) -> dict[str, list[str]]:
    """DRF's nested error detail as `field -> messages`, scrubbed of anything key-shaped."""
    if isinstance(detail, dict):
        out = {}
        for field, value in detail.items():
            name = redact(str(field))
            if isinstance(value, dict):
                for sub, msgs in _flatten(value).items():
                    out[f"{name}.{sub}"] = msgs
            elif isinstance(value, list):
                out[name] = [redact(str(v)) for v in value]
            else:
                out[name] = [redact(str(value))]
        return out
    if isinstance(detail, list):
        return {"non_field_errors": [redact(str(v)) for v in detail]}
    return {"non_field_errors": [redact(str(detail))]}


def exception_handler(exc, context):
    """DRF's EXCEPTION_HANDLER: byok errors, DRF errors and Django's 404/403/413 in one shape."""
    headers = {}
    if isinstance(exc, ByokError):
        body = exc.to_dict()
        status = exc.status_code
        retry_after = getattr(exc, "retry_after", None)
        if retry_after is not None and status in (429, 503):
            headers["Retry-After"] = str(max(1, int(retry_after + 0.999)))
    elif isinstance(exc, drf.ValidationError):
        status = 422
        body = error_body("validation_error", "The request is not valid.", errors=_flatten(exc.detail))
    elif isinstance(exc, (Http404, drf.NotFound)):
        status, body = 404, error_body("not_found", "Not found.")
    elif isinstance(exc, RequestDataTooBig):
        status, body = 413, error_body("payload_too_large", "The request body is too large.")
    elif isinstance(exc, PermissionDenied):
        status, body = 403, error_body("permission_denied", "You do not have permission to do this.")
    elif isinstance(exc, drf.APIException):
        status = exc.status_code
        code = (
            exc.default_code if isinstance(exc.detail, (dict, list)) else getattr(exc.detail, "code", exc.default_code)
        )
        message = str(exc.detail) if not isinstance(exc.detail, (dict, list)) else str(exc.default_detail)
        body = error_body(str(code), message, retryable=status in (429, 503))
        if isinstance(exc, (drf.NotAuthenticated, drf.AuthenticationFailed)):
            headers["WWW-Authenticate"] = 'Bearer realm="api"'
        if getattr(exc, "wait", None):
            headers["Retry-After"] = str(int(exc.wait))
        if isinstance(exc, drf.ParseError):
            status = 400
    else:
        return None
    set_rollback()
    return Response(body, status=status, headers=headers)
