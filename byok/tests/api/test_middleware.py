"""BodySizeLimitMiddleware: 413 from Content-Length before any view, in JSON, sync and async."""

from __future__ import annotations

import json

import pytest
from django.http import HttpResponse
from django.test import AsyncRequestFactory, RequestFactory

from byok.api.middleware import BodySizeLimitMiddleware

LIMIT = 100


@pytest.fixture(autouse=True)
def small_limit(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = LIMIT


def view(request):
    return HttpResponse("reached")


async def async_view(request):
    return HttpResponse("reached")


@pytest.mark.parametrize(
    "path, length, status",
    [
        ("/api/providers/register", str(LIMIT), 200),
        ("/api/providers/register", str(LIMIT + 1), 413),
        ("/v1/chat/completions", str(10**9), 413),
        ("/api/chat", "abc", 400),
        ("/api/chat", "-5", 400),
        ("/api/chat", "", 200),
    ],
)
def test_sync(path, length, status):
    request = RequestFactory().post(path, data=b"", content_type="application/json")
    request.META["CONTENT_LENGTH"] = length
    response = BodySizeLimitMiddleware(view)(request)
    assert response.status_code == status
    if status == 200:
        assert response.content == b"reached"
    elif path.startswith("/v1/"):
        error = json.loads(response.content)["error"]
        assert error["code"] == "payload_too_large" and error["type"] == "invalid_request_error" and error["message"]
    else:
        body = json.loads(response.content)
        assert body["code"] in ("payload_too_large", "bad_request") and body["message"]


async def test_async_keeps_views_async():
    middleware = BodySizeLimitMiddleware(async_view)
    ok = AsyncRequestFactory().post("/v1/chat/completions", data=b"{}", content_type="application/json")
    assert (await middleware(ok)).content == b"reached"
    big = AsyncRequestFactory().post("/v1/chat/completions", data=b"x" * (LIMIT + 1), content_type="application/json")
    assert (await middleware(big)).status_code == 413


def test_no_limit_configured(settings):
    settings.DATA_UPLOAD_MAX_MEMORY_SIZE = None
    request = RequestFactory().post("/api/chat", data=b"x" * 1000, content_type="application/json")
    assert BodySizeLimitMiddleware(view)(request).status_code == 200


@pytest.mark.django_db
def test_installed_for_every_path(client):
    response = client.post("/admin/login/", data=b"x" * (LIMIT + 1), content_type="application/json")
    assert response.status_code == 413 and json.loads(response.content)["code"] == "payload_too_large"
