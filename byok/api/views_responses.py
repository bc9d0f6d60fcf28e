"""The OpenAI Responses endpoint: `POST /v1/responses`, stateless, in front of any provider.

The body is parsed by `byok.schemas.responses`, the answer rendered by `byok.api.render_responses`;
who asks, the handler call, headers and streaming are `chat_entry`'s, errors are OpenAI's shape
(`views_openai`), so the official SDK's `client.responses.create` / `.stream` work unchanged and
raise their typed exceptions. An `X-Byok-Provider` request header names a provider explicitly.
Usage is recorded with the interface `responses`. While the provider is silent a stream carries an
SSE comment (`: keep-alive`) now and then, which SSE clients, the SDKs included, skip.

byok stores nothing: `store` is accepted but the answer says `"store": false`, and
`GET /v1/responses/{id}` is not served.
"""

from __future__ import annotations

import time

from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt

from byok.api import chat_entry as entry
from byok.api.render_responses import render_response
from byok.api.render_responses_stream import ResponsesStream
from byok.api.sse import KEEPALIVE_COMMENT
from byok.api.views_openai import byok_error, read_openai_post
from byok.gateway.handler import ChatResult
from byok.schemas.responses import parse_responses

__all__ = ["responses"]


@csrf_exempt
async def responses(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/responses`."""
    read = await read_openai_post(request, parse_responses)
    if isinstance(read, HttpResponse):
        return read
    user, parsed = read
    created = int(time.time())

    def complete(result: ChatResult, served: entry.Served) -> HttpResponse:
        body = render_response(
            result.response,
            response_id=f"resp_{result.request_id}",
            created_at=created,
            model=f"{served.provider}/{served.model}",
            echo=parsed.echo,
        )
        return entry.json_response(body, headers=served.headers())

    def renderer(served: entry.Served) -> ResponsesStream:
        return ResponsesStream(f"resp_{served.request_id}", created, f"{served.provider}/{served.model}", parsed.echo)

    return await entry.answer(
        request,
        parsed.request,
        user_id=user.pk,
        provider=request.headers.get("x-byok-provider") or None,
        interface="responses",
        stream=parsed.stream,
        error=byok_error,
        complete=complete,
        renderer=renderer,
        keepalive=lambda _stream: KEEPALIVE_COMMENT,  # no Responses event means "still there": a comment
    )
