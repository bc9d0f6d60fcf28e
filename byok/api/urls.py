"""Routes of the management API, its OpenAPI schema and docs.

Paths are slash-less as the public contract names them; each is also served
with a trailing slash (the schema documents the slash-less one).
"""

from django.urls import path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

from byok.api import views_audit as audit
from byok.api import views_budgets as budgets
from byok.api import views_catalog as catalog
from byok.api import views_providers as providers


def _both(route: str, view, name: str) -> list:
    return [path(route, view, name=name), path(route + "/", view)]


urlpatterns = [
    path("api/schema", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs", SpectacularSwaggerView.as_view(url_name="schema"), name="docs"),
    *_both("api/providers/register", providers.ProviderRegisterView.as_view(), "api-provider-register"),
    *_both("api/providers", providers.ProviderListView.as_view(), "api-providers"),
    *_both("api/providers/<str:id>", providers.ProviderDetailView.as_view(), "api-provider"),
    *_both("api/providers/<str:id>/keys", providers.KeyCreateView.as_view(), "api-provider-keys"),
    *_both("api/providers/<str:id>/keys/<str:key_id>", providers.KeyRevokeView.as_view(), "api-provider-key"),
    *_both("api/providers/<str:id>/rotate-key", providers.RotateKeyView.as_view(), "api-provider-rotate-key"),
    *_both("api/providers/<str:id>/test", providers.ProviderTestView.as_view(), "api-provider-test"),
    *_both("api/audit-events", audit.AuditEventListView.as_view(), "api-audit-events"),
    *_both("api/usage", audit.UsageView.as_view(), "api-usage"),
    *_both("api/catalog", catalog.CatalogView.as_view(), "api-catalog"),
    *_both("api/catalog/overrides", catalog.OverrideListView.as_view(), "api-catalog-overrides"),
    *_both("api/catalog/overrides/<str:id>", catalog.OverrideDetailView.as_view(), "api-catalog-override"),
    *_both("api/budgets", budgets.BudgetListView.as_view(), "api-budgets"),
    *_both("api/budgets/<str:id>", budgets.BudgetDetailView.as_view(), "api-budget"),
]
