"""Token authentication that accepts both `Token <t>` and `Bearer <t>` (what the openai SDK sends).

Successful lookups are kept in process for a few seconds (`TOKEN_CACHE_TTL`),
so a burst of requests with one token costs one query. Deleting a token, or
saving or deleting a user, drops the affected entries at once in this
process; other processes notice within the TTL.
"""

from __future__ import annotations

import copy
import threading
import time

from django.contrib.auth import get_user_model
from django.db.models.signals import post_delete, post_save
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework.authtoken.models import Token

__all__ = ["BearerOrTokenAuthentication", "clear_token_cache"]

TOKEN_CACHE_TTL = 5.0
TOKEN_CACHE_MAX = 10_000

_cache: dict[str, tuple[float, object, Token]] = {}
_lock = threading.Lock()


def clear_token_cache() -> None:
    with _lock:
        _cache.clear()


def _forget_token(sender, instance, **kwargs) -> None:
    with _lock:
        _cache.pop(instance.key, None)


def _forget_user(sender, instance, **kwargs) -> None:
    with _lock:
        for key in [k for k, (_, user, _) in _cache.items() if user.pk == instance.pk]:
            del _cache[key]


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
        now = time.monotonic()
        hit = _cache.get(key)
        if hit is not None and hit[0] > now:
            return copy.copy(hit[1]), hit[2]
        if "\x00" in key:  # PostgreSQL refuses NUL in a query parameter
            raise exceptions.AuthenticationFailed("Invalid token.")
        user, token = super().authenticate_credentials(key)
        with _lock:
            if len(_cache) >= TOKEN_CACHE_MAX:
                _cache.clear()
            _cache[key] = (now + TOKEN_CACHE_TTL, user, token)
        return copy.copy(user), token

    def authenticate_header(self, request) -> str:
        return "Bearer"
