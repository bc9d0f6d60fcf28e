"""Websocket routes, mounted by `byok_project.asgi` behind the origin check and authentication."""

from django.urls import path

from byok.ws.consumer import ChatConsumer

__all__ = ["websocket_urlpatterns"]

websocket_urlpatterns = [
    path("ws/chat/", ChatConsumer.as_asgi(), name="ws-chat"),
]
