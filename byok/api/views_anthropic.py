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
from byok.schemas import anthropic as schema
from byok.schemas.anthropic_chat import to_chat_request
from byok.tokens import estimate_prompt_tokens

__all__ = ["count_tokens", "messages", "model_detail", "models"]

INTERFACE = "anthropic"


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

    return await entry.answer(
        request,
        req,
        user_id=user.pk,
        provider=request.headers.get("x-byok-provider") or None,
        interface=INTERFACE,
        stream=parsed.stream,
        error=byok_error,
        complete=complete,
        renderer=lambda served: _writer(served, req),
        # A `ping` whenever the provider is silent for a while (`message_start` first if not sent yet).
        keepalive=render.MessageStreamWriter.keepalive,
    )


def _writer(served: entry.Served, req) -> render.MessageStreamWriter:
    return render.MessageStreamWriter(
        f"msg_{served.request_id}",
        f"{served.provider}/{served.model}",
        input_tokens=estimate_prompt_tokens(req),
        request_id=served.request_id,
    )


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
