"""Request schemas of the chat dialects: one pydantic v2 model per request body, each -> `ChatRequest`.

- `rules`: the limits every dialect shares (pure functions, no pydantic);
- `base`: strict/loose base models, tagged unions, `problems()` (validation errors -> one per field);
- `fields`: shared field types carrying the rules (temperature, max_tokens, stop, stored text ...);
- `openai_chat` (`POST /v1/chat/completions`), `byok_chat` (`POST /api/chat`), `ws_chat` (the
  websocket's `chat.request` frame): one module per dialect.

pydantic, not DRF serializers: parse + validate + build a `ChatRequest` from a typical 688-byte
chat body costs tens of microseconds with pydantic and about twenty times as much with DRF
serializers (`.venv/bin/python -m devtools.schema_bench`, figures in docs/request-schemas.md).
The chat endpoints' OpenAPI is generated from these models (`byok.api.openapi_chat`).
"""
