"""Token and spend budgets per user or provider key: list (with this period's use), add, read, change, delete.

Every change goes through `byok.budgets` (validated, audited exactly once,
announced to every process) with the requesting user as the actor. The use
shown (`used_tokens`, `used_spend`, `exceeded`, `resets_at`) is read from the
shared state the handler counts spend in (Redis with `REDIS_URL`).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from django.urls import reverse
from drf_spectacular.utils import OpenApiResponse, extend_schema
from rest_framework.response import Response

from byok import budget_store as budgets
from byok.api.serializers_budgets import BudgetCreateSerializer, BudgetSerializer, BudgetUpdateSerializer
from byok.api.views import BODY_ERRORS, READ_ERRORS, StaffAPIView, error_responses, parse_id, path_id
from byok.api.views_providers import _valid
from byok.audit import actor_from_request
from byok.models import Budget

__all__ = ["BudgetDetailView", "BudgetListView"]

TAG = ["budgets"]
BUDGET_ID = path_id("id", "The budget's id.")


async def _read_rows(items: list[Budget]) -> list[dict[str, Any]]:
    from byok.gateway.handler import get_handler

    return await budgets.budget_rows(get_handler().state(), items)


def _rows(items: list[Budget]) -> list[dict[str, Any]]:
    return async_to_sync(_read_rows)(items) if items else []


def _row(budget: Budget) -> dict[str, Any]:
    return _rows([budgets.get_budget(budget.pk)])[0]  # as stored (amounts at their stored precision)


class BudgetListView(StaffAPIView):
    """Every budget with this period's use; add one."""

    @extend_schema(
        operation_id="budgets_list", tags=TAG, responses={200: BudgetSerializer(many=True), **error_responses(*READ_ERRORS)},
        summary="List budgets with this period's use (tokens, spend, exceeded, reset time)",
    )
    def get(self, request):
        return Response(_rows(list(Budget.objects.order_by("id"))))

    @extend_schema(
        operation_id="budgets_create", tags=TAG, request=BudgetCreateSerializer,
        responses={201: BudgetSerializer, **error_responses(*BODY_ERRORS, 409)},
        summary="Add a budget for one user (by id) or one provider key (by id)",
        description="Exactly one of `user` (a user's id) or `key` (a provider key's id); a token limit, a spend limit "
        "or both; one budget per user or key and period (409 otherwise). An unknown user or key is 422.",
    )
    def post(self, request):
        body = _valid(BudgetCreateSerializer, request)
        budget = budgets.create_budget(actor=actor_from_request(request), **body.budget_values())
        location = reverse("api-budget", kwargs={"id": str(budget.pk)})
        return Response(_row(budget), status=201, headers={"Location": location})


class BudgetDetailView(StaffAPIView):
    """One budget: read it (with this period's use), change it, or delete it. Every change is audited."""

    @extend_schema(
        operation_id="budgets_retrieve", tags=TAG, parameters=[BUDGET_ID],
        responses={200: BudgetSerializer, **error_responses(*READ_ERRORS, 404)}, summary="One budget with this period's use",
    )
    def get(self, request, id: str):
        return Response(_rows([budgets.get_budget(parse_id(id, "budget"))])[0])

    @extend_schema(
        operation_id="budgets_update", tags=TAG, parameters=[BUDGET_ID], request=BudgetUpdateSerializer,
        responses={200: BudgetSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
        summary="Change a budget's period, limits, enabled flag or note (only the fields given)",
    )
    def patch(self, request, id: str):
        budget_id = parse_id(id, "budget")
        body = _valid(BudgetUpdateSerializer, request)
        changes = body.budget_values()
        if changes:
            budget = budgets.update_budget(budget_id, changes, actor=actor_from_request(request))
        else:
            budget = budgets.get_budget(budget_id)  # nothing to change: no audit event, but still 404 when unknown
        return Response(_row(budget))

    @extend_schema(
        operation_id="budgets_destroy", tags=TAG, parameters=[BUDGET_ID],
        responses={204: OpenApiResponse(description="Deleted (audited)."), **error_responses(*READ_ERRORS, 404)},
        summary="Delete a budget",
    )
    def delete(self, request, id: str):
        budgets.delete_budget(parse_id(id, "budget"), actor=actor_from_request(request))
        return Response(status=204)
