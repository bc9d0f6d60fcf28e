"""Who may use the management API: staff users only (anonymous 401, everyone else 403)."""

from __future__ import annotations

from rest_framework.permissions import BasePermission

__all__ = ["IsStaff"]


class IsStaff(BasePermission):
    """Authenticated, active staff users.

    An anonymous request fails this check before any other, and DRF answers
    it with 401 and a `WWW-Authenticate` challenge (the first authentication
    class names `Bearer`); an authenticated non-staff user gets 403.
    """

    message = "Only staff users may use the management API."

    def has_permission(self, request, view) -> bool:
        user = request.user
        return bool(user is not None and user.is_authenticated and user.is_active and user.is_staff)
