"""Who is on the other end of a websocket: session cookie, `Authorization` header, or a token in the first frame.

    application = HostOriginValidator(ByokAuthMiddlewareStack(URLRouter(websocket_urlpatterns)))

`ByokAuthMiddlewareStack` is Channels' `AuthMiddlewareStack` (session cookie
-> `scope["user"]`) with `TokenHeaderAuthMiddleware` inside it: an
`Authorization: Token <t>` or `Bearer <t>` header, when present, names the
user instead. A header with a token that does not check out leaves
`scope["user"]` anonymous and sets `scope["byok_auth_error"]`, so the
consumer can say why and close with 4401 rather than let the handshake fail
without a reason. The consumer checks first-frame tokens with
`user_for_token()`.

`HostOriginValidator` is Channels' `AllowedHostsOriginValidator` except that a
handshake without an `Origin` header is let through: browsers always send
one (so cross-site pages are still refused), while scripts and SDKs usually
do not, and they authenticate with a token, not ambient cookies.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator
from django.core.exceptions import SynchronousOnlyOperation
from rest_framework import exceptions
from rest_framework.authentication import TokenAuthentication

from byok import metrics
from byok.api.authentication import TOKEN_CACHE_TTL, BearerOrTokenAuthentication
from byok.keys.grant import Grant, KeyRejected
from byok.keys.lookup import verify as verify_key
from byok.keys.secret import looks_like_key
from byok.keys.tokens import stored_form

__all__ = [
    "ByokAuthMiddlewareStack",
    "Credential",
    "HostOriginValidator",
    "TokenHeaderAuthMiddleware",
    "user_for_token",
    "user_still_active",
]

SCHEMES = (b"token", b"bearer")


_token_auth = BearerOrTokenAuthentication()


def _check_token_uncached(key: str):
    try:
        return TokenAuthentication.authenticate_credentials(_token_auth, stored_form(key))[0]
    except exceptions.AuthenticationFailed:
        return None


def _check_token(key: str):
    try:
        return _token_auth.authenticate_credentials(key)[0]
    except exceptions.AuthenticationFailed:
        return None


async def user_for_token(key: Any):
    """The active user owning DRF token `key`, or None.

    Through the HTTP token cache (`byok.api.authentication`): a known token
    costs no query and no thread hop, and the cache's own refresh/TTL decide
    how stale the answer may be, the same for sockets as for HTTP requests.
    """
    if not isinstance(key, str) or not key or len(key) > 128:
        return None
    try:
        return _check_token(key)
    except SynchronousOnlyOperation:  # not cached: the lookup needs the database
        return await database_sync_to_async(_check_token)(key)


_active_users: dict[int, float] = {}  # user id -> when it was last seen active (session sockets)


def _user_is_active(user_id: int) -> bool:
    from django.contrib.auth import get_user_model

    return get_user_model().objects.filter(pk=user_id, is_active=True).exists()


async def user_still_active(user_id: int, *, fresh: bool = False) -> bool:
    """Whether a session-authenticated socket's user still exists and is active (cached for `TOKEN_CACHE_TTL`)."""
    now = time.monotonic()
    seen = _active_users.get(user_id)
    if not fresh and seen is not None and now - seen < TOKEN_CACHE_TTL:
        return True
    if not await database_sync_to_async(_user_is_active)(user_id):
        _active_users.pop(user_id, None)
        return False
    if len(_active_users) >= 10_000:
        _active_users.clear()
    _active_users[user_id] = now
    return True


@dataclass(frozen=True, slots=True)
class Credential:
    """What a socket authenticated with: a DRF token (header or `auth` frame), or a session's user."""

    token: str | None = None
    user_id: int | None = None
    gateway_key: str | None = None  # a `byok_…` key (byok.keys): re-verified, revocation included, per request

    async def holds(self, *, fresh: bool = False) -> bool:
        """Whether the credential still holds: False once the token is deleted, the key revoked or expired,
        or the user deactivated.

        Cached as HTTP tokens are; `fresh` asks the database (a notice said something changed for this user).
        """
        if self.gateway_key is not None:
            return await self.grant() is not None
        if self.token is not None:
            if fresh:
                return await database_sync_to_async(_check_token_uncached)(self.token) is not None
            return await user_for_token(self.token) is not None
        return self.user_id is not None and await user_still_active(self.user_id, fresh=fresh)

    async def grant(self) -> Grant | None:
        """The gateway key's grant while it holds (None for other credentials, or a key no longer valid)."""
        if self.gateway_key is None:
            return None
        try:
            return (await verify_key(self.gateway_key))[1]
        except KeyRejected:
            return None


async def user_for_key(key: str):
    """The owner of gateway key ``key`` while it is valid, else None."""
    try:
        return (await verify_key(key))[0]
    except KeyRejected as exc:
        metrics.rejected("websocket", exc.code)
        return None


def credential_for(user, token: str | None) -> Credential:
    """What a socket authenticated with: a gateway key, a DRF token, or (no token) a session's user."""
    if token is not None and looks_like_key(token):
        return Credential(gateway_key=token)
    return Credential(token=token) if token else Credential(user_id=user.pk)


def _header(scope, wanted: bytes) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == wanted:
            return value
    return None


def _authorization(scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return value
    return None


class TokenHeaderAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from an `Authorization: Token|Bearer <t>` header, when there is one."""

    async def __call__(self, scope, receive, send):
        header = _authorization(scope)
        api_key = _header(scope, b"x-api-key")
        if header is None and api_key is not None:  # a gateway key as Anthropic's clients send it
            header = b"Bearer " + api_key.strip()
        if header is not None:
            parts = header.split()
            if parts and parts[0].lower() in SCHEMES:
                scope = dict(scope)
                user = None
                if len(parts) == 2:
                    try:
                        text = parts[1].decode("ascii")
                        user = await (user_for_key(text) if looks_like_key(text) else user_for_token(text))
                    except UnicodeDecodeError:
                        user = None
                if user is None:
                    scope["byok_auth_error"] = "The Authorization header's token is not valid."
                    # A bad explicit credential must not fall back to a session cookie.
                    from django.contrib.auth.models import AnonymousUser

                    scope["user"] = AnonymousUser()
                else:
                    scope["user"] = user
                    scope["byok_token"] = parts[1].decode("ascii")  # the consumer re-checks it on every request
        return await super().__call__(scope, receive, send)


def ByokAuthMiddlewareStack(inner):
    """Session cookie auth, then the `Authorization` header (which wins when present)."""
    return AuthMiddlewareStack(TokenHeaderAuthMiddleware(inner))


def HostOriginValidator(application):
    """Channels' ALLOWED_HOSTS origin check, with handshakes that carry no Origin (non-browser clients) allowed."""
    validator = AllowedHostsOriginValidator(application)
    strict = validator.valid_origin

    def valid_origin(parsed_origin) -> bool:
        return parsed_origin is None or strict(parsed_origin)

    validator.valid_origin = valid_origin
    return validator
