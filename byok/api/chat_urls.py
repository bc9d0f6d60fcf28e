"""Routes of the chat APIs: OpenAI-compatible /v1/* and byok's own /api/chat."""

from django.urls import path

from byok.api import chat_views

urlpatterns = [
    path("v1/chat/completions", chat_views.chat_completions, name="openai-chat-completions"),
    path("v1/models", chat_views.models, name="openai-models"),
    path("v1/models/<path:model>", chat_views.model_detail, name="openai-model"),
    path("api/chat", chat_views.byok_chat, name="chat"),
]
