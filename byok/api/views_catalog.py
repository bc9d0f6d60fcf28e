"""The model catalog (the shipped file with the overrides applied) and its overrides: list, add, change, delete.

Every change goes through `byok.catalog_overrides` (validated, audited exactly
once, announced to every process) with the requesting user as the actor.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.response import Response

from byok import catalog_overrides
from byok.api.serializers_budgets import (
    CatalogEntrySerializer,
    CatalogQuerySerializer,
    OverrideCreateSerializer,
    OverrideSerializer,
    OverrideUpdateSerializer,
)
from byok.api.views import BODY_ERRORS, READ_ERRORS, AuditedViewSet, CreateMixin, StaffViewSet, error_responses, path_id
from byok.models import CatalogOverride

__all__ = ["CatalogViewSet", "OverrideViewSet"]

TAG = ["catalog"]
OVERRIDE_ID = path_id("id", "The override's id.")


class CatalogViewSet(StaffViewSet):
    """Every model byok knows: context window, output limit, prices,
    their date and source (file and overrides merged).
    """

    @extend_schema(
        operation_id="catalog_list",
        tags=TAG,
        parameters=[CatalogQuerySerializer],
        responses={200: CatalogEntrySerializer(many=True), **error_responses(*READ_ERRORS, 422)},
        summary="The model catalog: limits and prices per model (file + enabled overrides)",
    )
    def list(self, request):
        query = CatalogQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        return Response(catalog_overrides.catalog_rows(query.validated_data.get("provider") or None))


@extend_schema_view(
    list=extend_schema(
        operation_id="catalog_overrides_list",
        description="The admins' catalog overrides.",
        tags=TAG,
        responses={200: OverrideSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List the catalog overrides",
    ),
    create=extend_schema(
        operation_id="catalog_overrides_create",
        description=(
            "Figures for a model of a provider kind or a named provider: over the file's entry field by field, or a "
            "new entry (one audit event; 409 for a second override of the same pair)."
        ),
        tags=TAG,
        request=OverrideCreateSerializer,
        responses={201: OverrideSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Add a catalog override (figures for a model, over the file's or new)",
    ),
    retrieve=extend_schema(
        operation_id="catalog_overrides_retrieve",
        description="One catalog override.",
        tags=TAG,
        parameters=[OVERRIDE_ID],
        responses={200: OverrideSerializer, **error_responses(*READ_ERRORS, 404)},
        summary="One catalog override",
    ),
    partial_update=extend_schema(
        operation_id="catalog_overrides_update",
        description="Change a catalog override; the change is audited once (no fields: no change, no event).",
        tags=TAG,
        parameters=[OVERRIDE_ID],
        request=OverrideUpdateSerializer,
        responses={200: OverrideSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a catalog override (only the fields given; null clears a figure)",
    ),
    destroy=extend_schema(
        operation_id="catalog_overrides_destroy",
        description="Delete a catalog override (one audit event); the file's figures apply again.",
        tags=TAG,
        parameters=[OVERRIDE_ID],
        responses={
            204: OpenApiResponse(description="Deleted (audited); the file's figures apply again."),
            **error_responses(*READ_ERRORS, 404),
        },
        summary="Delete a catalog override",
    ),
)
class OverrideViewSet(CreateMixin, AuditedViewSet):
    """The admins' catalog overrides: add, read, change or delete one (the file's figures apply again). Every change is
    audited.
    """

    noun = "catalog override"
    create_serializer = OverrideCreateSerializer
    update_serializer = OverrideUpdateSerializer

    def list(self, request):
        return Response(OverrideSerializer(CatalogOverride.objects.order_by("provider", "model"), many=True).data)

    def fetch(self, pk: int) -> CatalogOverride:
        return catalog_overrides.get_override(pk)

    def represent(self, obj: CatalogOverride) -> dict[str, Any]:
        return OverrideSerializer(obj).data

    def perform_create(self, values: dict[str, Any]) -> CatalogOverride:
        return catalog_overrides.create_override(actor=self.actor, **values)

    def perform_update(self, pk: int, changes: dict[str, Any]) -> CatalogOverride:
        return catalog_overrides.update_override(pk, changes, actor=self.actor)

    def perform_destroy(self, pk: int) -> None:
        catalog_overrides.delete_override(pk, actor=self.actor)
