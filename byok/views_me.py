"""The pages of an ordinary signed-in user: My keys (list, create once-shown, revoke) and My usage (charts, table).

Each page reads and changes only ``request.user``'s rows (`byok.selfservice`); another
user's key id answers 404 like one that does not exist. Forms are CSRF-protected (Django's
middleware); a new key's secret is on the answer to its POST alone, marked `no-store`.
"""

from __future__ import annotations

from datetime import UTC, datetime

from django.contrib.auth.decorators import login_required
from django.http import Http404
from django.shortcuts import redirect, render
from django.views.decorators.cache import never_cache
from django.views.decorators.http import require_POST

from byok.admin.charts import Series, line_chart
from byok.admin.dashboard import LABELS
from byok.admin.formats import compact
from byok.admin.stats import DEFAULT_SPAN, SPANS
from byok.audit import actor_from_request
from byok.exceptions import NotFound
from byok.selfservice.keys import OwnKeyForm, active_keys, create_own_key, max_keys, own_keys, revoke_own_key
from byok.selfservice.usage import own_usage

__all__ = ["my_keys", "my_usage", "revoke_key"]


def _keys_page(request, form: OwnKeyForm, status: int = 200):
    context = {
        "form": form,
        "keys": own_keys(request.user),
        "active": active_keys(request.user),
        "cap": max_keys(),
        "now": datetime.now(UTC),
    }
    return render(request, "byok/me_keys.html", context, status=status)


@never_cache
@login_required
def my_keys(request):
    """`/me/keys/`: the user's keys; POST creates one and answers with its secret, once (never stored, `no-store`)."""
    if request.method != "POST":
        return _keys_page(request, OwnKeyForm(request.user))
    form = OwnKeyForm(request.user, request.POST)
    made = create_own_key(request.user, form, actor=actor_from_request(request)) if form.is_valid() else None
    if made is None:
        return _keys_page(request, form, status=422)
    key, plain = made
    answer = render(request, "byok/me_key_created.html", {"key": key, "secret": plain})
    answer["Cache-Control"] = "no-store"
    return answer


@require_POST
@login_required
def revoke_key(request, pk: int):
    """`POST /me/keys/<id>/revoke/`: revoke one of the user's own keys (404 for anyone else's)."""
    try:
        revoke_own_key(request.user, pk, actor=actor_from_request(request))
    except NotFound:
        raise Http404("No such key.") from None
    return redirect("me-keys")


@never_cache
@login_required
def my_usage(request):
    """`/me/usage/?span=24h|7d|30d`: the user's requests, tokens and spend as charts, and a table by day/model/key."""
    span = SPANS.get(request.GET.get("span", DEFAULT_SPAN), SPANS[DEFAULT_SPAN])
    data = own_usage(request.user, span, datetime.now(UTC))
    buckets = [start for start, _ in data.points]
    label = LABELS[span.name]
    figures = [
        ("Requests", lambda t: t.requests, compact),
        ("Tokens (in + out)", lambda t: t.tokens, compact),
        ("Spend (USD)", lambda t: float(t.spend), lambda v: f"${compact(v)}"),
    ]
    charts = [
        {
            "caption": name,
            "svg": line_chart(
                f"{name}, {span.label}",
                buckets,
                [Series(name, [value(t) for _, t in data.points])],
                label=label,
                value_format=axis,
            ),
        }
        for name, value, axis in figures
    ]
    context = {
        "data": data,
        "charts": charts,
        "spans": [{"name": s.name, "label": s.label, "current": s is span} for s in SPANS.values()],
    }
    return render(request, "byok/me_usage.html", context)
