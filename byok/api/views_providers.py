"""Providers and their keys: register, list, read, change, delete, add/revoke/rotate keys, test.

Every change goes through `byok.registry` (validated, audited exactly once,
announced to every process) with the requesting user as the actor. Keys are
shown masked; `api_key` is write-only. Revoking a key that is revoked already
answers the key with no new audit event; deleting a provider that a concurrent
request has just deleted is a 404.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import Prefetch
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.decorators import action
from rest_framework.response import Response

from byok import registry
from byok.api.serializers import (
    ApiKeySerializer,
    KeyCreateSerializer,
    ProviderRegisterSerializer,
    ProviderSerializer,
    ProviderUpdateSerializer,
    RotateKeySerializer,
    TestResultSerializer,
)
from byok.api.views import BODY_ERRORS, READ_ERRORS, AuditedViewSet, error_responses, parse_id, path_id
from byok.models import ApiKey, Provider

__all__ = ["ProviderViewSet"]

TAG = ["providers"]
PROVIDER_ID = path_id("id", "The provider's id.")
KEY_ID = path_id("key_id", "The key's id.")


def _with_keys():
    return Provider.objects.prefetch_related(Prefetch("keys", queryset=ApiKey.objects.order_by("id")))


async def _live_test(provider_id: int) -> dict[str, Any]:
    from byok.gateway.handler import get_handler  # the request path, only for this one live call

    handler = get_handler()
    try:
        return await handler.test_provider(provider_id)
    finally:
        await handler.flush_usage()  # this loop may end with the request


@extend_schema_view(
    list=extend_schema(
        operation_id="providers_list",
        description="Every provider with its key pool (hints, statuses and limits; never a secret), in routing order.",
        tags=TAG,
        responses={200: ProviderSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List providers (keys masked), in routing order",
    ),
    retrieve=extend_schema(
        operation_id="providers_retrieve",
        description="One provider with its key pool (keys masked).",
        tags=TAG,
        parameters=[PROVIDER_ID],
        responses={200: ProviderSerializer, **error_responses(*READ_ERRORS, 404)},
        summary="One provider",
    ),
    partial_update=extend_schema(
        operation_id="providers_update",
        description="Change a provider's settings; the change is audited once (no fields: no change, no event).",
        tags=TAG,
        parameters=[PROVIDER_ID],
        request=ProviderUpdateSerializer,
        responses={200: ProviderSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a provider's settings (only the fields given)",
    ),
    destroy=extend_schema(
        operation_id="providers_destroy",
        description=(
            "Delete a provider with its keys (one audit event). A provider deleted already, also by a concurrent "
            "request, is 404."
        ),
        tags=TAG,
        parameters=[PROVIDER_ID],
        responses={
            204: OpenApiResponse(description="Deleted, with its keys (audited)."),
            **error_responses(*READ_ERRORS, 404),
        },
        summary="Delete a provider and its keys",
    ),
)
class ProviderViewSet(AuditedViewSet):
    """Providers with their key pools (hints, statuses and limits; never a secret), in routing order. Every change is
    audited.
    """

    noun = "provider"
    update_serializer = ProviderUpdateSerializer

    def list(self, request):
        return Response(ProviderSerializer(_with_keys().order_by("priority", "name"), many=True).data)

    def fetch(self, pk: int) -> Provider:
        return registry.get_provider(pk)

    def represent(self, provider: Provider) -> dict[str, Any]:
        fresh = _with_keys().filter(pk=provider.pk).first()
        return ProviderSerializer(fresh if fresh is not None else provider).data

    def perform_update(self, pk: int, changes: dict[str, Any]) -> Provider:
        return registry.update_provider(pk, changes, actor=self.actor)

    def perform_destroy(self, pk: int) -> None:
        registry.delete_provider(pk, actor=self.actor)

    @extend_schema(
        operation_id="providers_register",
        tags=TAG,
        request=ProviderRegisterSerializer,
        responses={201: ProviderSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Register a provider, optionally with its first key",
    )
    @action(detail=False, methods=["post"], url_path="register")
    def register(self, request):
        """Register a provider (`provider` is its kind), optionally with its first key. 201 with the provider, keys
        masked.
        """
        body = self.valid(ProviderRegisterSerializer)
        provider = registry.register_provider(
            actor=self.actor,
            api_key=body.validated_data.get("api_key"),
            key_options=body.key_options(),
            **body.service_values(),
        )
        return self.created(provider)

    @extend_schema(
        operation_id="providers_keys_create",
        tags=TAG,
        parameters=[PROVIDER_ID],
        request=KeyCreateSerializer,
        responses={201: ApiKeySerializer, **error_responses(*BODY_ERRORS, 404)},
        summary="Add a key to the provider's pool",
    )
    @action(detail=True, methods=["post"], url_path="keys")
    def add_key(self, request, **kwargs):
        """Add a key to the provider's pool (201 with the key, masked)."""
        provider_id = self.object_id()
        body = self.valid(KeyCreateSerializer)
        key = registry.add_key(provider_id, body.validated_data["api_key"], actor=self.actor, **body.key_options())
        return Response(ApiKeySerializer(key).data, status=201)

    @extend_schema(
        operation_id="providers_keys_revoke",
        tags=TAG,
        parameters=[PROVIDER_ID, KEY_ID],
        responses={
            200: OpenApiResponse(
                ApiKeySerializer,
                description="The key, now `revoked` (it stays in the pool's history). "
                "A key revoked already is answered as it is, with no new audit event.",
            ),
            **error_responses(*READ_ERRORS, 404),
        },
        summary="Revoke a key",
    )
    @action(detail=True, methods=["delete"], url_path="keys/(?P<key_id>[^/]+)")
    def revoke_key(self, request, key_id: str, **kwargs):
        """Revoke a key: it is taken out of the pool at once and kept, `revoked`, for the record (200 with the key).

        Revoking a key that is revoked already answers 200 with the key and writes no audit event.
        """
        provider_id = self.object_id()
        key = registry.revoke_key(provider_id, parse_id(key_id, "key"), actor=self.actor)
        return Response(ApiKeySerializer(key).data)

    @extend_schema(
        operation_id="providers_rotate_key",
        tags=TAG,
        parameters=[PROVIDER_ID],
        request=RotateKeySerializer,
        responses={
            200: OpenApiResponse(ApiKeySerializer, description="The new, active key; the old one is now `retired`."),
            **error_responses(*BODY_ERRORS, 404, 409),
        },
        summary="Rotate a key: the new key in, the old one retired (one audit event)",
    )
    @action(detail=True, methods=["post"], url_path="rotate-key")
    def rotate_key(self, request, **kwargs):
        """Rotate a key: the new key is active for new requests, the old one (`key_id`, or the only active key) is
        retired.
        """
        provider_id = self.object_id()
        body = self.valid(RotateKeySerializer)
        key = registry.rotate_key(
            provider_id, body.validated_data["api_key"], key_id=body.validated_data.get("key_id"), actor=self.actor
        )
        return Response(ApiKeySerializer(key).data)

    @extend_schema(
        operation_id="providers_test",
        tags=TAG,
        parameters=[PROVIDER_ID],
        request=None,
        responses={200: TestResultSerializer, **error_responses(*READ_ERRORS, 404)},
        summary="A minimal live call to the provider: ok, latency, error",
        description="Sends one tiny request (no failover) with a usable key of the provider. "
        "The answer is 200 whether the provider answered or not: `ok` says which.",
    )
    @action(detail=True, methods=["post"], url_path="test")
    def test(self, request, **kwargs):
        """A minimal live call to the provider."""
        provider_id = self.fetch(self.object_id()).pk  # 404 before anything else
        return Response(async_to_sync(_live_test)(provider_id))
