"""byok's admin site: its name and version in the header and title, and the dashboard as its front page.

Installed through ``byok.apps.ByokAdminConfig`` (in ``INSTALLED_APPS`` in
place of ``django.contrib.admin``), so ``django.contrib.admin.site`` *is* this
site and every ``@admin.register`` in byok/admin/ lands on it. It lives outside
the byok.admin package on purpose: the first use of ``admin.site`` imports this
module, and importing the package there would register byok's pages on a second,
discarded site while the first is still being built.
"""

from __future__ import annotations

from django.contrib import admin
from django.contrib.auth.decorators import login_not_required
from django.template.response import TemplateResponse

import byok


class ByokAdminSite(admin.AdminSite):
    """The stock admin site, titled byok, whose index is the dashboard (byok.admin.dashboard)."""

    site_header = f"byok {byok.__version__}"
    site_title = "byok admin"
    index_title = "Dashboard"
    site_url = None  # no "View site": the header links to the chat page and the API docs instead
    index_template = "admin/byok/dashboard.html"
    # No menu column on every page: list pages get its 300 px (they fit 1280 px with their filters);
    # the dashboard lists every page, and the breadcrumbs lead back to it.
    enable_nav_sidebar = False

    @login_not_required
    def login(self, request, extra_context=None):
        """The admin's sign-in, with /login/'s limit on failed attempts (byok.login_throttle)."""
        from byok.login_throttle import throttled

        return throttled(super().login)(request, extra_context)

    def index(self, request, extra_context=None) -> TemplateResponse:
        from byok.admin.dashboard import dashboard_context

        return super().index(request, {**dashboard_context(request), **(extra_context or {})})
