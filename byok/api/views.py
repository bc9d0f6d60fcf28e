"""What every management view shares: staff only, JSON in and out, ids, documented errors.

The views themselves live in `views_providers` (providers and keys) and
`views_audit` (the audit trail and the usage report).

Bodies: a body that is not JSON (or not UTF-8) is 400 `parse_error`; a body
of another media type is 415 `unsupported_media_type`; JSON that parses but
is not a valid request is 422 `validation_error` with `errors` per field.
"""

from __future__ import annotations

import json

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import JSONParser
from rest_framework.renderers import JSONRenderer
from rest_framework.views import APIView

from byok.api.permissions import IsStaff
from byok.api.serializers import ErrorSerializer, ValidationErrorSerializer
from byok.exceptions import NotFound

__all__ = ["JSONBodyParser", "StaffAPIView", "error_responses", "parse_id", "path_id", "drop_slash_duplicates"]

MAX_ID = 2**63 - 1


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON.")


class JSONBodyParser(JSONParser):
    """Strict JSON (RFC 8259): UTF-8, no NaN/Infinity; anything unreadable is a 400, never a 500."""

    def parse(self, stream, media_type=None, parser_context=None):
        raw = stream.read() if stream is not None else b""
        try:
            return json.loads(raw.decode("utf-8-sig"), parse_constant=_reject_constant)
        except RecursionError:
            raise ParseError("JSON parse error - the body is nested too deeply.") from None
        except UnicodeDecodeError:
            raise ParseError("JSON parse error - the body is not UTF-8.") from None
        except ValueError as exc:  # JSONDecodeError, NaN/Infinity, integers too long to convert
            raise ParseError(f"JSON parse error - {exc}.") from None


class StaffAPIView(APIView):
    """A management endpoint: staff only, JSON bodies, JSON answers."""

    permission_classes = [IsStaff]
    parser_classes = [JSONBodyParser]
    renderer_classes = [JSONRenderer]


def parse_id(value: str, what: str = "provider") -> int:
    """A positive database id from a path segment; anything else is 404 (there is no such resource)."""
    if not value.isascii() or not value.isdigit() or len(value) > 19 or not 0 < int(value) <= MAX_ID:
        raise NotFound(f"No {what} {value[:40]!r}.")
    return int(value)


def path_id(name: str, description: str) -> OpenApiParameter:
    schema = {"type": "integer", "format": "int64", "minimum": 1, "maximum": MAX_ID}
    return OpenApiParameter(name, schema, OpenApiParameter.PATH, description=description + " Anything else is 404.")


_ERRORS = {
    400: "The body is not JSON (`parse_error`).",
    401: "No or invalid credentials (`not_authenticated`, `authentication_failed`); with a `WWW-Authenticate` challenge.",
    403: "Not a staff user, or a session request without its CSRF token (`permission_denied`).",
    404: "No such provider or key (`not_found`).",
    409: "Conflicts with the current state: a duplicate name (`duplicate_name`) or a key that is not active (`conflict`).",
    413: "The body is larger than the configured limit (`payload_too_large`).",
    415: "The body is not `application/json` (`unsupported_media_type`).",
    422: "The body or query is not valid (`validation_error`); `errors` maps each field to its messages.",
}


def error_responses(*codes: int) -> dict[int, OpenApiResponse]:
    """The documented error responses of an operation, all in the one error shape."""
    return {
        code: OpenApiResponse(ValidationErrorSerializer if code == 422 else ErrorSerializer, description=_ERRORS[code])
        for code in codes
    }


READ_ERRORS = (401, 403)
BODY_ERRORS = (400, 401, 403, 413, 415, 422)


class BearerOrTokenScheme(OpenApiAuthenticationExtension):
    """The schema's name for byok's token auth: `Authorization: Bearer <token>` (or `Token <token>`)."""

    target_class = "byok.api.authentication.BearerOrTokenAuthentication"
    name = "tokenAuth"
    priority = 1

    def get_security_definition(self, auto_schema):
        return {
            "type": "http",
            "scheme": "bearer",
            "description": "A byok API token (`manage.py drf_create_token <user>`), as `Bearer <token>` or `Token <token>`.",
        }


def drop_slash_duplicates(endpoints, **kwargs):
    """drf-spectacular pre-processing hook: every path is also served with a trailing slash; document one."""
    seen = {(path, method) for path, _regex, method, _view in endpoints}
    return [e for e in endpoints if not (e[0].endswith("/") and (e[0].rstrip("/"), e[2]) in seen)]
