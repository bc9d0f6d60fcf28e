"""Routes of the management API (one router over the viewsets, plus the usage report), its OpenAPI schema and docs.

Paths are slash-less as the public contract names them; each is also served
with a trailing slash (the schema documents the slash-less one).
"""

from django.urls import path, re_path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView
from rest_framework.routers import SimpleRouter

from byok.api.views_audit import AuditEventViewSet, UsageView
from byok.api.views_budgets import BudgetViewSet
from byok.api.views_catalog import CatalogViewSet, OverrideViewSet
from byok.api.views_keys import GatewayKeyViewSet, TeamViewSet
from byok.api.views_me import MeUsageView
from byok.api.views_providers import ProviderViewSet


class SlashOptionalRouter(SimpleRouter):
    """A router whose routes have no trailing slash, each also served with one."""

    def __init__(self) -> None:
        super().__init__(trailing_slash="")  # type: ignore[arg-type]  # DRF puts the string in its patterns

    def get_urls(self):
        urls = []
        for url in super().get_urls():
            regex = str(url.pattern)
            urls += [url, re_path(regex[:-1] + "/$" if regex.endswith("$") else regex + "/", url.callback)]
        return urls


router = SlashOptionalRouter()
# More specific prefixes first: `api/catalog/overrides` before `api/catalog`'s own routes.
router.register("api/providers", ProviderViewSet, basename="api-provider")
router.register("api/audit-events", AuditEventViewSet, basename="api-audit-event")
router.register("api/catalog/overrides", OverrideViewSet, basename="api-catalog-override")
router.register("api/catalog", CatalogViewSet, basename="api-catalog")
router.register("api/budgets", BudgetViewSet, basename="api-budget")
router.register("api/keys", GatewayKeyViewSet, basename="api-gateway-key")
router.register("api/teams", TeamViewSet, basename="api-team")

urlpatterns = [
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    path("api/usage", UsageView.as_view(), name="api-usage"),  # a report, not a collection
    path("api/usage/", UsageView.as_view()),
    path("api/me/usage", MeUsageView.as_view(), name="api-me-usage"),  # any user: their own records
    path("api/me/usage/", MeUsageView.as_view()),
    *router.urls,
]
