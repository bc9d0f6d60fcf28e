"""/api/schema and /api/docs: the OpenAPI description of the management API is complete and truthful."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

OPERATIONS = {
    ("/api/providers/register", "post"): "201",
    ("/api/providers", "get"): "200",
    ("/api/providers/{id}", "get"): "200",
    ("/api/providers/{id}", "patch"): "200",
    ("/api/providers/{id}", "delete"): "204",
    ("/api/providers/{id}/keys", "post"): "201",
    ("/api/providers/{id}/keys/{key_id}", "delete"): "200",
    ("/api/providers/{id}/rotate-key", "post"): "200",
    ("/api/providers/{id}/test", "post"): "200",
    ("/api/audit-events", "get"): "200",
    ("/api/usage", "get"): "200",
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema?format=json")
    assert response.status_code == 200
    return response.json()


def test_every_management_operation_is_described(schema):
    assert schema["openapi"].startswith("3.")
    for (path, method), success in OPERATIONS.items():
        operation = schema["paths"][path][method]
        responses = operation["responses"]
        assert success in responses, (path, method)
        assert {"401", "403"} <= set(responses), (path, method)
        if "{id}" in path:
            assert "404" in responses
        if "requestBody" in operation:
            assert {"400", "413", "415", "422"} <= set(responses), (path, method)
        assert {"tokenAuth": []} in operation["security"] and {"cookieAuth": []} in operation["security"]
    assert "409" in schema["paths"]["/api/providers/register"]["post"]["responses"]
    assert not [p for p in schema["paths"] if p.startswith("/api/") and p.endswith("/")]  # one spelling per path


def test_api_key_is_write_only(schema):
    components = schema["components"]["schemas"]
    for name in ("ProviderRegisterRequest", "KeyCreateRequest", "RotateKeyRequest"):
        assert components[name]["properties"]["api_key"]["writeOnly"] is True
    for name, component in components.items():
        if not name.endswith("Request"):
            assert "api_key" not in component.get("properties", {}), name
            assert "secret" not in component.get("properties", {}), name
    assert "provider" in components["ProviderRegisterRequest"]["required"]


def test_errors_have_one_shape(schema):
    error = schema["components"]["schemas"]["Error"]
    assert set(error["required"]) == {"code", "message", "retryable"}
    assert "errors" in schema["components"]["schemas"]["ValidationError"]["properties"]
    token_auth = schema["components"]["securitySchemes"]["tokenAuth"]
    assert (token_auth["type"], token_auth["scheme"]) == ("http", "bearer") and "Token <token>" in token_auth[
        "description"
    ]


def test_docs_page(client):
    response = client.get("/api/docs")
    assert response.status_code == 200 and b"swagger" in response.content.lower()
    assert client.get("/api/schema").status_code == 200  # YAML by default


def test_docs_page_loads_its_assets_locally_not_from_a_cdn(client):
    """Without internet the docs must still render: every script and stylesheet is one of our static files."""
    import re

    from django.conf import settings
    from django.contrib.staticfiles import finders

    html = client.get("/api/docs").content.decode()
    assets = re.findall(r'(?:src|href)="([^"]+\.(?:js|css|png))"', html)
    assert assets, html
    for url in assets:
        assert url.startswith(settings.STATIC_URL) or url.startswith("/" + settings.STATIC_URL), url
        assert finders.find(url.split(settings.STATIC_URL, 1)[1]), f"{url} is not a static file"
    assert not re.search(r"https?://|jsdelivr|unpkg|cdnjs|@latest", html), "an asset from outside"
