"""Providers and their keys: register, list, read, change, delete, add/revoke/rotate keys, test.

Every change goes through `byok.registry` (validated, audited exactly once,
announced to every process) with the requesting user as the actor. Keys are
shown masked; `api_key` is write-only.
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.db.models import Prefetch
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
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
from byok.api.views import BODY_ERRORS, READ_ERRORS, StaffAPIView, error_responses, parse_id, path_id
from byok.audit import actor_from_request
from byok.models import ApiKey, Provider

__all__ = [
    "KeyCreateView",
    "KeyRevokeView",
    "ProviderDetailView",
    "ProviderListView",
    "ProviderRegisterView",
    "ProviderTestView",
    "RotateKeyView",
]

TAG = ["providers"]
PROVIDER_ID = path_id("id", "The provider's id.")
KEY_ID = path_id("key_id", "The key's id.")


def _with_keys():
    return Provider.objects.prefetch_related(Prefetch("keys", queryset=ApiKey.objects.order_by("id")))


def _provider_body(provider_id: int) -> dict[str, Any]:
    provider = _with_keys().filter(pk=provider_id).first()
    if provider is None:  # deleted between the change and this read
        provider = registry.get_provider(provider_id)
    return ProviderSerializer(provider).data


def _valid(serializer_class, request):
    serializer = serializer_class(data=request.data)
    serializer.is_valid(raise_exception=True)
    return serializer


class ProviderRegisterView(StaffAPIView):
    """Register a provider (`provider` is its kind), optionally with its first key. 201 with the provider, keys masked."""

    @extend_schema(
        operation_id="providers_register", tags=TAG, request=ProviderRegisterSerializer,
        responses={201: ProviderSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Register a provider, optionally with its first key",
    )
    def post(self, request):
        body = _valid(ProviderRegisterSerializer, request)
        provider = registry.register_provider(
            actor=actor_from_request(request),
            api_key=body.validated_data.get("api_key"),
            key_options=body.key_options(),
            **body.provider_values(),
        )
        location = reverse("api-provider", kwargs={"id": str(provider.pk)})
        return Response(_provider_body(provider.pk), status=201, headers={"Location": location})


class ProviderListView(StaffAPIView):
    """Every provider with its key pool (hints, statuses and limits; never a secret), in routing order."""

    @extend_schema(
        operation_id="providers_list", tags=TAG, responses={200: ProviderSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List providers (keys masked), in routing order",
    )
    def get(self, request):
        return Response(ProviderSerializer(_with_keys().order_by("priority", "name"), many=True).data)


class ProviderDetailView(StaffAPIView):
    """One provider: read it, change its settings, or delete it with its keys. Every change is audited."""

    @extend_schema(
        operation_id="providers_retrieve", tags=TAG, parameters=[PROVIDER_ID],
        responses={200: ProviderSerializer, **error_responses(*READ_ERRORS, 404)}, summary="One provider",
    )
    def get(self, request, id: str):
        provider_id = parse_id(id)
        registry.get_provider(provider_id)  # 404 when unknown
        return Response(_provider_body(provider_id))

    @extend_schema(
        operation_id="providers_update", tags=TAG, parameters=[PROVIDER_ID], request=ProviderUpdateSerializer,
        responses={200: ProviderSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a provider's settings (only the fields given)",
    )
    def patch(self, request, id: str):
        provider_id = parse_id(id)
        body = _valid(ProviderUpdateSerializer, request)
        changes = body.provider_values()
        if changes:
            registry.update_provider(provider_id, changes, actor=actor_from_request(request))
        else:
            registry.get_provider(provider_id)  # nothing to change: no audit event, but still 404 when unknown
        return Response(_provider_body(provider_id))

    @extend_schema(
        operation_id="providers_destroy", tags=TAG, parameters=[PROVIDER_ID],
        responses={204: OpenApiResponse(description="Deleted, with its keys (audited)."), **error_responses(*READ_ERRORS, 404)},
        summary="Delete a provider and its keys",
    )
    def delete(self, request, id: str):
        registry.delete_provider(parse_id(id), actor=actor_from_request(request))
        return Response(status=204)


class KeyCreateView(StaffAPIView):
    """Add a key to the provider's pool (201 with the key, masked)."""

    @extend_schema(
        operation_id="providers_keys_create", tags=TAG, parameters=[PROVIDER_ID], request=KeyCreateSerializer,
        responses={201: ApiKeySerializer, **error_responses(*BODY_ERRORS, 404)}, summary="Add a key to the provider's pool",
    )
    def post(self, request, id: str):
        provider_id = parse_id(id)
        body = _valid(KeyCreateSerializer, request)
        key = registry.add_key(provider_id, body.validated_data["api_key"], actor=actor_from_request(request), **body.key_options())
        return Response(ApiKeySerializer(key).data, status=201)


class KeyRevokeView(StaffAPIView):
    """Revoke a key: it is taken out of the pool at once and kept, `revoked`, for the record (200 with the key).

    Revoking a key that is revoked already answers 200 with the key and writes no audit event.
    """

    @extend_schema(
        operation_id="providers_keys_revoke", tags=TAG, parameters=[PROVIDER_ID, KEY_ID],
        responses={
            200: OpenApiResponse(ApiKeySerializer, description="The key, now `revoked` (it stays in the pool's history). "
                                 "A key revoked already is answered as it is, with no new audit event."),
            **error_responses(*READ_ERRORS, 404),
        },
        summary="Revoke a key",
    )
    def delete(self, request, id: str, key_id: str):
        provider_id = parse_id(id)
        key = registry.revoke_key(provider_id, parse_id(key_id, "key"), actor=actor_from_request(request))
        return Response(ApiKeySerializer(key).data)


class RotateKeyView(StaffAPIView):
    """Rotate a key: the new key is active for new requests, the old one (`key_id`, or the only active key) is retired."""

    @extend_schema(
        operation_id="providers_rotate_key", tags=TAG, parameters=[PROVIDER_ID], request=RotateKeySerializer,
        responses={
            200: OpenApiResponse(ApiKeySerializer, description="The new, active key; the old one is now `retired`."),
            **error_responses(*BODY_ERRORS, 404, 409),
        },
        summary="Rotate a key: the new key in, the old one retired (one audit event)",
    )
    def post(self, request, id: str):
        provider_id = parse_id(id)
        body = _valid(RotateKeySerializer, request)
        key = registry.rotate_key(
            provider_id, body.validated_data["api_key"], key_id=body.validated_data.get("key_id"),
            actor=actor_from_request(request),
        )
        return Response(ApiKeySerializer(key).data)


async def _live_test(provider_id: int) -> dict[str, Any]:
    from byok.gateway.handler import get_handler

    handler = get_handler()
    try:
        return await handler.test_provider(provider_id)
    finally:
        await handler.flush_usage()  # this loop may end with the request


class ProviderTestView(StaffAPIView):
    """A minimal live call to the provider."""

    @extend_schema(
        operation_id="providers_test", tags=TAG, parameters=[PROVIDER_ID], request=None,
        responses={200: TestResultSerializer, **error_responses(*READ_ERRORS, 404)},
        summary="A minimal live call to the provider: ok, latency, error",
        description="Sends one tiny request (no failover) with a usable key of the provider. "
        "The answer is 200 whether the provider answered or not: `ok` says which.",
    )
    def post(self, request, id: str):
        provider_id = parse_id(id)
        registry.get_provider(provider_id)  # 404 before anything else
        return Response(async_to_sync(_live_test)(provider_id))
