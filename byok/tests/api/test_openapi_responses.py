"""/api/schema describes `POST /v1/responses` (byok.api.openapi_responses), its body generated from the model."""

from __future__ import annotations

import pytest
from django.test import Client

from byok.api import openapi_chat, openapi_responses
from byok.schemas.responses_body import ResponsesBody

pytestmark = pytest.mark.django_db


@pytest.fixture(scope="module")
def schema(django_db_blocker):
    with django_db_blocker.unblock():
        response = Client().get("/api/schema?format=json")
    assert response.status_code == 200
    return response.json()


def test_the_operation_its_body_and_its_answers(schema):
    operation = schema["paths"]["/v1/responses"]["post"]
    assert operation["requestBody"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/ResponsesBody"
    }
    assert set(operation["responses"]) == {"200", "400", "401", "403", "404", "413", "422", "429", "502", "503", "504"}
    ok = operation["responses"]["200"]["content"]
    assert ok["application/json"]["schema"] == {"$ref": "#/components/schemas/ResponsesResponse"}
    assert "response.completed" in ok["text/event-stream"]["schema"]["properties"]["event"]["enum"]
    assert operation["responses"]["400"]["content"]["application/json"]["schema"]["$ref"].endswith("/OpenAIError")


def test_the_body_components_are_the_validating_model(schema):
    components = schema["components"]["schemas"]
    for name, generated in openapi_chat.components((ResponsesBody,)).items():
        assert components[name] == generated
    body = components["ResponsesBody"]
    assert body["required"] == ["model"] and body["additionalProperties"] is False
    assert {"input", "instructions", "tools", "tool_choice", "text", "reasoning", "previous_response_id"} <= set(
        body["properties"]
    )
    assert body["properties"]["temperature"]["maximum"] == 2
    assert "ResponsesMessageItem" in components and "ResponsesFunctionCallOutputItem" in components


def test_a_name_clash_is_refused():
    taken = {"components": {"schemas": {"ResponsesBody": {"type": "string"}}}}
    with pytest.raises(ValueError, match="ResponsesBody"):
        openapi_responses.add_responses_path(taken)
