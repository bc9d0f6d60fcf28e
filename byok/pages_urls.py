"""Routes of the browser pages (the chat page) and the favicon browsers ask for at the root."""

from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from byok import views_pages

urlpatterns = [
    path("chat/", views_pages.chat_page, name="chat"),
    # Browsers fetch /favicon.ico on pages that name no icon (the API docs, JSON): the admin's icon, from static.
    path("favicon.ico", RedirectView.as_view(url=static("byok/favicon.svg")), name="favicon"),
]
