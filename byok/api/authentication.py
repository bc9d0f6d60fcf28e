"""Token authentication that accepts both `Token <t>` and `Bearer <t>` (what the openai SDK sends).

Successful lookups are kept in process, so a chat request with a known token
touches neither the database nor a thread. Entries are kept fresh off the
request path: on an event loop, one task per loop (started by the first
lookup there) re-reads every cached token and its user in one query every
`TOKEN_REFRESH_INTERVAL` seconds, dropping tokens deleted and users
deactivated meanwhile, so other processes' changes arrive within that
interval. An entry that has not been refreshed for `TOKEN_CACHE_TTL` seconds
(no running loop, or the refresher failing) is looked up again on the
request. Deleting a token, or saving or deleting a user, drops the affected
entries at once in this process, and a refresh that read the database before
such a change does not bring the old data back.
"""

from __future__ import annotations

import asyncio
import contextvars
import copy
import logging
import threading
import time
from typing import Any

from asgiref.sync import sync_to_async
from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

from byok.keys.tokens import stored_form

__all__ = ["BearerOrTokenAuthentication", "clear_token_cache", "refresh_cached_tokens"]

log = logging.getLogger("byok.auth")

TOKEN_CACHE_TTL = 5.0
TOKEN_REFRESH_INTERVAL = 2.0
TOKEN_CACHE_MAX = 10_000
_REFRESH_BATCH = 500

_cache: dict[str, tuple[float, Any, Token]] = {}  # key -> (loaded at, user, token)
_lock = threading.Lock()
_generation = 0  # bumped by every local invalidation; a refresh read before one is not applied
_refreshers: dict[int, asyncio.Task] = {}  # one per event loop


def clear_token_cache() -> None:
    global _generation
    with _lock:
        _cache.clear()
        _generation += 1


def _forget_token(sender, instance, **kwargs) -> None:
    global _generation
    with _lock:
        _cache.pop(instance.key, None)
        _generation += 1


def _forget_user(sender, instance, **kwargs) -> None:
    global _generation
    with _lock:
        for key in [k for k, (_, user, _) in _cache.items() if user.pk == instance.pk]:
            del _cache[key]
        _generation += 1


def _reload(keys: list[str]) -> None:
    """Re-read `keys` and their users (synchronous ORM); refresh their entries, drop the ones now refused."""
    with _lock:
        generation = _generation
    loaded_at = time.monotonic()
    found: dict[str, Token] = {}
    for i in range(0, len(keys), _REFRESH_BATCH):
        for token in Token.objects.select_related("user").filter(key__in=keys[i : i + _REFRESH_BATCH]):
            found[token.key] = token
    with _lock:
        if generation != _generation:
            return  # changed here while reading: the next round reads again
        for key in keys:
            fresh = found.get(key)
            if fresh is None or not fresh.user.is_active:
                _cache.pop(key, None)
            elif key in _cache:
                _cache[key] = (loaded_at, fresh.user, fresh)


async def refresh_cached_tokens() -> None:
    """One refresh of every cached token, off the request path."""
    keys = list(_cache)
    if keys:
        await sync_to_async(_reload, thread_sensitive=True)(keys)


async def _refresh_forever() -> None:
    while True:
        await asyncio.sleep(TOKEN_REFRESH_INTERVAL)
        try:
            await refresh_cached_tokens()
        except Exception:  # the database may be away for a moment: entries then expire and requests look up
            log.warning("could not refresh the token cache", exc_info=True)


def _ensure_refresher() -> None:
    """Start this event loop's refresher task if it has none (nothing to do outside a loop)."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return
    task = _refreshers.get(id(loop))
    if task is not None and not task.done() and task.get_loop() is loop:
        return
    for key, other in list(_refreshers.items()):
        if other.done() or other.get_loop().is_closed():
            del _refreshers[key]
    # A fresh context: not the request's own (its asgiref executor ends with it).
    _refreshers[id(loop)] = loop.create_task(_refresh_forever(), name="byok-token-cache", context=contextvars.Context())


post_delete.connect(_forget_token, sender=Token, dispatch_uid="byok-token-cache-token")
post_delete.connect(_forget_user, sender=get_user_model(), dispatch_uid="byok-token-cache-user-delete")
post_save.connect(_forget_user, sender=get_user_model(), dispatch_uid="byok-token-cache-user-save")


class BearerOrTokenAuthentication(TokenAuthentication):
    """DRF's token auth, with `Bearer` accepted as a synonym of `Token`."""

    def authenticate(self, request):
        auth = get_authorization_header(request).split()
        if not auth or auth[0].lower() not in (b"token", b"bearer"):
            return None
        if len(auth) != 2:
            raise exceptions.AuthenticationFailed("Invalid token header: expected `Bearer <token>`.")
        try:
            token = auth[1].decode()
        except UnicodeError:
            raise exceptions.AuthenticationFailed("Invalid token header: the token is not valid text.") from None
        return self.authenticate_credentials(token)

    def authenticate_credentials(self, key):
        key = stored_form(key)  # tokens are stored hashed (byok.keys.tokens); so is the cache's key
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and now - hit[0] < TOKEN_CACHE_TTL:
            _ensure_refresher()
            return copy.copy(hit[1]), hit[2]
        user, token = super().authenticate_credentials(key)
        with _lock:
            if len(_cache) >= TOKEN_CACHE_MAX:
                _cache.clear()
            _cache[key] = (now, user, token)
        _ensure_refresher()
        return copy.copy(user), token

    def authenticate_header(self, request) -> str:
        return "Bearer"
