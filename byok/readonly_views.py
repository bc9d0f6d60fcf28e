"""`get_only`: the decorator of the unauthenticated read-only endpoints (`/healthz`, `/readyz`, `/metrics`).

They take no form and no session, so CSRF does not apply; any method but GET
and HEAD gets a JSON 405 with `Allow`, like every other refusal of byok's.
"""

from __future__ import annotations

import functools

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

__all__ = ["get_only"]


def get_only(view):
    """Wrap an async view: GET and HEAD reach it, other methods get 405 JSON; CSRF-exempt."""

    @functools.wraps(view)
    async def wrapped(request: HttpRequest, *args, **kwargs) -> HttpResponse:
        if request.method not in ("GET", "HEAD"):
            return JsonResponse(
                {"code": "method_not_allowed", "message": f"{request.method} is not allowed here: use GET."},
                status=405,
                headers={"Allow": "GET, HEAD"},
            )
        return await view(request, *args, **kwargs)

    return csrf_exempt(wrapped)
