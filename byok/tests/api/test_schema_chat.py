"""/api/schema describes the chat endpoints (byok.api.openapi_chat: generated from the pydantic models)."""

from __future__ import annotations

import json

import pytest
from django.test import Client
from pydantic import BaseModel

from byok.api import openapi_chat
from byok.schemas import answers, rules

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
    assert components["OpenAIError"]["properties"]["error"] == {"$ref": "#/components/schemas/OpenAIErrorDetail"}
    assert components["OpenAIErrorDetail"]["required"] == ["message", "type", "param", "code"]
    assert [p["name"] for p in paths["/v1/models/{model}"]["get"]["parameters"]] == ["model"]

    byok = paths["/api/chat"]["post"]
    assert set(byok["responses"]["200"]["content"]) == {"application/json", "text/event-stream"}
    assert byok["responses"]["401"]["content"]["application/json"]["schema"] == {"$ref": "#/components/schemas/Error"}
    assert {"$ref": "#/components/schemas/ValidationError"} in byok["responses"]["422"]["content"]["application/json"][
        "schema"
    ]["anyOf"]
    assert components["ByokChatRequest"]["required"] == ["messages"]
    assert "ByokChatResponse" in components


def test_the_chat_components_are_generated_from_the_pydantic_models(schema):
    """Each request model is published as it validates, in OpenAPI 3.0 terms (no `const`, no `null` type)."""
    components = schema["components"]["schemas"]
    for name, generated in openapi_chat.components().items():
        assert components[name] == generated, name
    request = components["ChatCompletionRequest"]
    assert request["additionalProperties"] is False  # unknown fields are refused (StrictModel)
    assert request["properties"]["temperature"] == {
        "type": "number",
        "minimum": 0.0,
        "maximum": 2.0,
        "nullable": True,
        "default": None,
    }
    assert request["properties"]["messages"]["minItems"] == 1
    assert request["properties"]["messages"]["maxItems"] == rules.MAX_MESSAGES
    assert request["properties"]["max_tokens"]["maximum"] == rules.MAX_TOKENS
    roles = [
        components[m["$ref"].rsplit("/", 1)[1]]["properties"]["role"]
        for m in request["properties"]["messages"]["items"]["oneOf"]
    ]
    assert {"enum": ["tool"], "type": "string"} in roles and {
        "enum": ["system", "developer"],
        "type": "string",
    } in roles
    assert components["OpenAITextPart"]["required"] == ["type", "text"]  # typed_required fields are required
    byok = components["ByokChatRequest"]
    assert byok["properties"]["provider"]["maxLength"] == 64 and byok["properties"]["provider"]["nullable"] is True
    text = json.dumps({k: components[k] for k in openapi_chat.components()})
    assert '"const"' not in text and '{"type": "null"}' not in text and '"title"' not in text


def test_two_models_of_one_name_are_refused():
    class OpenAIError(BaseModel):  # a second model under an existing component name
        other: int

    with pytest.raises(ValueError, match="OpenAIError"):
        openapi_chat.components((answers.OpenAIError, OpenAIError))


def test_management_operations_are_still_there(schema):
    assert "/api/providers" in schema["paths"]
