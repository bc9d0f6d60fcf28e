"""The model catalog (the shipped file with the overrides applied) and its overrides: list, add, change, delete.

Every change goes through `byok.catalog` (validated, audited exactly once,
announced to every process) with the requesting user as the actor.
"""

from __future__ import annotations

from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from byok import catalog_overrides as catalog
from byok.api.serializers_budgets import (
    CatalogEntrySerializer,
    CatalogQuerySerializer,
    OverrideCreateSerializer,
    OverrideSerializer,
    OverrideUpdateSerializer,
)
from byok.api.views import BODY_ERRORS, READ_ERRORS, StaffAPIView, error_responses, parse_id, path_id
from byok.api.views_providers import _valid
from byok.audit import actor_from_request
from byok.models import CatalogOverride

__all__ = ["CatalogView", "OverrideDetailView", "OverrideListView"]

TAG = ["catalog"]
OVERRIDE_ID = path_id("id", "The override's id.")


class CatalogView(StaffAPIView):
    """Every model byok knows: context window, output limit, prices, their date and source (file and overrides merged)."""

    @extend_schema(
        operation_id="catalog_list", tags=TAG, parameters=[CatalogQuerySerializer],
        responses={200: CatalogEntrySerializer(many=True), **error_responses(*READ_ERRORS, 422)},
        summary="The model catalog: limits and prices per model (file + enabled overrides)",
    )
    def get(self, request):
        query = CatalogQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(catalog.catalog_rows(query.validated_data.get("provider") or None))


class OverrideListView(StaffAPIView):
    """The admins' catalog overrides; add one."""

    @extend_schema(
        operation_id="catalog_overrides_list", tags=TAG,
        responses={200: OverrideSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List the catalog overrides",
    )
    def get(self, request):
        return Response(OverrideSerializer(CatalogOverride.objects.order_by("provider", "model"), many=True).data)

    @extend_schema(
        operation_id="catalog_overrides_create", tags=TAG, request=OverrideCreateSerializer,
        responses={201: OverrideSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Add a catalog override (figures for a model, over the file's or new)",
    )
    def post(self, request):
        body = _valid(OverrideCreateSerializer, request)
        obj = catalog.create_override(actor=actor_from_request(request), **body.override_values())
        location = reverse("api-catalog-override", kwargs={"id": str(obj.pk)})
        return Response(OverrideSerializer(obj).data, status=201, headers={"Location": location})


class OverrideDetailView(StaffAPIView):
    """One override: read it, change it, or delete it (the file's figures apply again). Every change is audited."""

    @extend_schema(
        operation_id="catalog_overrides_retrieve", tags=TAG, parameters=[OVERRIDE_ID],
        responses={200: OverrideSerializer, **error_responses(*READ_ERRORS, 404)}, summary="One catalog override",
    )
    def get(self, request, id: str):
        return Response(OverrideSerializer(catalog.get_override(parse_id(id, "catalog override"))).data)

    @extend_schema(
        operation_id="catalog_overrides_update", tags=TAG, parameters=[OVERRIDE_ID], request=OverrideUpdateSerializer,
        responses={200: OverrideSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a catalog override (only the fields given; null clears a figure)",
    )
    def patch(self, request, id: str):
        override_id = parse_id(id, "catalog override")
        body = _valid(OverrideUpdateSerializer, request)
        changes = body.override_values()
        if changes:
            obj = catalog.update_override(override_id, changes, actor=actor_from_request(request))
        else:
            obj = catalog.get_override(override_id)  # nothing to change: no audit event, but still 404 when unknown
        return Response(OverrideSerializer(obj).data)

    @extend_schema(
        operation_id="catalog_overrides_destroy", tags=TAG, parameters=[OVERRIDE_ID],
        responses={204: OpenApiResponse(description="Deleted (audited); the file's figures apply again."), **error_responses(*READ_ERRORS, 404)},
        summary="Delete a catalog override",
    )
    def delete(self, request, id: str):
        catalog.delete_override(parse_id(id, "catalog override"), actor=actor_from_request(request))
        return Response(status=204)
