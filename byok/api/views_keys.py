"""`/api/keys` and `/api/teams`: staff create, list, read, change and revoke gateway keys and teams.

Every change goes through `byok.keys.store` (validated, audited exactly once with the
staff user and address, effective in every process before the answer). `POST /api/keys`
answers 201 with the secret once (`key`, with `Cache-Control: no-store`); nothing shows
it again. `DELETE /api/keys/{id}` revokes (the key then answers 401 `key_revoked`).
"""

from __future__ import annotations

from typing import Any

from asgiref.sync import async_to_sync
from drf_spectacular.utils import OpenApiResponse, extend_schema, extend_schema_view
from rest_framework.response import Response

from byok import budget_store
from byok.api.serializers_keys import (
    GatewayKeyCreateSerializer,
    GatewayKeySerializer,
    GatewayKeyUpdateSerializer,
    TeamCreateSerializer,
    TeamSerializer,
    TeamUpdateSerializer,
    key_view,
    team_view,
)
from byok.api.views import BODY_ERRORS, READ_ERRORS, AuditedViewSet, CreateMixin, error_responses, path_id
from byok.keys import store
from byok.models import GatewayKey, Team
from byok.state import StateUnavailable

__all__ = ["GatewayKeyViewSet", "TeamViewSet"]

KEY_ID = path_id("id", "The gateway key's id.")


def with_use(views: list[dict[str, Any]], prefix: str) -> list[dict[str, Any]]:
    """Each view's budget with this period's use from the shared state (spent, reserved by requests in flight,
    remaining; counter scope ``<prefix>:<id>``); without them when the shared state is unreachable."""
    budgets = [(view["id"], view["budget"]) for view in views if view.get("budget")]

    async def read() -> None:
        from byok.gateway.handler import get_handler  # the shared state the handler counts in

        state = get_handler().state()
        for pk, budget in budgets:
            use = await budget_store.figures(
                state, f"{prefix}:{pk}", budget["period"], budget["tokens"], budget["spend_usd"]
            )
            budget.update(use)

    if budgets:
        try:
            async_to_sync(read)()
        except StateUnavailable:
            pass
    return views


TEAM_ID = path_id("id", "The team's id.")


@extend_schema_view(
    list=extend_schema(
        operation_id="keys_list",
        tags=["gateway keys"],
        summary="List gateway keys (prefixes only, never secrets)",
        description="Every gateway key, newest first, revoked ones included.",
        responses={200: GatewayKeySerializer(many=True), **error_responses(*READ_ERRORS)},
    ),
    create=extend_schema(
        operation_id="keys_create",
        tags=["gateway keys"],
        summary="Create a gateway key; the answer holds its secret (`key`) once",
        description="`user` (the owner) or `team` or both (the user must be a member; a team key without a user is "
        "owned by the staff user making it). Unknown user or team, or a model pattern no configured provider can "
        "match: 422 naming the field. The secret is in this answer only.",
        request=GatewayKeyCreateSerializer,
        responses={201: GatewayKeySerializer, **error_responses(*BODY_ERRORS)},
    ),
    retrieve=extend_schema(
        operation_id="keys_retrieve",
        tags=["gateway keys"],
        summary="One gateway key",
        description="The key's stored view (never its secret).",
        parameters=[KEY_ID],
        responses={200: GatewayKeySerializer, **error_responses(*READ_ERRORS, 404)},
    ),
    partial_update=extend_schema(
        operation_id="keys_update",
        tags=["gateway keys"],
        summary="Change a key's name, models, limits, budget, team or expiry",
        description="Only the fields given; effective in every process before the answer. A revoked key is 409.",
        parameters=[KEY_ID],
        request=GatewayKeyUpdateSerializer,
        responses={200: GatewayKeySerializer, **error_responses(*BODY_ERRORS, 404, 409)},
    ),
    destroy=extend_schema(
        operation_id="keys_revoke",
        tags=["gateway keys"],
        summary="Revoke a gateway key",
        description="From the answer on, every process refuses it with 401 `key_revoked`. Revoking twice is a no-op.",
        parameters=[KEY_ID],
        responses={204: OpenApiResponse(description="Revoked (audited)."), **error_responses(*READ_ERRORS, 404)},
    ),
)
class GatewayKeyViewSet(CreateMixin, AuditedViewSet):
    """Gateway keys: create (secret shown once), list, read, change, revoke."""

    noun = "gateway key"
    create_serializer = GatewayKeyCreateSerializer
    update_serializer = GatewayKeyUpdateSerializer

    def list(self, request):
        return Response(with_use([key_view(k) for k in GatewayKey.objects.select_related("user", "team")], "gwkey"))

    def create(self, request):
        key, plain = store.create_key(actor=self.actor, **self.valid(self.create_serializer).service_values())
        response = self.created(key)
        response.data = {"key": plain, **response.data}
        response["Cache-Control"] = "no-store"
        return response

    def fetch(self, pk: int) -> GatewayKey:
        return store.get_key(pk)

    def represent(self, key: GatewayKey) -> dict[str, Any]:
        return with_use([key_view(key)], "gwkey")[0]

    def perform_update(self, pk: int, changes: dict[str, Any]) -> GatewayKey:
        return store.update_key(pk, changes, actor=self.actor)

    def perform_destroy(self, pk: int) -> None:
        store.revoke_key(pk, actor=self.actor)


