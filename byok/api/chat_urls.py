"""Routes of the chat APIs: OpenAI-compatible /v1/* and byok's own /api/chat."""

urlpatterns: list = []
