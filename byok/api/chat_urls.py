"""Routes of the chat APIs: OpenAI-compatible /v1/* (chat completions, responses, embeddings), Anthropic's /v1/messages
and byok's own /api/chat.

One views module per dialect. `/v1/models` answers in the asking client's dialect (views_anthropic).
"""

from django.urls import path

from byok.api import views_anthropic, views_byok, views_embeddings, views_openai, views_responses

urlpatterns = [
    path("v1/chat/completions", views_openai.chat_completions, name="openai-chat-completions"),
    path("v1/responses", views_responses.responses, name="openai-responses"),
    path("v1/embeddings", views_embeddings.embeddings, name="openai-embeddings"),
    path("v1/messages", views_anthropic.messages, name="anthropic-messages"),
    path("v1/messages/count_tokens", views_anthropic.count_tokens, name="anthropic-count-tokens"),
    path("v1/models", views_anthropic.models, name="openai-models"),
    path("v1/models/<path:model>", views_anthropic.model_detail, name="openai-model"),
    path("api/chat", views_byok.byok_chat, name="chat"),
]
