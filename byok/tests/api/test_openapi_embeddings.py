"""/api/schema describes `POST /v1/embeddings` (byok.api.openapi_embeddings), its body generated from the model."""

from __future__ import annotations

import pytest
from django.test import Client

from byok.api import openapi_chat, openapi_embeddings
from byok.schemas.openai_embeddings import OpenAIEmbeddingsRequest

pytestmark = pytest.mark.django_db


def test_the_operation_and_its_body(django_db_blocker):
    with django_db_blocker.unblock():
        schema = Client().get("/api/schema?format=json").json()
    operation = schema["paths"]["/v1/embeddings"]["post"]
    ref = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    assert ref == "#/components/schemas/OpenAIEmbeddingsRequest"
    body = schema["components"]["schemas"]["OpenAIEmbeddingsRequest"]
    assert body == openapi_chat.components((OpenAIEmbeddingsRequest,))["OpenAIEmbeddingsRequest"]
    assert sorted(body["required"]) == ["input", "model"] and body["additionalProperties"] is False
    assert body["properties"]["encoding_format"]["enum"] == ["float", "base64"]
    ok = operation["responses"]["200"]["content"]["application/json"]["schema"]["$ref"]
    assert ok.endswith("/OpenAIEmbeddingsResponse") and "400" in operation["responses"]


def test_a_name_clash_is_refused():
    taken = {"components": {"schemas": {"OpenAIEmbeddingsRequest": {"type": "string"}}}}
    with pytest.raises(ValueError, match="OpenAIEmbeddingsRequest"):
        openapi_embeddings.add_embeddings_path(taken)
