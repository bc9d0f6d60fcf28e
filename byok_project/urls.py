"""byok's URLs: the admin, the management and chat APIs, the OpenAI-compatible API, the chat page."""

from django.contrib import admin
from django.urls import include, path

urlpatterns = [
    path("admin/", admin.site.urls),
    path("", include("byok.api.urls")),
]
