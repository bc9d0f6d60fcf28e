"""byok's URLs: health probes, Prometheus metrics, the admin, the management API, the chat
APIs (byok's and OpenAI's shape), the chat page.
"""

from django.contrib import admin
from django.urls import include, path

from byok import exporter, health

urlpatterns = [
    path("healthz", health.healthz, name="healthz"),  # no authentication: load balancers, orchestrators
    path("readyz", health.readyz, name="readyz"),
    path("metrics", exporter.metrics_view, name="metrics"),  # loopback or BYOK_METRICS_TOKEN (byok.exporter)
    path("admin/", admin.site.urls),
    path("", include("byok.api.urls")),  # management API, schema, docs
    path("", include("byok.api.chat_urls")),  # /v1/chat/completions, /v1/models, /api/chat
    path("", include("byok.pages_urls")),  # /chat/
]
