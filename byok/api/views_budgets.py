"""Token and spend budgets per user or provider key: list (with this period's use), add, read, change, delete.

Every change goes through `byok.budget_store` (validated, audited exactly once,
announced to every process) with the requesting user as the actor. The use
shown (`used_tokens`, `used_spend`, `exceeded`, `resets_at`) is read from the
shared state the handler counts spend in (Redis with `REDIS_URL`).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.response import Response

from byok import budget_store
from byok.api.serializers_budgets import BudgetCreateSerializer, BudgetSerializer, BudgetUpdateSerializer
from byok.api.views import BODY_ERRORS, READ_ERRORS, AuditedViewSet, CreateMixin, error_responses, path_id
from byok.models import Budget

__all__ = ["BudgetViewSet"]

TAG = ["budgets"]
BUDGET_ID = path_id("id", "The budget's id.")


async def _read_rows(items: list[Budget]) -> list[dict[str, Any]]:
    from byok.gateway.handler import get_handler  # the shared state the handler counts in

    return await budget_store.budget_rows(get_handler().state(), items)


def _rows(items: list[Budget]) -> list[dict[str, Any]]:
    return async_to_sync(_read_rows)(items) if items else []


@extend_schema_view(
    list=extend_schema(
        operation_id="budgets_list",
        description="Every budget with this period's use.",
        tags=TAG,
        responses={200: BudgetSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List budgets with this period's use (tokens, spend, exceeded, reset time)",
    ),
    create=extend_schema(
        operation_id="budgets_create",
        tags=TAG,
        request=BudgetCreateSerializer,
        responses={201: BudgetSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Add a budget for one user (by id) or one provider key (by id)",
        description="Exactly one of `user` (a user's id) or `key` (a provider key's id); a token limit, a spend limit "
        "or both; one budget per user or key and period (409 otherwise). An unknown user or key is 422.",
    ),
    retrieve=extend_schema(
        operation_id="budgets_retrieve",
        description="One budget with this period's use.",
        tags=TAG,
        parameters=[BUDGET_ID],
        responses={200: BudgetSerializer, **error_responses(*READ_ERRORS, 404)},
        summary="One budget with this period's use",
    ),
    partial_update=extend_schema(
        operation_id="budgets_update",
        description="Change a budget; the change is audited once (no fields: no change, no event).",
        tags=TAG,
        parameters=[BUDGET_ID],
        request=BudgetUpdateSerializer,
        responses={200: BudgetSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a budget's period, limits, enabled flag or note (only the fields given)",
    ),
    destroy=extend_schema(
        operation_id="budgets_destroy",
        description="Delete a budget (one audit event); its counters expire with their period.",
        tags=TAG,
        parameters=[BUDGET_ID],
        responses={204: OpenApiResponse(description="Deleted (audited)."), **error_responses(*READ_ERRORS, 404)},
        summary="Delete a budget",
    ),
)
class BudgetViewSet(CreateMixin, AuditedViewSet):
    """Every budget with this period's use; add, read, change or delete one. Every change is audited."""

    noun = "budget"
    create_serializer = BudgetCreateSerializer
    update_serializer = BudgetUpdateSerializer

    def list(self, request):
        return Response(_rows(list(Budget.objects.order_by("id"))))

    def fetch(self, pk: int) -> Budget:
        return budget_store.get_budget(pk)

    def represent(self, budget: Budget) -> dict[str, Any]:
        return _rows([budget_store.get_budget(budget.pk)])[0]  # as stored (amounts at their stored precision)

    def perform_create(self, values: dict[str, Any]) -> Budget:
        return budget_store.create_budget(actor=self.actor, **values)

    def perform_update(self, pk: int, changes: dict[str, Any]) -> Budget:
        return budget_store.update_budget(pk, changes, actor=self.actor)

    def perform_destroy(self, pk: int) -> None:
        budget_store.delete_budget(pk, actor=self.actor)
