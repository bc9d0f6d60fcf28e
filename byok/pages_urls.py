"""Routes of the browser pages (the chat page)."""

from django.urls import path

from byok import views_pages

urlpatterns = [
    path("chat/", views_pages.chat_page, name="chat"),
]
