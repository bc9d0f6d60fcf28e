"""/api/schema describes the chat endpoints (byok.api.schema_chat), not only the management API."""

from __future__ import annotations

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

UPSTREAM = {"400", "401", "403", "404", "413", "422", "429", "502", "503", "504"}
OPERATIONS = {
    ("/v1/chat/completions", "post"): {"200"} | UPSTREAM,
    ("/v1/models", "get"): {"200", "401", "403"},
    ("/v1/models/{model}", "get"): {"200", "401", "403", "404"},
    ("/api/chat", "post"): {"200"} | UPSTREAM,
}


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_four_chat_operations_and_their_statuses(schema):
    for (path, method), statuses in OPERATIONS.items():
        operation = schema["paths"][path][method]
        assert set(operation["responses"]) == statuses, (path, method)
        assert operation["security"] == [{"tokenAuth": []}, {"cookieAuth": []}]


def test_bodies_and_error_shapes(schema):
    paths, components = schema["paths"], schema["components"]["schemas"]
    openai = paths["/v1/chat/completions"]["post"]
    assert openai["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ChatCompletionRequest"
    }
    assert set(openai["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert openai["responses"]["429"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OpenAIError"
    }
    assert components["ChatCompletionRequest"]["required"] == ["model", "messages"]
    assert components["OpenAIError"]["properties"]["error"]["required"] == ["message", "type", "param", "code"]
    assert [p["name"] for p in paths["/v1/models/{model}"]["get"]["parameters"]] == ["model"]

    byok = paths["/api/chat"]["post"]
    assert set(byok["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert byok["responses"]["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"$ref": "#/components/schemas/ValidationError"} in byok["responses"]["422"]["content"]["application/json"][
        "schema"
    ]["anyOf"]
    assert components["ByokChatRequest"]["required"] == ["messages"]
    assert "ByokChatResponse" in components


def test_management_operations_are_still_there(schema):
    assert "/api/providers" in schema["paths"]
