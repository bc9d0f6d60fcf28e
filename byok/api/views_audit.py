"""The audit trail (paginated, filterable) and the usage report (totals, latency percentiles, errors)."""

from __future__ import annotations

from array import array
from collections import Counter
from datetime import UTC
from decimal import Decimal
from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework.mixins import ListModelMixin
from rest_framework.response import Response
from rest_framework.viewsets import GenericViewSet

from byok.api.filters import AuditPagination, AuditQuerySerializer, UsageQuerySerializer
from byok.api.serializers import AuditEventSerializer, UsageReportSerializer
from byok.api.views import READ_ERRORS, StaffAPIView, StaffOnly, error_responses
from byok.models import AuditEvent, UsageRecord

__all__ = ["AuditEventViewSet", "UsageView", "percentile", "usage_report"]


class AuditEventViewSet(StaffOnly, ListModelMixin, GenericViewSet):
    """Every change to providers and keys, newest first: who, what, when, from where (never a secret)."""

    serializer_class = AuditEventSerializer
    pagination_class = AuditPagination

    def get_queryset(self):
        query = AuditQuerySerializer(data=self.request.query_params.dict())
        query.is_valid(raise_exception=True)
        return query.apply(AuditEvent.objects.all())

    @extend_schema(
        operation_id="audit_events_list",
        tags=["audit"],
        parameters=[AuditQuerySerializer],
        responses={200: AuditEventSerializer(many=True), **error_responses(*READ_ERRORS, 422)},
        summary="The audit trail, newest first",
    )
    def list(self, request, *args, **kwargs):
        return super().list(request, *args, **kwargs)


def percentile(ordered, p: float) -> float | None:
    """The p-th percentile (0..100) of sorted values by linear interpolation, as PostgreSQL's percentile_cont."""
    n = len(ordered)
    if n == 0:
        return None
    rank = (n - 1) * p / 100
    low = int(rank)
    high = min(low + 1, n - 1)
    return float(ordered[low] + (ordered[high] - ordered[low]) * (rank - low))


def _percentiles(values) -> dict[str, float | None]:
    ordered = sorted(values)
    return {
        "p50": percentile(ordered, 50),
        "p95": percentile(ordered, 95),
        "p99": percentile(ordered, 99),
        "mean": (sum(ordered) / len(ordered)) if ordered else None,
        "max": float(ordered[-1]) if ordered else None,
    }


class _Stats:
    """Running totals of one group."""

    __slots__ = (
        "requests",
        "ok",
        "errors",
        "cancelled",
        "codes",
        "attempts",
        "tokens_in",
        "tokens_out",
        "cost",
        "spend",
        "unpriced",
        "latency",
        "ttft",
        "extra",
    )

    def __init__(self, extra: dict[str, Any] | None = None) -> None:
        self.requests = self.ok = self.errors = self.cancelled = self.attempts = self.tokens_in = self.tokens_out = 0
        self.codes: Counter[str] = Counter()
        self.cost: Decimal | None = None
        self.spend = Decimal(0)
        self.unpriced = 0
        self.latency = array("d")
        self.ttft = array("d")
        self.extra = extra or {}

    def add(self, status, error_code, attempts, tokens_in, tokens_out, latency, ttft, cost) -> None:
        self.requests += 1
        if status == UsageRecord.Status.OK:
            self.ok += 1
        elif status == UsageRecord.Status.CANCELLED:
            self.cancelled += 1
        else:
            self.errors += 1
            self.codes[error_code or "unknown"] += 1
        self.attempts += attempts
        self.tokens_in += tokens_in
        self.tokens_out += tokens_out
        self.latency.append(latency)
        if ttft is not None:
            self.ttft.append(ttft)
        if cost is not None:
            self.cost = cost if self.cost is None else self.cost + cost
            self.spend += cost
        elif tokens_in or tokens_out:
            self.unpriced += 1  # tokens used at a price the catalog does not know

    def as_dict(self) -> dict[str, Any]:
        return {
            **self.extra,
            "requests": self.requests,
            "ok": self.ok,
            "errors": self.errors,
            "cancelled": self.cancelled,
            "error_codes": dict(sorted(self.codes.items())),
            "attempts": self.attempts,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": None if self.cost is None else f"{self.cost:.8f}",
            "spend": f"{self.spend:.8f}",
            "unpriced": self.unpriced,
            "latency_ms": _percentiles(self.latency),
            "ttft_ms": _percentiles(self.ttft),
        }


_GROUP_COLUMNS = {
    "provider": ("provider_name",),
    "key": ("key_fingerprint", "provider_name", "key_hint"),
    "user": ("user__username",),
    "model": ("model",),
    "day": ("created_at",),
    "gateway_key": ("gateway_key_id", "gateway_key__lookup", "gateway_key__name"),  # shown as byok_<lookup>…
    "team": ("team__name",),
}
_VALUE_COLUMNS = ("status", "error_code", "attempts", "tokens_in", "tokens_out", "latency_ms", "ttft_ms", "cost")


def usage_report(qs, group_by: str) -> dict[str, Any]:
    """Totals and per-group statistics of the usage rows in `qs`, in one pass over them.

    Percentiles are computed here rather than in SQL so that SQLite and
    PostgreSQL give the same answer.
    """
    columns = _GROUP_COLUMNS[group_by]
    totals = _Stats()
    groups: dict[Any, _Stats] = {}
    for row in qs.order_by().values_list(*columns, *_VALUE_COLUMNS).iterator(chunk_size=2000):
        head, values = row[: len(columns)], row[len(columns) :]
        if group_by == "day":
            group = head[0].astimezone(UTC).date().isoformat()
        else:
            group = head[0] or None  # rows without a key, user or model
        stats = groups.get(group)
        if stats is None:
            extra = {"key": group}
            if group_by == "key":
                extra.update(provider=head[1], key_hint=head[2])
            elif group_by == "gateway_key":
                prefix = f"byok_{head[1]}\u2026" if group else None
                extra.update(key=prefix, name=head[2], gateway_key_id=group)
            stats = groups[group] = _Stats(extra)
        stats.add(*values)
        totals.add(*values)
    ordered = sorted(groups.values(), key=lambda s: (s.extra["key"] is None, s.extra["key"] or ""))
    return {"group_by": group_by, "totals": totals.as_dict(), "groups": [s.as_dict() for s in ordered]}


class UsageView(StaffAPIView):
    """Requests, tokens, cost, latency percentiles (p50/p95/p99) and
    errors, in total and per group, over a time range.
    """

    @extend_schema(
        operation_id="usage_report",
        tags=["usage"],
        parameters=[UsageQuerySerializer],
        responses={200: UsageReportSerializer, **error_responses(*READ_ERRORS, 422)},
        summary="Usage and latency: totals, p50/p95/p99 and error counts per provider, key, user, model or day",
    )
    def get(self, request):
        query = UsageQuerySerializer(data=request.query_params.dict())
        query.is_valid(raise_exception=True)
        q = query.validated_data
        report = usage_report(query.apply(UsageRecord.objects.all()), q["group_by"])
        return Response({**report, "from": q.get("from"), "to": q.get("to")})
