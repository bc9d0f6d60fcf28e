"""Routes of the browser pages (sign-in, chat, My keys, My usage) and the favicon browsers ask for at the root."""

from django.contrib.auth import views as auth_views
from django.templatetags.static import static
from django.urls import path
from django.views.generic import RedirectView

from byok import views_me, views_pages
from byok.login_throttle import throttled

urlpatterns = [
    # Any active user signs in here (staff too); the admin keeps its own sign-in at /admin/login/.
    # Both limit failed attempts per username and per address (byok.login_throttle).
    path(
        "login/",
        throttled(auth_views.LoginView.as_view(template_name="byok/login.html", redirect_authenticated_user=True)),
        name="login",
    ),
    path("logout/", auth_views.LogoutView.as_view(next_page="login"), name="logout"),
    path("chat/", views_pages.chat_page, name="chat"),
    path("me/keys/", views_me.my_keys, name="me-keys"),
    path("me/keys/<int:pk>/revoke/", views_me.revoke_key, name="me-key-revoke"),
    path("me/usage/", views_me.my_usage, name="me-usage"),
    # Browsers fetch /favicon.ico on pages that name no icon (the API docs, JSON): the admin's icon, from static.
    path("favicon.ico", RedirectView.as_view(url=static("byok/favicon.svg")), name="favicon"),
]
