"""byok/providers/embeddings.py (request/response translation per kind) and the fake provider's embeddings
validation (devtools/fakeprovider/embeddings.py)."""

from __future__ import annotations

import orjson
import pytest

from byok.exceptions import MalformedResponseError
from byok.providers import get_adapter
from byok.providers.embeddings import EmbeddingRequest, build_embeddings_request, parse_embeddings_response
from devtools.fakeprovider import embeddings as fake

REQ = EmbeddingRequest(model="m", inputs=("a", "b"), dimensions=4, user="u")


def test_requests_per_kind():
    oai = build_embeddings_request(get_adapter("openai"), REQ, api_key="k", base_url=None)
    assert oai.url == "https://api.openai.com/v1/embeddings" and oai.headers["Authorization"] == "Bearer k"
    assert oai.json == {"model": "m", "input": ["a", "b"], "encoding_format": "float", "dimensions": 4, "user": "u"}
    gem = build_embeddings_request(
        get_adapter("gemini"), EmbeddingRequest(model="models/e", inputs=("a",)), api_key="k", base_url=None
    )
    assert gem.url.endswith("/v1beta/models/e:batchEmbedContents") and gem.headers["x-goog-api-key"] == "k"
    assert gem.json == {"requests": [{"model": "models/e", "content": {"parts": [{"text": "a"}]}}]}


@pytest.mark.parametrize(
    "kind,body",
    [
        ("openai", b"not json"),
        ("openai", b"[]"),
        ("openai", orjson.dumps({"data": [{"index": 0, "embedding": [1.0]}]})),  # one of two
        ("openai", orjson.dumps({"data": [{"index": 0, "embedding": ["x"]}, {"index": 1, "embedding": [1]}]})),
        ("gemini", orjson.dumps({"embeddings": [{"values": [1.0]}]})),
        ("gemini", orjson.dumps({"embeddings": [{"values": [True]}, {"values": [1.0]}]})),
    ],
)
def test_malformed_answers_are_classified(kind, body):
    with pytest.raises(MalformedResponseError):
        parse_embeddings_response(kind, body, REQ, provider="p")


def test_missing_usage_is_estimated():
    body = orjson.dumps({"data": [{"index": 1, "embedding": [2]}, {"index": 0, "embedding": [1]}]})
    got = parse_embeddings_response("openai", body, REQ, provider="p", estimate=lambda texts: 7)
    assert got.vectors == ((1.0,), (2.0,)) and got.input_tokens == 7 and got.estimated


def test_the_fake_validates_like_the_real_apis():
    assert fake.openai_embeddings({"input": "x"})[0] == 400
    assert fake.openai_embeddings({"model": "text-embedding-ada-002", "input": "x", "dimensions": 8})[0] == 400
    assert fake.openai_embeddings({"model": "m", "input": [""]})[0] == 400
    status, ok = fake.openai_embeddings({"model": "m", "input": [[1, 2]], "encoding_format": "base64"})
    assert status == 200 and isinstance(ok, dict) and isinstance(ok["data"][0]["embedding"], str)
    assert fake.gemini_embeddings({"requests": [{"model": "models/other", "content": {"parts": [{"text": "x"}]}}]},
                                  "e", "batchEmbedContents")[0] == 400  # fmt: skip
    assert fake.gemini_embeddings({"content": {"parts": []}}, "e", "embedContent")[0] == 400
    status, one = fake.gemini_embeddings({"content": {"parts": [{"text": "x"}]}, "outputDimensionality": 3}, "e",
                                         "embedContent")  # fmt: skip
    assert status == 200 and isinstance(one, dict) and one["embedding"]["values"] == fake.vector("x", "e", 3)
    assert fake.vector("x", "e", 3) == fake.vector("x", "e", 3) != fake.vector("y", "e", 3)
