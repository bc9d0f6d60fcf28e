"""What every management view shares: staff only, JSON in and out, ids, documented errors, one resource flow.

The viewsets live in `views_providers` (providers and keys), `views_budgets`,
`views_catalog` and `views_audit` (the audit trail and the usage report);
`byok.api.urls` routes them. `AuditedViewSet` writes the create / read /
change / delete flow once; each resource supplies its serializers and the
`fetch` / `perform_*` / `represent` hooks, which call the byok service that
validates, audits exactly once and announces the change.

Bodies: a body that is not JSON (or not UTF-8) is 400 `parse_error`; a body
of another media type is 415 `unsupported_media_type`; JSON that parses but
is not a valid request is 422 `validation_error` with `errors` per field.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

from drf_spectacular.extensions import OpenApiAuthenticationExtension
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse
from rest_framework.exceptions import ParseError
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer, JSONRenderer
from rest_framework.response import Response
from rest_framework.reverse import reverse
from rest_framework.views import APIView
from rest_framework.viewsets import ViewSet

from byok.api.permissions import IsStaff
from byok.api.serializers import ErrorSerializer, ValidationErrorSerializer
from byok.audit import Actor, actor_from_request
from byok.exceptions import NotFound

__all__ = [
    "AuditedViewSet",
    "StaffAPIView",
    "StaffOnly",
    "CreateMixin",
    "JSONBodyParser",
    "StaffViewSet",
    "drop_slash_duplicates",
    "error_responses",
    "parse_id",
    "path_id",
]

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


class StaffOnly:
    """Staff only, JSON bodies, JSON answers: what every management view declares."""

    permission_classes: Sequence[Any] = [IsStaff]
    parser_classes: Sequence[type[BaseParser]] = [JSONBodyParser]
    renderer_classes: Sequence[type[BaseRenderer]] = [JSONRenderer]


class StaffAPIView(StaffOnly, APIView):
    """A management endpoint that is not a collection (the usage report)."""


class StaffViewSet(StaffOnly, ViewSet):
    """A management resource; any `{id}` segment reaches the view (an id that is not one is 404 there)."""

    lookup_field = "id"
    lookup_value_regex = "[^/]+"

    def valid(self, serializer_class):
        """The request body validated by ``serializer_class`` (422 with the field errors otherwise)."""
        serializer = serializer_class(data=self.request.data)
        serializer.is_valid(raise_exception=True)
        return serializer


class AuditedViewSet(StaffViewSet):
    """retrieve / partial_update / destroy, written once for every audited resource (``CreateMixin`` adds create).

    Subclasses set ``noun`` and ``update_serializer`` and provide the hooks: ``fetch(pk)`` (the object, or
    NotFound), ``perform_update(pk, changes)``, ``perform_destroy(pk)`` (each through the byok service, with
    ``self.actor``) and ``represent(obj)``. A change with no fields writes nothing and audits nothing, but is
    still 404 for an unknown id.
    """

    noun = "object"
    update_serializer: type | None = None

    @property
    def actor(self) -> Actor:
        return actor_from_request(self.request)

    def object_id(self) -> int:
        return parse_id(self.kwargs[self.lookup_field], self.noun)

    def created(self, obj) -> Response:
        """201 with the new object and its address."""
        location = reverse(f"{self.basename}-detail", kwargs={self.lookup_field: str(obj.pk)})
        return Response(self.represent(obj), status=201, headers={"Location": location})

    def retrieve(self, request, **kwargs):
        return Response(self.represent(self.fetch(self.object_id())))

    def partial_update(self, request, **kwargs):
        pk = self.object_id()
        changes = self.valid(self.update_serializer).service_values()
        obj = self.perform_update(pk, changes) if changes else self.fetch(pk)
        return Response(self.represent(obj))

    def destroy(self, request, **kwargs):
        self.perform_destroy(self.object_id())
        return Response(status=204)

    # -- hooks --------------------------------------------------------------------------------------------

    def fetch(self, pk: int):
        raise NotImplementedError(f"{type(self).__name__} must provide fetch()")

    def represent(self, obj) -> dict:
        raise NotImplementedError(f"{type(self).__name__} must provide represent()")

    def perform_update(self, pk: int, changes: dict):
        raise NotImplementedError(f"{type(self).__name__} must provide perform_update()")

    def perform_destroy(self, pk: int) -> None:
        raise NotImplementedError(f"{type(self).__name__} must provide perform_destroy()")


class CreateMixin:
    """``create`` for an `AuditedViewSet`: ``create_serializer``
    validates, the ``perform_create(values)`` hook creates.
    """

    create_serializer: type | None = None

    def create(self, request):
        return self.created(self.perform_create(self.valid(self.create_serializer).service_values()))

    def perform_create(self, values: dict):
        raise NotImplementedError(f"{type(self).__name__} must provide perform_create()")


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
    401: (
        "No or invalid credentials (`not_authenticated`, `authentication_failed`); with a `WWW-Authenticate` challenge."
    ),
    403: "Not a staff user, or a session request without its CSRF token (`permission_denied`).",
    404: "No such provider or key (`not_found`).",
    409: (
        "Conflicts with the current state: a duplicate name (`duplicate_name`) or a key that is not active "
        "(`conflict`)."
    ),
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
            "description": (
                "A byok API token (`manage.py drf_create_token <user>`), as `Bearer <token>` or `Token <token>`; "
                "the chat endpoints also take a gateway key (`Bearer byok_…`, or `x-api-key: byok_…`)."
            ),
        }


def drop_slash_duplicates(endpoints, **kwargs):
    """drf-spectacular pre-processing hook: every path is also served with a trailing slash; document one."""
    seen = {(path, method) for path, _regex, method, _view in endpoints}
    return [e for e in endpoints if not (e[0].endswith("/") and (e[0].rstrip("/"), e[2]) in seen)]
