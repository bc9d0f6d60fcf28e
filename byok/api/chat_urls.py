"""Routes of the chat APIs: OpenAI-compatible /v1/* (chat completions, responses) and byok's own /api/chat.

One views module per dialect.
"""

from django.urls import path

from byok.api import views_byok, views_openai, views_responses

urlpatterns = [
    path("v1/chat/completions", views_openai.chat_completions, name="openai-chat-completions"),
    path("v1/responses", views_responses.responses, name="openai-responses"),
    path("v1/models", views_openai.models, name="openai-models"),
    path("v1/models/<path:model>", views_openai.model_detail, name="openai-model"),
    path("api/chat", views_byok.byok_chat, name="chat"),
]
