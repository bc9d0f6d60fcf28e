"""What every chat dialect's HTTP view shares: who is asking, one call to the handler, the answer's headers.

A dialect's view (`views_openai`, `views_byok`, ...) is: `authenticate` -> its own schema -> `answer`
-> its own renderer. This module knows no dialect; the dialect passes it three callables:

    return await answer(
        request, req, user_id=user.pk, provider=provider, interface="openai", stream=stream,
        error=lambda exc, headers: my_error_response(exc, headers),      # ByokError -> HttpResponse
        complete=lambda result, served: json_response(my_body(result), headers=served.headers()),
        renderer=lambda served: MyStreamRenderer(...),                    # a `StreamRenderer`
    )

Hot path: one token lookup through `BearerOrTokenAuthentication`, whose in-process cache answers
on the event loop (a miss goes to a thread for its query), and nothing else synchronous before
the first byte; the handler caches providers and keys and writes usage after the answer. A
stream's first event is pulled from the handler before the response starts, so a failure before
the first token (every provider down, unknown provider) is an ordinary error with its status,
never a 200 followed by an error. A client that goes away cancels the view's task; the handler's
generator is closed in a `finally`, which closes the upstream request at once.

Every answer carries `x-byok-provider`, `x-byok-attempts`, `x-byok-failover-ms`,
`x-byok-request-id`, `x-byok-key-hint` and `x-byok-overhead-ms` (`Served.headers`).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

import orjson
from asgiref.sync import sync_to_async
from django.core.exceptions import SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from rest_framework import exceptions as drf
from rest_framework.authentication import SessionAuthentication

from byok import metrics
from byok.api.authentication import BearerOrTokenAuthentication
from byok.api.sse import SSE_CONTENT_TYPE, SSE_HEADERS, keep_alive
from byok.exceptions import ByokError, GatewayError, StreamInterruptedError
from byok.gateway.embeddings import EmbedResult
from byok.gateway.handler import ChatResult, get_handler
from byok.keys.entry import check_model, presented_key
from byok.keys.grant import Grant, KeyRejected
from byok.keys.lookup import verify as verify_key
from byok.overhead import HEADER as OVERHEAD_HEADER
from byok.overhead import overhead_header, time_in_byok_ms
from byok.providers.types import ChatRequest, GatewayEvent, StreamDone, StreamEvent, StreamFailed, StreamStarted

__all__ = [
    "JSON",
    "InternalError",
    "Served",
    "StreamRenderer",
    "allowed_models",
    "answer",
    "auth_code",
    "authenticate",
    "failed_headers",
    "get_handler",
    "grant_of",
    "json_response",
    "open_stream",
    "overhead_headers",
    "read_body",
    "render_stream",
    "served_result",
    "served_stream",
    "streaming_response",
]

log = logging.getLogger("byok.api")

_token_auth = BearerOrTokenAuthentication()
_session_auth = SessionAuthentication()
JSON = "application/json"
AUTH_ERRORS = (drf.NotAuthenticated, drf.AuthenticationFailed, drf.PermissionDenied)
KEY_CODES = frozenset({"invalid_key", "key_revoked", "key_expired"})
KEEPALIVE_S = 10.0  # a dialect's keep-alive goes out after this long without an event (see `answer`)


class InternalError(GatewayError):
    """Something in byok broke mid-stream; the client gets an error event instead of a silent close."""

    code = "internal_error"
    status_code = 500
    default_message = "byok failed while streaming the answer."


# -- who is asking ---------------------------------------------------------------------------------


async def authenticate(request: HttpRequest):
    """The requesting user: a gateway key, a byok token (`Token`/`Bearer`), else a browser session with CSRF enforced.

    A gateway key (`Authorization: Bearer byok_…` or `x-api-key: byok_…`, see `byok.keys`) names its owner and
    leaves its grant on the request (`request.byok_grant`) for `answer()`; a bad one is AuthenticationFailed
    with the code `invalid_key`, `key_revoked` or `key_expired` (`auth_code()`).
    Raises DRF's NotAuthenticated / AuthenticationFailed (401) or PermissionDenied (403) (`AUTH_ERRORS`).
    """
    key = presented_key(request.META)
    if key is not None:
        try:
            user, request.byok_grant = await verify_key(key)  # type: ignore[attr-defined]
        except KeyRejected as exc:
            metrics.rejected(metrics.dialect_of(request.path), exc.code)
            raise drf.AuthenticationFailed(exc.message, code=exc.code) from None
        return user
    if not request.META.get("HTTP_AUTHORIZATION") and request.META.get("HTTP_X_API_KEY"):
        request.META["HTTP_AUTHORIZATION"] = f"Bearer {request.META['HTTP_X_API_KEY']}"  # a byok token there
    if request.META.get("HTTP_AUTHORIZATION"):
        try:
            result = _token_auth.authenticate(request)  # a token in its cache: no query, no thread hop
        except SynchronousOnlyOperation:  # not cached: the lookup needs the database
            result = await sync_to_async(_token_auth.authenticate)(request)
        if result is None:
            raise drf.AuthenticationFailed(
                "Unsupported authorization scheme: send `Authorization: Bearer <byok token>`."
            )
        return result[0]
    user = await request.auser()
    if user is not None and user.is_authenticated and user.is_active:
        _session_auth.enforce_csrf(request)  # type: ignore[arg-type]  # reads only what HttpRequest has
        return user
    raise drf.NotAuthenticated(
        "Authentication credentials were not provided: send `Authorization: Bearer <byok token>`."
    )


def auth_code(exc: drf.APIException, default: str) -> str:
    """The machine code of an authentication failure: a gateway key's own (`invalid_key`, ...), else ``default``."""
    code = getattr(exc.detail, "code", None)
    return code if code in KEY_CODES else default


