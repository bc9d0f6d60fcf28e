"""The chat page: a template and a little plain JavaScript over the `/ws/chat/` websocket."""

from __future__ import annotations

from django.contrib.auth.decorators import login_required
from django.db.models import Count, Q
from django.shortcuts import render

from byok.models import ApiKey, Provider

__all__ = ["chat_page"]


def _providers() -> list[dict]:
    """Enabled providers, by priority, with their default model and whether a key can serve them."""
    rows = (
        Provider.objects.filter(enabled=True)
        .annotate(active_keys=Count("keys", filter=Q(keys__status=ApiKey.Status.ACTIVE)))
        .order_by("priority", "name")
    )
    return [
        {
            "name": p.name,
            "kind": p.kind,
            "default_model": p.default_model,
            "is_default": p.is_default,
            "usable": p.active_keys > 0,
        }
        for p in rows
    ]


@login_required
def chat_page(request):
    """`/chat/`: pick a provider and model, chat, watch tokens stream in, cancel. Login required (the socket uses the
    session).
    """
    providers = _providers()
    return render(request, "byok/chat.html", {"providers": providers, "ws_path": "/ws/chat/"})
