"""One error shape everywhere: every error body of the API carries `code`, `message` and `retryable`."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.django_db


def _shape(response) -> dict:
    body = response.json()
    assert {"code", "message", "retryable"} <= set(body), body
    assert isinstance(body["retryable"], bool)
    return body


def test_field_validation_422_has_retryable_like_every_other_422(alice_client):
    field_error = alice_client.post("/api/providers/register", {"provider": "openai", "timeout": "soon"}, format="json")
    assert field_error.status_code == 422
    assert _shape(field_error)["retryable"] is False and "timeout" in field_error.json()["errors"]
    registry_error = alice_client.post("/api/providers/register", {"provider": "nope"}, format="json")
    assert registry_error.status_code == 422
    assert _shape(registry_error).keys() == field_error.json().keys()


@pytest.mark.parametrize(
    "request_",
    [
        lambda c, a, b: c.get("/api/providers"),  # 401
        lambda c, a, b: b.get("/api/providers"),  # 403
        lambda c, a, b: a.get("/api/providers/999"),  # 404
        lambda c, a, b: a.post("/api/providers/register", "{", content_type="application/json"),  # 400
        lambda c, a, b: a.post("/api/providers/register", "x", content_type="text/plain"),  # 415
        lambda c, a, b: a.put("/api/providers", {}, format="json"),  # 405
        lambda c, a, b: a.generic(
            "POST", "/api/providers/register", b"{}", "application/json", CONTENT_LENGTH="99999999"
        ),  # 413
    ],
)
def test_every_error_status_has_the_shape(client, alice_client, bob_client, request_):
    response = request_(client, alice_client, bob_client)
    assert response.status_code >= 400
    assert _shape(response)["retryable"] is False
