"""The ASGI application: HTTP to Django, websockets to byok's chat consumer."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
try:
    from django.core.asgi import get_asgi_application

    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    # Refuse to start, naming what is missing, instead of failing in a request later.
    sys.exit(f"byok: configuration error: {exc}")

from channels.routing import ProtocolTypeRouter  # noqa: E402 - needs Django set up first

application = ProtocolTypeRouter({"http": django_asgi_app})
