"""Query parameters of the audit trail and the usage report, validated like bodies (422 when wrong)."""

from __future__ import annotations

from django.db.models import Q, QuerySet
from rest_framework import serializers
from rest_framework.pagination import LimitOffsetPagination

from byok.api.strict_fields import StrictChoiceField
from byok.models import UsageRecord

__all__ = ["AuditPagination", "AuditQuerySerializer", "UsageQuerySerializer", "GROUP_BY"]

GROUP_BY = ("provider", "key", "user", "model", "day", "gateway_key", "team")


class AuditPagination(LimitOffsetPagination):
    """`?limit=&offset=`: 50 events a page by default, 500 at most."""

    default_limit = 50
    max_limit = 500


class _Query(serializers.Serializer):
    """Query parameters (a blank text filter counts as not given)."""

    def get_fields(self):
        fields = super().get_fields()
        for name in [n for n in fields if n.endswith("_")]:
            fields[name[:-1]] = fields.pop(name)  # `from_` -> `from` (a Python keyword)
        return fields

    def check_range(self, attrs, start: str, end: str):
        if attrs.get(start) and attrs.get(end) and attrs[start] > attrs[end]:
            raise serializers.ValidationError({end: [f"Must not be before `{start}`."]})
        return attrs


class AuditQuerySerializer(_Query):
    action = serializers.CharField(
        required=False,
        allow_blank=True,
        max_length=200,
        help_text="Exact action, or several separated by commas; `key.*` matches every action starting with `key.`.",
    )
    actor = serializers.CharField(required=False, allow_blank=True, max_length=150, help_text="Username, or `system`.")
    provider = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Provider name.")
    target_type = serializers.CharField(
        required=False, allow_blank=True, max_length=32, help_text="`provider`, `apikey`, ..."
    )
    key = serializers.CharField(required=False, allow_blank=True, max_length=16, help_text="Key fingerprint.")
    limit = serializers.IntegerField(
        required=False, min_value=1, max_value=AuditPagination.max_limit, help_text="Events per page (default 50)."
    )
    offset = serializers.IntegerField(required=False, min_value=0, max_value=10**12, help_text="Events to skip.")
    since = serializers.DateTimeField(required=False, help_text="Events at or after this time (ISO 8601).")
    until = serializers.DateTimeField(required=False, help_text="Events before this time (ISO 8601).")

    def validate(self, attrs):
        return self.check_range(attrs, "since", "until")

    def apply(self, qs: QuerySet) -> QuerySet:
        q = self.validated_data
        if q.get("action"):
            exact, prefixes = [], []
            for part in (p.strip() for p in q["action"].split(",")):
                if part.endswith("*"):
                    prefixes.append(part[:-1])
                elif part:
                    exact.append(part)
            cond = None
            for prefix in prefixes:
                cond = (cond | Q(action__startswith=prefix)) if cond is not None else Q(action__startswith=prefix)
            if exact:
                cond = (cond | Q(action__in=exact)) if cond is not None else Q(action__in=exact)
            if cond is not None:
                qs = qs.filter(cond)
        for param, column in (
            ("actor", "actor"),
            ("provider", "provider_name"),
            ("target_type", "target_type"),
            ("key", "key_fingerprint"),
        ):
            if q.get(param):
                qs = qs.filter(**{column: q[param]})
        if q.get("since"):
            qs = qs.filter(created_at__gte=q["since"])
        if q.get("until"):
            qs = qs.filter(created_at__lt=q["until"])
        return qs


class UsageQuerySerializer(_Query):
    group_by = StrictChoiceField(GROUP_BY, required=False, default="provider", help_text="How to group the rows.")
    from_ = serializers.DateTimeField(
        required=False, help_text="Requests at or after this time (ISO 8601; a date means its midnight UTC)."
    )
    to_ = serializers.DateTimeField(required=False, help_text="Requests before this time (ISO 8601).")
    provider = serializers.CharField(
        required=False, allow_blank=True, max_length=64, help_text="Only this provider (name)."
    )
    model = serializers.CharField(required=False, allow_blank=True, max_length=200, help_text="Only this model.")
    user = serializers.CharField(
        required=False, allow_blank=True, max_length=150, help_text="Only this user (username)."
    )
    key = serializers.CharField(
        required=False, allow_blank=True, max_length=16, help_text="Only this key (fingerprint)."
    )
    gateway_key = serializers.IntegerField(
        required=False, min_value=1, max_value=2**63 - 1, help_text="Only requests made with this gateway key (id)."
    )
    team = serializers.CharField(required=False, allow_blank=True, max_length=64, help_text="Only this team (name).")
    status = StrictChoiceField(UsageRecord.Status.values, required=False, help_text="Only requests with this outcome.")
    interface = serializers.CharField(
        required=False, allow_blank=True, max_length=16, help_text="Only this interface: rest, openai, websocket, test."
    )

    def validate(self, attrs):
        return self.check_range(attrs, "from", "to")

    def apply(self, qs: QuerySet) -> QuerySet:
        q = self.validated_data
        if q.get("from"):
            qs = qs.filter(created_at__gte=q["from"])
        if q.get("to"):
            qs = qs.filter(created_at__lt=q["to"])
        columns = {
            "provider": "provider_name",
            "model": "model",
            "user": "user__username",
            "key": "key_fingerprint",
            "gateway_key": "gateway_key_id",
            "team": "team__name",
            "status": "status",
            "interface": "interface",
        }
        for param, column in columns.items():
            if q.get(param):
                qs = qs.filter(**{column: q[param]})
        return qs
