"""Token authentication that accepts both `Token <t>` and `Bearer <t>` (what the openai SDK sends)."""

from __future__ import annotations

from rest_framework.authentication import TokenAuthentication, get_authorization_header
from rest_framework import exceptions

__all__ = ["BearerOrTokenAuthentication"]


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

    def authenticate_header(self, request) -> str:
        return "Bearer"
