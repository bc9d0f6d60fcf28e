"""`GET /api/me/usage`: the caller's own usage (any authenticated user), the JSON of the My usage page.

The caller may present a session, an API token or a gateway key (`Authorization: Bearer
byok_…` or `x-api-key`); whichever it is, only records whose user is the caller are read. A
gateway key is checked against the database here (this is not the chat hot path): a revoked,
expired or unknown key is 401 with its code, like on the chat endpoints.
"""

from __future__ import annotations

from datetime import UTC, datetime

from drf_spectacular.utils import OpenApiParameter, OpenApiTypes, extend_schema, inline_serializer
from rest_framework import exceptions, serializers
from rest_framework.authentication import BaseAuthentication, SessionAuthentication
from rest_framework.permissions import IsAuthenticated
from rest_framework.renderers import JSONRenderer
from rest_framework.response import Response
from rest_framework.views import APIView

from byok.admin.stats import DEFAULT_SPAN, SPANS
from byok.api.authentication import BearerOrTokenAuthentication
from byok.api.views import READ_ERRORS, error_responses
from byok.keys.entry import presented_key
from byok.keys.grant import KeyRejected
from byok.keys.secret import parse, same_digest
from byok.models import GatewayKey
from byok.selfservice.usage import as_json, own_usage

__all__ = ["GatewayKeyAuthentication", "MeUsageView"]


class GatewayKeyAuthentication(BaseAuthentication):
    """A gateway key as the management API's credential, for the caller's own data (`/api/me/...`)."""

    def authenticate(self, request):
        text = presented_key(request.META)
        if text is None:
            return None  # not a gateway key: the token or session authentication may take it
        parsed = parse(text)
        key = None
        if parsed is not None:
            lookup, digest = parsed
            candidates = GatewayKey.objects.select_related("user").filter(lookup=lookup)
            key = next((k for k in candidates if same_digest(k.digest, digest)), None)
        if key is None:
            raise exceptions.AuthenticationFailed(KeyRejected("invalid_key").message, code="invalid_key")
        reason = (
            "key_revoked"
            if key.revoked
            else "key_expired"
            if key.expires_at is not None and key.expires_at <= datetime.now(UTC)
            else "invalid_key"
            if not key.user.is_active
            else None
        )
        if reason is not None:
            raise exceptions.AuthenticationFailed(KeyRejected(reason).message, code=reason)
        return key.user, key

    def authenticate_header(self, request) -> str:
        return "Bearer"


_FIGURES: dict[str, serializers.Field] = {
    "requests": serializers.IntegerField(),
    "errors": serializers.IntegerField(),
    "tokens_in": serializers.IntegerField(),
    "tokens_out": serializers.IntegerField(),
    "spend_usd": serializers.FloatField(),
}

MeUsageSerializer = inline_serializer(
    "MeUsage",
    {
        "span": serializers.ChoiceField(choices=list(SPANS)),
        "from": serializers.DateTimeField(),
        "to": serializers.DateTimeField(),
        "bucket_hours": serializers.IntegerField(),
        "totals": inline_serializer("MeUsageTotals", _FIGURES),
        "series": inline_serializer("MeUsagePoint", {"start": serializers.DateTimeField(), **_FIGURES}, many=True),
        "rows": inline_serializer(
            "MeUsageRow",
            {
                "day": serializers.DateField(),
                "model": serializers.CharField(),
                "key_id": serializers.IntegerField(allow_null=True),
                "key_prefix": serializers.CharField(allow_null=True),
                "key_name": serializers.CharField(allow_null=True),
                "requests": serializers.IntegerField(),
                "tokens_in": serializers.IntegerField(),
                "tokens_out": serializers.IntegerField(),
                "spend_usd": serializers.FloatField(),
            },
            many=True,
        ),
    },
)


class MeUsageView(APIView):
    """The caller's requests, tokens and spend over 24 h, 7 days or 30 days: totals, per bucket, per day/model/key."""

    authentication_classes = [GatewayKeyAuthentication, BearerOrTokenAuthentication, SessionAuthentication]
    permission_classes = [IsAuthenticated]
    renderer_classes = [JSONRenderer]

    @extend_schema(
        operation_id="me_usage",
        tags=["me"],
        parameters=[
            OpenApiParameter("span", OpenApiTypes.STR, enum=list(SPANS), default=DEFAULT_SPAN, description="Period.")
        ],
        responses={200: MeUsageSerializer, **error_responses(*READ_ERRORS, 422)},
        summary="My usage: the caller's own requests, tokens and spend (session, API token or gateway key)",
    )
    def get(self, request):
        name = request.query_params.get("span", DEFAULT_SPAN)
        if name not in SPANS:
            raise serializers.ValidationError({"span": [f"One of {', '.join(SPANS)}."]})
        data = own_usage(request.user, SPANS[name], datetime.now(UTC))
        answer = Response(as_json(data))
        answer["Cache-Control"] = "private, no-store"
        return answer
