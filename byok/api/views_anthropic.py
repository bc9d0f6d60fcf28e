"""Anthropic's Messages dialect: `POST /v1/messages`, `POST /v1/messages/count_tokens`, and `GET /v1/models`
for Anthropic's clients, in front of every provider kind.

    client = anthropic.Anthropic(base_url="http://byok:8000", api_key="<byok token>")

The body is parsed by `byok.schemas.anthropic`, answers and stream events are rendered by
`render_anthropic`, and everything else (who asks, the handler, failover, usage, headers,
streaming) is `chat_entry`'s, so key pools, budgets and usage records work as on every dialect;
usage rows say `interface="anthropic"`.

Credentials: a byok token or gateway key as `x-api-key` (what the anthropic SDK and Claude Code send
with an API key) or `Authorization: Bearer` (an auth token); `chat_entry.authenticate` reads both.
`anthropic-version` is accepted whatever its value; `anthropic-beta` values go to an Anthropic
upstream and are ignored by the others. An `X-Byok-Provider` header names a provider explicitly,
as on `/v1/chat/completions`.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf

from byok.api import chat_entry as entry
from byok.api import render_anthropic as render
from byok.api import views_openai
from byok.exceptions import ByokError
from byok.gateway.handler import ChatResult
from byok.overhead import time_in_byok_ms
from byok.providers.types import StreamFailed
from byok.schemas import anthropic as schema
from byok.schemas.anthropic_chat import to_chat_request
from byok.tokens import estimate_prompt_tokens

__all__ = ["count_tokens", "messages", "model_detail", "models"]

INTERFACE = "anthropic"
KEEPALIVE_S = 10.0  # a `ping` after this long without an event


def anthropic_error(status: int, message: str, headers: dict[str, str] | None = None, kind: str | None = None):
    return entry.json_response(render.error_body(status, message, kind=kind), status, headers)


def byok_error(exc: ByokError, headers: dict[str, str] | None = None) -> HttpResponse:
    """A handler error in Anthropic's shape (see render_anthropic.error_response)."""
    request_id = (headers or {}).get("x-byok-request-id")
    status, body, own = render.error_response(exc, request_id)
    return entry.json_response(body, status, {**own, **(headers or {})})


def _auth_error(exc: drf.APIException) -> HttpResponse:
    if isinstance(exc, drf.PermissionDenied):
        return anthropic_error(403, str(exc.detail))
    return anthropic_error(401, str(exc.detail).replace("Authorization: Bearer", "x-api-key:"))


def _method_not_allowed(allowed: str) -> HttpResponse:
    response = anthropic_error(405, f"Method not allowed; use {allowed}.", {"Allow": allowed})
    return response


def _betas(request: HttpRequest) -> tuple[str, ...]:
    """`anthropic-beta` values (comma-separated, possibly in several headers)."""
    raw = request.headers.get("anthropic-beta") or ""
    return tuple(b.strip() for b in raw.split(",") if b.strip())


def is_anthropic_client(request: HttpRequest) -> bool:
    """A request from an Anthropic client: it sends `anthropic-version` (the SDK always does) or `x-api-key`."""
    return "HTTP_ANTHROPIC_VERSION" in request.META or "HTTP_X_API_KEY" in request.META


async def _parse(request: HttpRequest, parse):
    """(user, parsed body) or the error response to send."""
    if request.method != "POST":
        return None, _method_not_allowed("POST")
    try:
        user = await entry.authenticate(request)
    except entry.AUTH_ERRORS as exc:
        return None, _auth_error(exc)
    try:
        return user, parse(entry.read_body(request))
    except RequestDataTooBig:
        return None, anthropic_error(413, "The request body is too large.")
    except schema.InvalidMessages as exc:
        return None, anthropic_error(400, exc.message)


