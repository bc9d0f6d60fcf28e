"""Gateway keys at the chat front ends: which credential a request presents, and may it use this model.

    text = presented_key(request.META)          # `Authorization: Bearer byok_…` or `x-api-key: byok_…`
    user, grant = await lookup.verify(text)     # KeyRejected (401) otherwise
    await check_model(grant, req, provider, route)   # ModelNotAllowed (403) before any upstream call

A key in the URL's query string is never read. A bare model (default routing) is checked
as the name the router resolves it to (`<provider>/<model>`) as well as bare.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from byok.exceptions import ByokError
from byok.keys.grant import Grant, ModelNotAllowed
from byok.keys.secret import looks_like_key

__all__ = ["check_model", "presented_key", "requested_name"]


def _bearer(value: str) -> str | None:
    parts = value.split()
    if len(parts) == 2 and parts[0].lower() == "bearer":
        return parts[1]
    return None


def presented_key(meta: Mapping[str, Any]) -> str | None:
    """The gateway key in the request's headers (``byok_…``), or None when it presents none."""
    auth = meta.get("HTTP_AUTHORIZATION")
    if auth:
        token = _bearer(auth) if isinstance(auth, str) else None
        return token if token is not None and looks_like_key(token) else None
    api_key = meta.get("HTTP_X_API_KEY")
    if isinstance(api_key, str) and looks_like_key(api_key.strip()):
        return api_key.strip()
    return None


def requested_name(model: str, provider: str | None) -> str:
    """The name a request asks for: ``<provider>/<model>`` when a provider is named, else the model."""
    return f"{provider}/{model}" if provider and model and not model.startswith(f"{provider}/") else model


async def check_model(
    grant: Grant, model: str, provider: str | None, resolve: Callable[[], Awaitable[list[Any]]]
) -> None:
    """ModelNotAllowed unless the key and its team may use ``model`` (``resolve()``: the routed targets)."""
    name = requested_name(model, provider)
    if grant.allows(name):
        return
    if "/" not in name or provider:
        try:
            targets = await resolve()
        except ByokError:
            targets = []
        if targets and grant.allows(f"{targets[0].provider.name}/{targets[0].model}"):
            return
    raise ModelNotAllowed(f"This key may not use {name!r}." if name else "This key may not use the default model.")
