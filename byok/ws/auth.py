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

from typing import Any

from channels.auth import AuthMiddlewareStack
from channels.db import database_sync_to_async
from channels.middleware import BaseMiddleware
from channels.security.websocket import AllowedHostsOriginValidator

__all__ = ["ByokAuthMiddlewareStack", "HostOriginValidator", "TokenHeaderAuthMiddleware", "user_for_token"]

SCHEMES = (b"token", b"bearer")


def _user_for_token(key: str):
    from rest_framework.authtoken.models import Token

    token = Token.objects.select_related("user").filter(key=key).first()
    if token is None or not token.user.is_active:
        return None
    return token.user


async def user_for_token(key: Any):
    """The active user owning DRF token `key`, or None."""
    if not isinstance(key, str) or not key or len(key) > 128:
        return None
    return await database_sync_to_async(_user_for_token)(key)


def _authorization(scope) -> bytes | None:
    for name, value in scope.get("headers", ()):
        if name.lower() == b"authorization":
            return value
    return None


class TokenHeaderAuthMiddleware(BaseMiddleware):
    """Sets `scope["user"]` from an `Authorization: Token|Bearer <t>` header, when there is one."""

    async def __call__(self, scope, receive, send):
        header = _authorization(scope)
        if header is not None:
            parts = header.split()
            if parts and parts[0].lower() in SCHEMES:
                scope = dict(scope)
                user = None
                if len(parts) == 2:
                    try:
                        user = await user_for_token(parts[1].decode("ascii"))
                    except UnicodeDecodeError:
                        user = None
                if user is None:
                    scope["byok_auth_error"] = "The Authorization header's token is not valid."
                    # A bad explicit credential must not fall back to a session cookie.
                    from django.contrib.auth.models import AnonymousUser

                    scope["user"] = AnonymousUser()
                else:
                    scope["user"] = user
        return await super().__call__(scope, receive, send)


def ByokAuthMiddlewareStack(inner):  # noqa: N802 - named like Channels' AuthMiddlewareStack
    """Session cookie auth, then the `Authorization` header (which wins when present)."""
    return AuthMiddlewareStack(TokenHeaderAuthMiddleware(inner))


def HostOriginValidator(application):  # noqa: N802 - named like Channels' AllowedHostsOriginValidator
    """Channels' ALLOWED_HOSTS origin check, with handshakes that carry no Origin (non-browser clients) allowed."""
    validator = AllowedHostsOriginValidator(application)
    strict = validator.valid_origin

    def valid_origin(parsed_origin) -> bool:
        return parsed_origin is None or strict(parsed_origin)

    validator.valid_origin = valid_origin
    return validator