def grant_of(request: HttpRequest) -> Grant | None:
    """The gateway key `authenticate()` admitted for this request (None: a token or a session)."""
    return getattr(request, "byok_grant", None)


async def allowed_models(request: HttpRequest, items: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The `/v1/models` entries (each with an `id` `<provider>/<model>`) the request's gateway key may use."""
    grant = grant_of(request)
    if grant is None:
        return items
    return [i for i in items if grant.allows(i["id"]) or grant.allows(f"{i.get('owned_by')}/{i['id']}")]


def read_body(request: HttpRequest) -> bytes:
    """The request body; RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE (the dialect answers 413)."""
    return request.body


# -- what every answer says about how it was served --------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
    """Who served a request, for the response headers (from a ChatResult or a stream's StreamStarted)."""

    provider: str
    model: str
    key_hint: str
    attempts: int
    failover_ms: float
    request_id: str
    overhead_ms: float

    def headers(self) -> dict[str, str]:
        return {
            OVERHEAD_HEADER: overhead_header(self.overhead_ms),
            "x-byok-provider": self.provider,
            "x-byok-attempts": str(self.attempts),
            "x-byok-failover-ms": f"{self.failover_ms:.1f}",
            "x-byok-request-id": self.request_id,
            # Headers are Latin-1: the hint's ellipsis becomes three dots.
            "x-byok-key-hint": self.key_hint.replace("\u2026", "..."),
        }


def served_result(result: ChatResult | EmbedResult) -> Served:
    return Served(
        result.provider,
        result.model,
        result.key_hint,
        len(result.attempts),
        result.failover_ms,
        result.request_id,
        result.overhead_ms,
    )


def served_stream(started: StreamStarted) -> Served:
    """Who serves a stream, from its first event (response headers leave before the first token)."""
    return Served(
        started.provider,
        started.model,
        started.key_hint,
        len(started.attempts),
        started.failover_ms,
        started.request_id,
        started.overhead_ms,
    )


def overhead_headers(exc: Exception) -> dict[str, str]:
    """The header for an error the handler raised (its overhead is known); else none (see byok.overhead)."""
    ms = getattr(exc, "overhead_ms", None)
    return {OVERHEAD_HEADER: overhead_header(ms)} if ms is not None else {}


def failed_headers(failed: StreamFailed) -> dict[str, str]:
    """What a stream that failed before its first token says about its attempts."""
    return {"x-byok-request-id": failed.request_id, "x-byok-attempts": str(len(failed.attempts))}


def json_response(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=JSON, headers=headers)


# -- streams ---------------------------------------------------------------------------------------


class StreamRenderer(Protocol):
    """A dialect's pure events -> bytes renderer for one stream."""

    def event(self, ev: StreamStarted | StreamEvent) -> bytes | None:
        """A delta's bytes; None or b"" for events the dialect does not show."""

    def done(self, done: StreamDone) -> bytes:
        """The end of a stream that finished."""

    def failed(self, failed: StreamFailed) -> bytes:
        """The end of a stream the handler gave up on after it started."""

    def error(self, exc: ByokError) -> bytes:
        """The end of a stream byok broke or that ended without a terminal event."""


async def open_stream(
    req: ChatRequest,
    *,
    provider: str | None,
    user_id: int,
    interface: str,
    before_ms: float = 0.0,
    grant: Grant | None = None,
):
    """Start a stream and pull its first event: StreamStarted, or StreamFailed when no target could serve it."""
    agen = get_handler().stream(
        req, provider=provider, user_id=user_id, interface=interface, before_ms=before_ms, grant=grant
    )
    try:
        first = await anext(agen)
    except BaseException:
        await agen.aclose()
        raise
    if isinstance(first, StreamFailed):
        await _drain(agen)
    return agen, first


async def _drain(agen) -> None:
    """Let the handler's generator finish after its terminal event, so it records the request as
    done or failed (closing it at the terminal event would record a cancellation)."""
    async for _ in agen:  # pragma: no cover - nothing follows a terminal event
        pass


async def render_stream(agen, first: GatewayEvent, renderer: StreamRenderer) -> AsyncIterator[bytes]:
    """Handler events -> bytes through the dialect's renderer; always ends with done, failed or error."""
    try:
        event: GatewayEvent | None = first
        while event is not None:
            if isinstance(event, StreamDone):
                await _drain(agen)
                yield renderer.done(event)
                return
            if isinstance(event, StreamFailed):
                await _drain(agen)
                yield renderer.failed(event)
                return
            chunk = renderer.event(event)
            if chunk:
                yield chunk
            event = await anext(agen, None)
        yield renderer.error(StreamInterruptedError("The stream ended without a final event."))
    except Exception:
        log.exception("chat stream failed inside byok")
        yield renderer.error(InternalError())
    finally:
        await agen.aclose()  # closes the upstream request when the client went away first


def streaming_response(body: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=SSE_CONTENT_TYPE)
    for name, value in {**SSE_HEADERS, **headers}.items():
        response[name] = value
    return response


# -- the one call every dialect makes ---------------------------------------------------------------

R = TypeVar("R", bound=StreamRenderer)


async def answer(
    request: HttpRequest,
    req: ChatRequest,
    *,
    user_id: int,
    provider: str | None,
    interface: str,
    stream: bool,
    error: Callable[[ByokError, dict[str, str]], HttpResponseBase],
    complete: Callable[[ChatResult, Served], HttpResponseBase],
    renderer: Callable[[Served], R],
    keepalive: Callable[[R], bytes] | None = None,
) -> HttpResponseBase:
    """Serve a parsed chat request: the whole answer, or a stream whose first event decided its status.

    `error(exc, headers)` renders a ByokError (the headers carry the overhead and, for a stream
    that never started, its request id and attempts); `complete(result, served)` renders a whole
    answer; `renderer(served)` makes the stream renderer once the stream has started.
    `keepalive(renderer)`, when given, is sent whenever the provider was silent for `KEEPALIVE_S`
    (a reasoning model's long pause would otherwise look like a dead connection to a proxy).
    """
    grant = grant_of(request)
    if grant is not None:  # a gateway key: its allow-list first, before any upstream call
        try:
            await check_model(grant, req.model, provider, lambda: get_handler().route(req, provider))
        except ByokError as exc:
            return error(exc, {})
    before_ms = time_in_byok_ms(request)
    if stream:
        agen, first = await open_stream(
            req, provider=provider, user_id=user_id, interface=interface, before_ms=before_ms, grant=grant
        )
        if isinstance(first, StreamFailed):
            return error(first.error, {**overhead_headers(first.error), **failed_headers(first)})
        served = served_stream(first)
        writer = renderer(served)
        body = render_stream(agen, first, writer)
        if keepalive is not None:
            body = keep_alive(body, lambda: keepalive(writer), every=KEEPALIVE_S)
        return streaming_response(body, served.headers())
    try:
        result = await get_handler().chat(
            req, provider=provider, user_id=user_id, interface=interface, before_ms=before_ms, grant=grant
        )
    except ByokError as exc:
        return error(exc, overhead_headers(exc))
    return complete(result, served_result(result))
