"""byok's own chat endpoint, `POST /api/chat`: its request/response shape and error shape.

Errors go through the management API's exception handler (`byok.api.exceptions`: `code`,
`message`, and a 422 listing every bad field); streaming is SSE events `delta`, `tool_call`,
`done`, `error` (`render_byok`). Who asks, the handler, headers and streaming are `chat_entry`'s.
"""

from __future__ import annotations

from typing import Any

import orjson
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, HttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from pydantic import ValidationError
from rest_framework import exceptions as drf

from byok.api import chat_entry as entry
from byok.api.exceptions import exception_handler
from byok.api.render_byok import ByokStreamRenderer
from byok.gateway.handler import ChatResult
from byok.providers.types import ChatRequest, ChatResponse
from byok.schemas.base import problems
from byok.schemas.byok_chat import ByokChatRequest
from byok.schemas.carry import thinking_blocks, tool_call_dict

__all__ = ["byok_chat", "parse_byok_chat"]


def _byok_error(exc: Exception, extra: dict[str, str] | None = None) -> HttpResponse:
    """An error in byok's shape, through the management API's exception handler; `extra` are
    `chat_entry.answer`'s headers (overhead, a failed stream's request id and attempts)."""
    drf_response = exception_handler(exc, {})
    headers = {k: v for k, v in drf_response.items() if k.lower() != "content-type"}
    return entry.json_response(drf_response.data, drf_response.status_code, {**headers, **(extra or {})})


def parse_byok_chat(body: Any) -> tuple[ChatRequest, str | None, bool]:
    """A `POST /api/chat` body -> (request, provider, stream); drf.ValidationError (422) listing every bad field."""
    if not isinstance(body, dict):
        raise drf.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    try:
        return ByokChatRequest.model_validate(body).to_request()
    except ValidationError as exc:
        errors: dict[str, list[str]] = {}
        for p in problems(exc):
            errors.setdefault("stop" if p.loc[0] == "stop" else p.param or "non_field_errors", []).append(
                f"{p.phrase[0].upper()}{p.phrase[1:]}."
            )
        raise drf.ValidationError(errors) from None


def _message_dict(answer: ChatResponse) -> dict[str, Any]:
    """The assistant message; `thinking` (signed blocks) and tool calls' `thought_signature` go back next turn."""
    message = {
        "role": "assistant",
        "content": answer.text,
        "reasoning": answer.reasoning,
        "refusal": answer.refusal,
        "tool_calls": [tool_call_dict(tc) for tc in answer.tool_calls],
    }
    blocks = thinking_blocks(answer.thinking)
    if blocks:
        message["thinking"] = blocks
    return message


@csrf_exempt
async def byok_chat(request: HttpRequest) -> HttpResponseBase:
    """`POST /api/chat`: byok's own shape, streaming as SSE with `"stream": true`."""
    try:
        if request.method != "POST":
            raise drf.MethodNotAllowed(request.method or "")
        user = await entry.authenticate(request)
        try:
            raw = entry.read_body(request)
        except RequestDataTooBig as exc:
            return _byok_error(exc)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise drf.ParseError("The body is not valid JSON.") from None
        req, provider, stream = parse_byok_chat(body)
    except drf.APIException as exc:
        return _byok_error(exc)
    return await entry.answer(
        request,
        req,
        user_id=user.pk,
        provider=provider,
        interface="rest",
        stream=stream,
        error=_byok_error,
        complete=_complete,
        renderer=lambda served: ByokStreamRenderer(),
    )


def _complete(result: ChatResult, served: entry.Served) -> HttpResponse:
    answer = result.response
    finish = "tool_calls" if answer.tool_calls and answer.finish_reason == "stop" else answer.finish_reason
    body = {
        "id": result.request_id,
        "provider": result.provider,
        "model": result.model,
        "key_hint": result.key_hint,
        "attempts": [a.to_dict() for a in result.attempts],
        "latency_ms": round(result.latency_ms, 2),
        "failover_ms": round(result.failover_ms, 2),
        "message": _message_dict(answer),
        "finish_reason": finish,
        "usage": (answer.usage.to_dict() if answer.usage else None),
    }
    return entry.json_response(body, headers=served.headers())
