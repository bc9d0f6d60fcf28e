"""Routes of the browser pages (the chat page)."""

urlpatterns: list = []
