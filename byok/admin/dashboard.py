"""The admin's front page: the last 24 h, 7 d or 30 d at a glance, and the keys that cannot serve now.

``dashboard_context`` builds what ``admin/byok/dashboard.html`` shows: totals
(requests, error rate, p95 latency, tokens, spend), one SVG chart per figure
with a line per provider (byok.admin.charts), a table per provider, and the
keys cooling down, parked or invalid (byok.admin.keystate). The figures come
from the usage records (byok.admin.stats); a staff member without the
permission to view usage records sees the keys and the menus, not the figures.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from django.http import HttpRequest
from django.utils import timezone

from byok.admin import charts, formats, stats
from byok.admin.keystate import unavailable_keys

MAX_SERIES = charts.SERIES_COLOURS  # more providers than colours: the busiest ones are drawn, all are in the table

LABELS: dict[str, Callable[[datetime], str]] = {
    "24h": lambda t: t.strftime("%H:%M"),
    "7d": lambda t: t.strftime("%a %H:%M"),
    "30d": lambda t: t.strftime("%b %d"),
}


def _span(request: HttpRequest) -> stats.Span:
    return stats.SPANS.get(request.GET.get("span", ""), stats.SPANS[stats.DEFAULT_SPAN])


def _charts(found: stats.Usage) -> list[dict[str, Any]]:
    """One chart per figure: (title, how a bucket's Totals gives the value, how values read, the window's total)."""
    shown = found.providers[:MAX_SERIES]
    overall = found.overall
    figures: list[tuple[str, Callable[[stats.Totals], float | None], Callable[[float], str], str]] = [
        ("Requests", lambda t: t.requests, formats.compact, formats.thousands(overall.requests)),
        (
            "Errors",
            lambda t: t.errors,
            formats.compact,
            f"{formats.thousands(overall.errors)} ({formats.percent(overall.errors, overall.requests)})",
        ),
        ("p95 latency", lambda t: t.p95_ms, lambda v: f"{formats.compact(v)} ms", formats.ms(overall.p95_ms)),
        ("Tokens (in + out)", lambda t: t.tokens, formats.compact, formats.thousands(overall.tokens)),
        ("Spend", lambda t: float(t.spend), lambda v: f"${formats.compact(v)}", formats.usd(overall.spend)),
    ]
    label = LABELS[found.span.name]
    out = []
    for title, value, axis, total in figures:
        series = []
        for name in shown:
            cells = found.series.get(name, {})
            if title == "p95 latency":  # no successful request in a bucket: no value, a gap
                values = [cells[b].p95_ms if b in cells else None for b in found.buckets]
            else:
                values = [value(cells[b]) if b in cells else 0.0 for b in found.buckets]
            series.append(charts.Series(name, values))
        name = f"{title}, {found.span.label}, by provider"
        svg = charts.line_chart(name, found.buckets, series, label=label, value_format=axis)
        out.append({"title": title, "total": total, "svg": svg})
    return out


def _rows(found: stats.Usage) -> list[dict[str, Any]]:
    rows = []
    for n, name in enumerate(found.providers):
        t = found.totals[name]
        rows.append(
            {
                "name": name,
                "series": f"series-{n % charts.SERIES_COLOURS}" if n < MAX_SERIES else "",
                "requests": formats.thousands(t.requests),
                "errors": f"{formats.thousands(t.errors)} ({formats.percent(t.errors, t.requests)})",
                "p95": formats.ms(t.p95_ms),
                "tokens_in": formats.thousands(t.tokens_in),
                "tokens_out": formats.thousands(t.tokens_out),
                "spend": formats.usd(t.spend) if t.unpriced < t.requests else formats.MISSING,  # none priced
                "unpriced": formats.thousands(t.unpriced),
            }
        )
    return rows


def dashboard_context(request: HttpRequest, now: datetime | None = None) -> dict[str, Any]:
    """What the dashboard template shows, for ``request``'s span (``?span=24h|7d|30d``, default 24h)."""
    span = _span(request)
    keys, keys_error = unavailable_keys()
    context: dict[str, Any] = {
        "spans": [{"name": s.name, "label": s.label, "current": s is span} for s in stats.SPANS.values()],
        "span": span,
        "unavailable_keys": keys,
        "keys_error": keys_error,
        "can_view_usage": request.user.has_perm("byok.view_usagerecord"),
    }
    if not context["can_view_usage"]:
        return context
    found = stats.usage(span, now or timezone.now())
    overall = found.overall
    context.update(
        usage=found,
        charts=_charts(found),
        rows=_rows(found),
        more_providers=max(0, len(found.providers) - MAX_SERIES),
        summary=[
            ("Requests", formats.thousands(overall.requests)),
            ("Errors", f"{formats.thousands(overall.errors)} ({formats.percent(overall.errors, overall.requests)})"),
            ("p95 latency", formats.ms(overall.p95_ms)),
            ("Tokens", formats.thousands(overall.tokens)),
            ("Spend", formats.usd(overall.spend)),
        ],
    )
    return context