@extend_schema_view(
    list=extend_schema(
        operation_id="teams_list",
        tags=["teams"],
        summary="List teams",
        description="Every team with its members, limits and how many keys it has.",
        responses={200: TeamSerializer(many=True), **error_responses(*READ_ERRORS)},
    ),
    create=extend_schema(
        operation_id="teams_create",
        tags=["teams"],
        summary="Create a team (members, allowed models, limits, budget)",
        description="A duplicate name is 409; an unknown member or an unreachable model pattern is 422.",
        request=TeamCreateSerializer,
        responses={201: TeamSerializer, **error_responses(*BODY_ERRORS, 409)},
    ),
    retrieve=extend_schema(
        operation_id="teams_retrieve",
        tags=["teams"],
        summary="One team",
        description="The team with its members and limits.",
        parameters=[TEAM_ID],
        responses={200: TeamSerializer, **error_responses(*READ_ERRORS, 404)},
    ),
    partial_update=extend_schema(
        operation_id="teams_update",
        tags=["teams"],
        summary="Change a team (members replace the list)",
        description="Only the fields given; its keys follow at once in every process.",
        parameters=[TEAM_ID],
        request=TeamUpdateSerializer,
        responses={200: TeamSerializer, **error_responses(*BODY_ERRORS, 404, 409)},
    ),
    destroy=extend_schema(
        operation_id="teams_destroy",
        tags=["teams"],
        summary="Delete a team with no unrevoked keys",
        description="409 while the team has keys not revoked.",
        parameters=[TEAM_ID],
        responses={204: OpenApiResponse(description="Deleted (audited)."), **error_responses(*READ_ERRORS, 404, 409)},
    ),
)
class TeamViewSet(CreateMixin, AuditedViewSet):
    """Teams: members, allowed models, limits and budget shared by their keys."""

    noun = "team"
    create_serializer = TeamCreateSerializer
    update_serializer = TeamUpdateSerializer

    def list(self, request):
        return Response(with_use([team_view(t) for t in Team.objects.prefetch_related("members")], "team"))

    def fetch(self, pk: int) -> Team:
        return store.get_team(pk)

    def represent(self, team: Team) -> dict[str, Any]:
        return with_use([team_view(team)], "team")[0]

    def perform_create(self, values: dict[str, Any]) -> Team:
        return store.create_team(actor=self.actor, **values)

    def perform_update(self, pk: int, changes: dict[str, Any]) -> Team:
        return store.update_team(pk, changes, actor=self.actor)

    def perform_destroy(self, pk: int) -> None:
        store.delete_team(pk, actor=self.actor)
