"""Django's stock middleware, run on the event loop instead of a thread hop per hook.

Django's `MiddlewareMixin` is async-capable, but in async mode it runs every
`process_request` / `process_response` (and Django adapts every
`process_view`) through `sync_to_async`: seven stock middlewares cost about
fifteen thread hops per request, the main cost of byok's chat path over HTTP.
Their hooks only touch the request and response objects (the session and the
user are loaded lazily), except where a hook may reach the database: a
session that must be saved, messages that must be stored, a CSRF secret kept
in the session. Those cases (and only those) still run in a thread, as Django
would run them.

Each class here is Django's, with the same settings and behaviour; only where
the hook runs changes. In sync mode (WSGI, Django's test client) they are
Django's classes unchanged.
"""

from __future__ import annotations

from asgiref.sync import sync_to_async
from django.conf import settings
from django.contrib.auth import middleware as auth
from django.contrib.messages import middleware as messages
from django.contrib.sessions import middleware as sessions
from django.middleware import clickjacking, common, csrf, security

__all__ = [
    "AuthenticationMiddleware",
    "ClickjackingMiddleware",
    "CommonMiddleware",
    "CsrfViewMiddleware",
    "MessageMiddleware",
    "SecurityMiddleware",
    "SessionMiddleware",
]


class InlineHooks:
    """`MiddlewareMixin.__acall__` without the hops: hooks run inline unless `response_needs_thread`."""

    def response_needs_thread(self, request, response) -> bool:
        return False

    async def __acall__(self, request):
        response = None
        if hasattr(self, "process_request"):
            response = self.process_request(request)
        response = response or await self.get_response(request)
        if hasattr(self, "process_response"):
            if self.response_needs_thread(request, response):
                response = await sync_to_async(self.process_response, thread_sensitive=True)(request, response)
            else:
                response = self.process_response(request, response)
        return response


class SecurityMiddleware(InlineHooks, security.SecurityMiddleware):
    pass


class CommonMiddleware(InlineHooks, common.CommonMiddleware):
    pass


class ClickjackingMiddleware(InlineHooks, clickjacking.XFrameOptionsMiddleware):
    pass


class AuthenticationMiddleware(InlineHooks, auth.AuthenticationMiddleware):
    """Sets the lazy `request.user` / `request.auser`; nothing is read until a view asks."""


class SessionMiddleware(InlineHooks, sessions.SessionMiddleware):
    """Inline unless the session must be saved (a database write)."""

    def response_needs_thread(self, request, response) -> bool:
        session = getattr(request, "session", None)
        if session is None:
            return False
        return (session.modified or settings.SESSION_SAVE_EVERY_REQUEST) and not session.is_empty()


class MessageMiddleware(InlineHooks, messages.MessageMiddleware):
    """Inline unless messages were read or added (storing them may load the session)."""

    def response_needs_thread(self, request, response) -> bool:
        storage = getattr(request, "_messages", None)
        return storage is not None and (storage.used or storage.added_new)


class CsrfViewMiddleware(InlineHooks, csrf.CsrfViewMiddleware):
    """In async mode `process_view` is a coroutine, so Django does not adapt it through a thread."""

    def __init__(self, get_response) -> None:
        super().__init__(get_response)
        if self.async_mode:
            self.process_view = self._aprocess_view  # type: ignore[method-assign,assignment]  # Django looks the hook up on the instance

    async def _aprocess_view(self, request, callback, callback_args, callback_kwargs):
        if settings.CSRF_USE_SESSIONS and not getattr(callback, "csrf_exempt", False):
            hook = sync_to_async(super().process_view, thread_sensitive=True)
            return await hook(request, callback, callback_args, callback_kwargs)
        return super().process_view(request, callback, callback_args, callback_kwargs)

    def response_needs_thread(self, request, response) -> bool:
        return settings.CSRF_USE_SESSIONS
