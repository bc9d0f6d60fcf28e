"""Request schemas of the chat dialects (OpenAI chat completions, `/api/chat`, the websocket frame).

`rules` holds the limits every dialect shares; each dialect's parser applies them
(`byok.api.openai_compat`, `byok.api.views_byok.parse_byok_chat`, `byok.ws.frames`).

Declarative models, when the parsers become them, are to be pydantic v2, not DRF
serializers: parse + validate + build a `ChatRequest` from a typical 688-byte chat body
took a median of ~110 us with pydantic (`model_validate_json`), ~135 us with today's
hand-written parser and ~4,350 us with DRF serializers on the shared 2-core machine
(`.venv/bin/python -m devtools.schema_bench`): DRF would add about 4 ms of CPU to every
chat request, pydantic costs no more than the code it would replace.
"""
