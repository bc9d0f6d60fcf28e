"""The ASGI application: HTTP to Django, websockets to byok's chat consumer."""

import os
import sys

from django.core.exceptions import ImproperlyConfigured

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
try:
    from byok_project.asgi_handler import get_asgi_application  # Django's, without per-request thread hops

    django_asgi_app = get_asgi_application()
except ImproperlyConfigured as exc:
    # Refuse to start, naming what is missing, instead of failing in a request later.
    sys.exit(f"byok: configuration error: {exc}")

# These import models and the handler, so they need Django set up first.
from channels.routing import ProtocolTypeRouter, URLRouter
from django.conf import settings

from byok.bodylimit import BodyLimitApp, install_daphne_body_limit
from byok.metrics import track_websockets
from byok.routing import websocket_urlpatterns
from byok.shutdown import GracefulApp, install_daphne_graceful_shutdown, install_uvicorn_graceful_shutdown
from byok.ws.auth import ByokAuthMiddlewareStack, HostOriginValidator
from byok.ws_resilience import ErrorFrameOnCrash


def _layer_read_timeouts(layers: dict, seconds: float = 15.0) -> None:
    """Give channels_redis connections a read timeout longer than its blocking receive.

    channels_redis waits in BZPOPMIN for up to 5 s, and redis-py's default
    socket timeout is also 5 s: an idle socket's channel receive then times
    out and the consumer dies (close 1011). Hosts given as plain URLs get
    `socket_timeout=seconds`; hosts configured as dicts are left as they are.
    """
    for layer in layers.values():
        if not str(layer.get("BACKEND", "")).endswith("RedisChannelLayer"):
            continue
        config = layer.setdefault("CONFIG", {})
        config["hosts"] = [
            {"address": host, "socket_timeout": seconds} if isinstance(host, str) else host
            for host in config.get("hosts", [])
        ]


_layer_read_timeouts(settings.CHANNEL_LAYERS)
# Websockets: the origin must be one of ALLOWED_HOSTS (a handshake without an Origin header,
# i.e. not from a browser, passes: see byok.ws.auth), then session cookie or Authorization header.
# GracefulApp drains requests in flight on shutdown (byok.shutdown).
application = GracefulApp(
    ProtocolTypeRouter(
        {
            "http": BodyLimitApp(django_asgi_app),  # oversized bodies: 413 before they are read, before auth
            "websocket": track_websockets(  # byok_websocket_connections
                ErrorFrameOnCrash(HostOriginValidator(ByokAuthMiddlewareStack(URLRouter(websocket_urlpatterns))))
            ),
        }
    )
)

if "daphne.server" in sys.modules:  # served by daphne: its body buffering and its shutdown need byok's rules
    install_daphne_body_limit()
    install_daphne_graceful_shutdown(application)
if "uvicorn.server" in sys.modules:
    install_uvicorn_graceful_shutdown(application)
