"""The OpenAI-compatible endpoints: `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`.

OpenAI's wire format and error shape (`render_openai`), so the official SDK raises its typed
exceptions. An `X-Byok-Provider` request header names a provider explicitly. The body is parsed by
`openai_compat`; everything else (who asks, the handler, headers, streaming) is `chat_entry`'s.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any, TypeVar

from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf

from byok.api import chat_entry as entry
from byok.api import openai_compat as oa
from byok.api import render_openai
from byok.exceptions import ByokError
from byok.gateway.handler import ChatResult
from byok.providers.types import StreamDone, StreamEvent, StreamFailed, StreamStarted

__all__ = ["OpenAIStream", "chat_completions", "model_detail", "models", "read_openai_post"]

T = TypeVar("T")


def openai_error(
    status: int, message: str, code: str | None, param: str | None = None, headers: dict[str, str] | None = None
) -> HttpResponse:
    return entry.json_response(render_openai.error_body(status, message, code, param), status, headers)


def byok_error(exc: ByokError, headers: dict[str, str] | None = None) -> HttpResponse:
    """A handler error in OpenAI's shape, with Retry-After / x-should-retry (see render_openai.error_response);
    `headers` are `chat_entry.answer`'s (overhead, a failed stream's request id and attempts)."""
    status, body, own = render_openai.error_response(exc)
    return entry.json_response(body, status, {**own, **(headers or {})})


def auth_error(exc: drf.APIException) -> HttpResponse:
    if isinstance(exc, drf.PermissionDenied):
        return openai_error(403, str(exc.detail), "permission_denied")
    code = entry.auth_code(exc, "invalid_api_key")
    return openai_error(401, str(exc.detail), code, headers={"WWW-Authenticate": 'Bearer realm="byok"'})


def method_not_allowed(allowed: str) -> HttpResponse:
    return openai_error(405, f"Method not allowed; use {allowed}.", "method_not_allowed", headers={"Allow": allowed})


class OpenAIStream:
    """`chat_entry.StreamRenderer` over `render_openai.ChunkWriter`."""

    def __init__(self, writer: render_openai.ChunkWriter) -> None:
        self.writer = writer

    def event(self, ev: StreamStarted | StreamEvent) -> bytes | None:
        return self.writer.event(ev)

    def done(self, done: StreamDone) -> bytes:
        return self.writer.done(done.finish_reason, done.usage)

    def failed(self, failed: StreamFailed) -> bytes:
        return self.writer.failed(failed.error)

    def error(self, exc: ByokError) -> bytes:
        return self.writer.failed(exc)


async def read_openai_post(request: HttpRequest, parse: Callable[[bytes], T]) -> tuple[Any, T] | HttpResponse:
    """An OpenAI-dialect POST's user and parsed body, or the error answer (405, 401/403, 413, 400 naming `param`)."""
    if request.method != "POST":
        return method_not_allowed("POST")
    try:
        user = await entry.authenticate(request)
    except entry.AUTH_ERRORS as exc:
        return auth_error(exc)
    try:
        return user, parse(entry.read_body(request))
    except RequestDataTooBig:
        return openai_error(413, "The request body is too large.", "payload_too_large")
    except oa.InvalidRequest as exc:
        return openai_error(400, exc.message, exc.code, exc.param)


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/chat/completions`."""
    read = await read_openai_post(request, oa.parse_chat_completion)
    if isinstance(read, HttpResponse):
        return read
    user, parsed = read
    created = int(time.time())

    def complete(result: ChatResult, served: entry.Served) -> HttpResponse:
        body = render_openai.render_completion(
            result.response,
            completion_id=f"chatcmpl-{result.request_id}",
            created=created,
            model=f"{served.provider}/{served.model}",
            legacy=parsed.legacy_functions,
        )
        return entry.json_response(body, headers=served.headers())

    def renderer(served: entry.Served) -> OpenAIStream:
        return OpenAIStream(
            render_openai.ChunkWriter(
                f"chatcmpl-{served.request_id}",
                created,
                f"{served.provider}/{served.model}",
                include_usage=parsed.include_usage,
                legacy=parsed.legacy_functions,
            )
        )

    return await entry.answer(
        request,
        parsed.request,
        user_id=user.pk,
        provider=request.headers.get("x-byok-provider") or None,
        interface="openai",
        stream=parsed.stream,
        error=byok_error,
        complete=complete,
        renderer=renderer,
    )


async def _refuse_get(request: HttpRequest) -> HttpResponse | None:
    """The error answer for a /v1/models request that is not an authenticated GET; None to go on."""
    if request.method != "GET":
        return method_not_allowed("GET")
    try:
        await entry.authenticate(request)
    except entry.AUTH_ERRORS as exc:
        return auth_error(exc)
    return None


async def listed_models(request: HttpRequest) -> list[dict[str, Any]]:
    """The models `GET /v1/models` lists (every dialect's): configured providers' defaults and their catalog
    models, those the caller's gateway key may use."""
    handler = entry.get_handler()
    providers = await handler.list_providers()  # loads the snapshot, and with it the catalog's overrides
    listed = render_openai.model_list(providers, handler.gate.current.catalog)["data"]
    return await entry.allowed_models(request, listed)


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    """`GET /v1/models`."""
    if refused := await _refuse_get(request):
        return refused
    return entry.json_response({"object": "list", "data": await listed_models(request)})


@csrf_exempt
async def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    """`GET /v1/models/{id}` (ids may contain a slash: `<provider>/<model>`)."""
    if refused := await _refuse_get(request):
        return refused
    for item in await listed_models(request):
        if item["id"] == model:
            return entry.json_response(item)
    return openai_error(404, f"The model '{model}' does not exist.", "model_not_found", "model")
