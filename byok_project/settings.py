"""byok settings, read from the environment.

Secrets (`DJANGO_SECRET_KEY`, `BYOK_MASTER_KEY`) are required: a production
start-up without them stops naming the variable. `make serve`, `make test` and
pytest generate development values once into `.local-secrets.env`
(git-ignored) and reuse them.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import dj_database_url
from django.core.exceptions import ImproperlyConfigured

import byok
from byok_project.envconfig import (
    env_bool,
    env_int,
    env_list,
    env_secret,
    load_local_secrets,
    refuse_public_debug,
    validate_master_key,
)

BASE_DIR = Path(__file__).resolve().parent.parent

if os.environ.get("BYOK_LOCAL_SECRETS") == "1" or "pytest" in sys.modules:
    load_local_secrets(BASE_DIR / ".local-secrets.env")

SECRET_KEY = env_secret("DJANGO_SECRET_KEY")
BYOK_MASTER_KEY = env_secret("BYOK_MASTER_KEY")
validate_master_key(BYOK_MASTER_KEY)
# During a master-key rollout: the old key, still accepted for decryption after the current one (README).
BYOK_MASTER_KEY_PREVIOUS = os.environ.get("BYOK_MASTER_KEY_PREVIOUS", "").strip()
if BYOK_MASTER_KEY_PREVIOUS:
    validate_master_key(BYOK_MASTER_KEY_PREVIOUS, "BYOK_MASTER_KEY_PREVIOUS")

DEBUG = env_bool("DEBUG", False)
ALLOWED_HOSTS = env_list("ALLOWED_HOSTS", ["127.0.0.1", "localhost", "[::1]", "testserver"])
refuse_public_debug(DEBUG, ALLOWED_HOSTS)
# DEBUG's technical 500 page, with provider keys and byok tokens scrubbed from frames and headers.
DEFAULT_EXCEPTION_REPORTER = "byok.debug.RedactingExceptionReporter"
DEFAULT_EXCEPTION_REPORTER_FILTER = "byok.debug.RedactingExceptionReporterFilter"
CSRF_TRUSTED_ORIGINS = env_list("CSRF_TRUSTED_ORIGINS", [])

INSTALLED_APPS = [
    "daphne",
    "django.contrib.auth",
    "django.contrib.contenttypes",
    "django.contrib.sessions",
    "django.contrib.messages",
    "django.contrib.staticfiles",
    "byok",  # before rest_framework.authtoken: its drf_create_token command is byok's (tokens stored hashed)
    # Django's admin with byok's site; after byok, so byok/templates/admin/ overrides the stock templates.
    "byok.apps.ByokAdminConfig",
    "rest_framework",
    "rest_framework.authtoken",
    "drf_spectacular",
    "drf_spectacular_sidecar",  # Swagger UI served from our static files, not a CDN
    "channels",
]

# Every middleware runs on the event loop in async mode (no thread hop per request): Django's
# stock ones through byok.api.async_middleware (same classes, hooks run inline), static files
# through ServeStatic. byok/tests/test_async_chain.py keeps it so.
MIDDLEWARE = [
    "byok.api.async_middleware.SecurityMiddleware",
    "byok.api.middleware.BodySizeLimitMiddleware",  # JSON 413 from Content-Length, before any view
    "byok.api.middleware.JsonErrorMiddleware",  # an unhandled error on an API path: JSON, never HTML
    # Admin/chat static files under daphne. ServeStatic (WhiteNoise's async fork): a sync-only
    # middleware here would make Django run every request's whole chain through sync_to_async.
    "servestatic.middleware.ServeStaticMiddleware",
    "byok.api.async_middleware.SessionMiddleware",
    "byok.api.async_middleware.CommonMiddleware",
    "byok.api.async_middleware.CsrfViewMiddleware",
    "byok.api.async_middleware.AuthenticationMiddleware",
    "byok.api.async_middleware.MessageMiddleware",
    "byok.api.async_middleware.ClickjackingMiddleware",
]

ROOT_URLCONF = "byok_project.urls"
ASGI_APPLICATION = "byok_project.asgi.application"

TEMPLATES = [
    {
        "BACKEND": "django.template.backends.django.DjangoTemplates",
        "DIRS": [],
        "APP_DIRS": True,
        "OPTIONS": {
            "context_processors": [
                "django.template.context_processors.request",
                "django.contrib.auth.context_processors.auth",
                "django.contrib.messages.context_processors.messages",
            ],
        },
    },
]


# SQLite serves several threads (one per request under ASGI, plus usage writes): WAL lets
# readers run beside the writer, IMMEDIATE transactions queue writers instead of failing
# with "database is locked" when a reader upgrades, and the timeout bounds the wait.
SQLITE_OPTIONS = {
    "transaction_mode": "IMMEDIATE",
    "timeout": 20,
    "init_command": "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;",
}


def _database() -> dict[str, Any]:
    url = os.environ.get("DATABASE_URL", "").strip()
    if not url:
        return {"ENGINE": "django.db.backends.sqlite3", "NAME": BASE_DIR / "db.sqlite3", "OPTIONS": SQLITE_OPTIONS}
    try:
        config = dj_database_url.parse(url, conn_max_age=env_int("DB_CONN_MAX_AGE", 0))
    except Exception as exc:  # dj-database-url raises several types for bad input
        raise ImproperlyConfigured(f"DATABASE_URL is not a valid database URL: {exc}") from None
    if not config.get("ENGINE"):
        raise ImproperlyConfigured("DATABASE_URL is not a valid database URL: unknown scheme.")
    if config["ENGINE"] == "django.db.backends.sqlite3":
        if not config.get("NAME"):
            raise ImproperlyConfigured("DATABASE_URL names SQLite but no database file.")
        config["OPTIONS"] = {**SQLITE_OPTIONS, **config.get("OPTIONS", {})}
    return dict(config)


DATABASES = {"default": _database()}
DEFAULT_AUTO_FIELD = "django.db.models.BigAutoField"


def _redis_url() -> str | None:
    url = os.environ.get("REDIS_URL", "").strip()
    if not url:
        return None
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss", "unix") or (parsed.scheme != "unix" and not parsed.hostname):
        raise ImproperlyConfigured(f"REDIS_URL must look like redis://host:6379/0, not {url!r}.")
    try:
        parsed.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError:
        raise ImproperlyConfigured(f"REDIS_URL has an invalid port: {url!r}.") from None
    return url


REDIS_URL = _redis_url()

if REDIS_URL:
    # channels_redis' layer, but a Redis outage does not kill every open websocket (byok.ws_resilience).
    CHANNEL_LAYERS = {
        "default": {"BACKEND": "byok.ws_resilience.ResilientRedisChannelLayer", "CONFIG": {"hosts": [REDIS_URL]}}
    }
else:
    CHANNEL_LAYERS = {"default": {"BACKEND": "channels.layers.InMemoryChannelLayer"}}

AUTH_PASSWORD_VALIDATORS = [
    {"NAME": "django.contrib.auth.password_validation.MinimumLengthValidator"},
]

LANGUAGE_CODE = "en-us"
TIME_ZONE = "UTC"
USE_I18N = True
USE_TZ = True

STATIC_URL = "static/"
STATIC_ROOT = BASE_DIR / "staticfiles"
LOGIN_URL = "/login/"  # byok's own sign-in, for every active user (the admin keeps /admin/login/)
LOGIN_REDIRECT_URL = "/chat/"
# Self-service (My keys): the most active gateway keys an ordinary user may hold at once.
BYOK_SELF_SERVICE_MAX_KEYS = env_int("BYOK_SELF_SERVICE_MAX_KEYS", 5)

# Request bodies above this are refused (413) before they are read (byok.bodylimit).
DATA_UPLOAD_MAX_MEMORY_SIZE = env_int("BYOK_MAX_BODY_BYTES", 2 * 1024 * 1024)
# On SIGTERM, requests in flight get this long to finish before they are ended with an error (byok.shutdown).
BYOK_SHUTDOWN_GRACE_S = env_int("BYOK_SHUTDOWN_GRACE_S", 10)

REST_FRAMEWORK = {
    "DEFAULT_AUTHENTICATION_CLASSES": [
        "byok.api.authentication.BearerOrTokenAuthentication",
        "rest_framework.authentication.SessionAuthentication",
    ],
    "DEFAULT_PERMISSION_CLASSES": ["rest_framework.permissions.IsAuthenticated"],
    "DEFAULT_SCHEMA_CLASS": "drf_spectacular.openapi.AutoSchema",
    "EXCEPTION_HANDLER": "byok.api.exceptions.exception_handler",
    "DEFAULT_PAGINATION_CLASS": "rest_framework.pagination.LimitOffsetPagination",
    "PAGE_SIZE": 50,
    "UNAUTHENTICATED_USER": None,
}

SPECTACULAR_SETTINGS = {
    "TITLE": "byok",
    "DESCRIPTION": "Bring-your-own-key LLM gateway: provider/key management and chat.",
    "VERSION": byok.__version__,
    "SERVE_INCLUDE_SCHEMA": False,
    "SWAGGER_UI_DIST": "SIDECAR",
    "SWAGGER_UI_FAVICON_HREF": "SIDECAR",
    "REDOC_DIST": "SIDECAR",
    # Separate request and response components: write-only fields (api_key) only in requests.
    "COMPONENT_SPLIT_REQUEST": True,
    "PREPROCESSING_HOOKS": ["byok.api.views.drop_slash_duplicates"],
    "POSTPROCESSING_HOOKS": [
        "drf_spectacular.hooks.postprocess_schema_enums",
        "byok.api.openapi_chat.add_chat_paths",
        "byok.api.openapi_anthropic.add_anthropic_paths",
        "byok.api.openapi_responses.add_responses_path",
        "byok.api.openapi_embeddings.add_embeddings_path",
    ],
}

BYOK: dict[str, Any] = {  # read as settings.BYOK["..."]: values of several types
    "ALLOW_PRIVATE_BASE_URLS": env_bool("BYOK_ALLOW_PRIVATE_BASE_URLS", False),
    # aiohttp by default: measured at a fifth of httpx's own transport's CPU per request with 50 requests in
    # flight (docs/benchmarks.md). Unit tests fake upstreams with respx, which patches httpx's own transport.
    "HTTP_TRANSPORT": os.environ.get("BYOK_HTTP_TRANSPORT", "default" if "pytest" in sys.modules else "aiohttp"),
    # Namespace of byok's keys in Redis, so several deployments can share one server.
    "STATE_PREFIX": os.environ.get("BYOK_STATE_PREFIX", "byok:"),
    # How often (seconds, at most) a process asks the shared state whether the configuration changed.
    "CONFIG_POLL_S": float(os.environ.get("BYOK_CONFIG_POLL_S", "0.5")),
    # Image URLs a provider cannot fetch itself (Gemini): byok downloads them (public addresses only,
    # at most this many bytes each) when true; when false such a request is a 400. byok.gateway.images
    "FETCH_IMAGE_URLS": env_bool("BYOK_FETCH_IMAGE_URLS", False),
    "FETCH_IMAGE_MAX_BYTES": env_int("BYOK_FETCH_IMAGE_MAX_BYTES", 5 * 1024 * 1024),
    # Sign-in (/login/, /admin/login/): after this many failures in the window, for one username or from one
    # address, further attempts get a 429 until the window ends (byok.login_throttle). 0 turns it off.
    "LOGIN_MAX_FAILURES": env_int("BYOK_LOGIN_MAX_FAILURES", 5),
    "LOGIN_WINDOW_S": env_int("BYOK_LOGIN_WINDOW_S", 300),
}
if BYOK["LOGIN_WINDOW_S"] <= 0:
    raise ImproperlyConfigured("BYOK_LOGIN_WINDOW_S must be a positive number of seconds.")

# BYOK_LOG_FORMAT: "text" (time level logger message) or "json" (one object a line, byok.logfmt).
LOG_FORMAT = (os.environ.get("BYOK_LOG_FORMAT") or "text").strip().lower()
if LOG_FORMAT not in ("text", "json"):
    raise ImproperlyConfigured(f"BYOK_LOG_FORMAT must be text or json, not {LOG_FORMAT!r}.")

LOGGING = {
    "version": 1,
    "disable_existing_loggers": False,
    "filters": {"redact": {"()": "byok.secrets.RedactingFilter"}},
    "formatters": {
        "byok": {"()": "byok.logfmt.JsonFormatter" if LOG_FORMAT == "json" else "byok.logfmt.TextFormatter"}
    },
    "handlers": {
        "console": {"class": "logging.StreamHandler", "formatter": "byok", "filters": ["redact"]},
    },
    "root": {"handlers": ["console"], "level": os.environ.get("LOG_LEVEL", "INFO")},
    "loggers": {
        "httpx": {"level": "WARNING"},
        "httpcore": {"level": "WARNING"},
    },
}