@csrf_exempt
async def messages(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/messages`."""
    user, parsed = await _parse(request, schema.parse_messages)
    if user is None:
        return parsed
    req = to_chat_request(parsed, betas=_betas(request))

    def complete(result: ChatResult, served: entry.Served) -> HttpResponse:
        body = render.render_message(
            result.response, message_id=f"msg_{result.request_id}", model=f"{served.provider}/{served.model}"
        )
        return entry.json_response(body, headers=served.headers())

    provider = request.headers.get("x-byok-provider") or None
    if parsed.stream:
        return await _stream(request, req, user.pk, provider)
    return await entry.answer(
        request,
        req,
        user_id=user.pk,
        provider=provider,
        interface=INTERFACE,
        stream=False,
        error=byok_error,
        complete=complete,
        renderer=lambda served: _writer(served, req),
    )


def _writer(served: entry.Served, req) -> render.MessageStreamWriter:
    return render.MessageStreamWriter(
        f"msg_{served.request_id}",
        f"{served.provider}/{served.model}",
        input_tokens=estimate_prompt_tokens(req),
        request_id=served.request_id,
    )


async def _stream(request: HttpRequest, req, user_id: int, provider: str | None) -> HttpResponseBase:
    """`chat_entry.answer`'s stream, with Anthropic's `ping` whenever the provider is silent for a while
    (a reasoning model's minute before its first token would otherwise look like a dead connection)."""
    agen, first = await entry.open_stream(
        req, provider=provider, user_id=user_id, interface=INTERFACE, before_ms=time_in_byok_ms(request)
    )
    if isinstance(first, StreamFailed):
        return byok_error(first.error, {**entry.overhead_headers(first.error), **entry.failed_headers(first)})
    served = entry.served_stream(first)
    writer = _writer(served, req)
    body = keep_alive(entry.render_stream(agen, first, writer), writer.keepalive, every=KEEPALIVE_S)
    return entry.streaming_response(body, served.headers())


async def keep_alive(body: AsyncIterator[bytes], ping: Callable[[], bytes], *, every: float) -> AsyncIterator[bytes]:
    """`body`'s chunks, and `ping()` whenever none came for `every` seconds.

    The next chunk is awaited in a task of its own, so a ping never cancels it; closing this
    generator (the client left) cancels that task and closes `body`, which closes the upstream.
    """
    pending: asyncio.Future[bytes] | None = None
    try:
        while True:
            if pending is None:
                pending = asyncio.ensure_future(anext(body))
            done, _ = await asyncio.wait({pending}, timeout=every)
            if not done:
                yield ping()
                continue
            task, pending = pending, None
            try:
                chunk = task.result()
            except StopAsyncIteration:
                return
            yield chunk
    finally:
        if pending is not None:
            pending.cancel()
            with contextlib.suppress(BaseException):
                await pending
        await body.aclose()  # type: ignore[attr-defined]  # an async generator


@csrf_exempt
async def count_tokens(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/messages/count_tokens`: byok's estimate for the provider `model` routes to (`byok.tokens`).

    Nothing is sent upstream; an unknown provider prefix is the same 404 as on `/v1/messages`.
    """
    user, parsed = await _parse(request, schema.parse_count_tokens)
    if user is None:
        return parsed
    req = to_chat_request(parsed)
    handler = entry.get_handler()
    try:
        targets = await handler.route(req, request.headers.get("x-byok-provider") or None)
    except ByokError as exc:
        return byok_error(exc)
    kind, info = "anthropic", None
    if targets:
        target = targets[0]
        kind = target.provider.kind
        info = handler.gate.current.catalog.lookup(kind, target.model, target.provider.name)
    return entry.json_response({"input_tokens": estimate_prompt_tokens(req, kind, info)})


async def _anthropic_models(request: HttpRequest) -> list[dict]:
    """The same models `GET /v1/models` lists for OpenAI's clients (those a gateway key may use), as Anthropic's
    ModelInfo objects."""
    return [render.model_info(m["id"], m["owned_by"]) for m in await views_openai.listed_models(request)]


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponseBase:
    """`GET /v1/models`: Anthropic's page shape for Anthropic clients, OpenAI's list for everyone else."""
    if not is_anthropic_client(request):
        return await views_openai.models(request)
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await entry.authenticate(request)
    except entry.AUTH_ERRORS as exc:
        return _auth_error(exc)
    return entry.json_response(render.model_page(await _anthropic_models(request)))


@csrf_exempt
async def model_detail(request: HttpRequest, model: str) -> HttpResponseBase:
    """`GET /v1/models/{id}`, in the asking client's dialect."""
    if not is_anthropic_client(request):
        return await views_openai.model_detail(request, model)
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await entry.authenticate(request)
    except entry.AUTH_ERRORS as exc:
        return _auth_error(exc)
    for item in await _anthropic_models(request):
        if item["id"] == model:
            return entry.json_response(item)
    return anthropic_error(404, f"model: {model}")
