"""The chat endpoints: OpenAI-compatible `/v1/*` and byok's own `POST /api/chat`.

Plain async Django views (DRF's views are synchronous), thin over `BYOKHandler`:

- `POST /v1/chat/completions`, `GET /v1/models`, `GET /v1/models/{id}`: OpenAI's
  wire format and error shape, so the official SDK raises its typed exceptions.
  An `X-Byok-Provider` request header names a provider explicitly.
- `POST /api/chat`: byok's request/response shape and error shape
  (`byok.api.exceptions`), streaming as SSE events `delta`, `tool_call`, `done`, `error`.

Every answer carries `x-byok-provider`, `x-byok-attempts`, `x-byok-failover-ms`,
`x-byok-request-id` and `x-byok-key-hint`.

Hot path: one token lookup through `BearerOrTokenAuthentication`, whose
in-process cache answers on the event loop (a miss goes to a thread for its
query), and nothing else synchronous before the first byte; the handler
caches providers and keys and writes usage after the answer. A stream's first event is pulled from the handler before
the
response starts, so a failure before the first token (every provider down,
unknown provider) is an ordinary JSON error with its status, never a 200
followed by an error. A client that goes away cancels the view's task; the
handler's generator is closed in a `finally`, which closes the upstream
request at once.
"""

from __future__ import annotations

import logging
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import orjson
from asgiref.sync import sync_to_async
from django.core.exceptions import RequestDataTooBig, SynchronousOnlyOperation
from django.http import HttpRequest, HttpResponse, StreamingHttpResponse
from django.http.response import HttpResponseBase
from django.views.decorators.csrf import csrf_exempt
from rest_framework import exceptions as drf
from rest_framework.authentication import SessionAuthentication

from byok.api import openai_compat as oa
from byok.api import render_openai
from byok.api.authentication import BearerOrTokenAuthentication
from byok.api.exceptions import exception_handler
from byok.api.render_byok import ByokStreamRenderer
from byok.api.sse import SSE_CONTENT_TYPE, SSE_HEADERS
from byok.exceptions import ByokError, GatewayError, StreamInterruptedError
from byok.gateway.handler import ChatResult, get_handler
from byok.overhead import HEADER as OVERHEAD_HEADER
from byok.overhead import overhead_header, time_in_byok_ms
from byok.providers.types import (
    ChatRequest,
    GatewayEvent,
    Message,
    StreamDone,
    StreamFailed,
    StreamStarted,
    Tool,
    ToolCall,
)
from byok.schemas import rules

__all__ = ["byok_chat", "chat_completions", "model_detail", "models"]

log = logging.getLogger("byok.api")

_token_auth = BearerOrTokenAuthentication()
_session_auth = SessionAuthentication()
JSON = "application/json"


class InternalError(GatewayError):
    """Something in byok broke mid-stream; the client gets an error event instead of a silent close."""

    code = "internal_error"
    status_code = 500
    default_message = "byok failed while streaming the answer."


# -- authentication -------------------------------------------------------------------------------


async def authenticate(request: HttpRequest):
    """The requesting user: a byok token (`Token`/`Bearer`), else a browser session with CSRF enforced.

    Raises DRF's NotAuthenticated / AuthenticationFailed (401) or PermissionDenied (403).
    """
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


# -- what every answer says about how it was served --------------------------------------------


@dataclass(frozen=True, slots=True)
class Served:
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


def _served_result(result: ChatResult) -> Served:
    return Served(
        result.provider,
        result.model,
        result.key_hint,
        len(result.attempts),
        result.failover_ms,
        result.request_id,
        result.overhead_ms,
    )


def _served_stream(started: StreamStarted) -> Served:
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


def _json(body: Any, status: int = 200, headers: dict[str, str] | None = None) -> HttpResponse:
    return HttpResponse(orjson.dumps(body), status=status, content_type=JSON, headers=headers)


def _read_body(request: HttpRequest) -> bytes:
    """The request body; RequestDataTooBig above DATA_UPLOAD_MAX_MEMORY_SIZE."""
    return request.body


async def _open(req: ChatRequest, *, provider: str | None, user_id: int, interface: str, before_ms: float = 0.0):
    """Start a stream and pull its first event: StreamStarted, or StreamFailed when no target could serve it."""
    agen = get_handler().stream(req, provider=provider, user_id=user_id, interface=interface, before_ms=before_ms)
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


def _streaming(body: AsyncIterator[bytes], headers: dict[str, str]) -> StreamingHttpResponse:
    response = StreamingHttpResponse(body, content_type=SSE_CONTENT_TYPE)
    for name, value in {**SSE_HEADERS, **headers}.items():
        response[name] = value
    return response


# -- OpenAI-compatible ------------------------------------------------------------------------------


def _openai_error(status: int, message: str, code: str | None, param: str | None = None, headers=None) -> HttpResponse:
    return _json(render_openai.error_body(status, message, code, param), status, headers)


def _overhead(exc: Exception) -> dict[str, str]:
    """The header for an error the handler raised (its overhead is known); else none (see byok.overhead)."""
    ms = getattr(exc, "overhead_ms", None)
    return {OVERHEAD_HEADER: overhead_header(ms)} if ms is not None else {}


def _openai_byok_error(exc: ByokError, extra: dict[str, str] | None = None) -> HttpResponse:
    status, body, headers = render_openai.error_response(exc)
    return _json(body, status, {**headers, **_overhead(exc), **(extra or {})})


def _openai_auth_error(exc: drf.APIException) -> HttpResponse:
    if isinstance(exc, drf.PermissionDenied):
        return _openai_error(403, str(exc.detail), "permission_denied")
    return _openai_error(401, str(exc.detail), "invalid_api_key", headers={"WWW-Authenticate": 'Bearer realm="byok"'})


def _method_not_allowed(allowed: str) -> HttpResponse:
    return _openai_error(405, f"Method not allowed; use {allowed}.", "method_not_allowed", headers={"Allow": allowed})


@csrf_exempt
async def chat_completions(request: HttpRequest) -> HttpResponseBase:
    """`POST /v1/chat/completions`."""
    if request.method != "POST":
        return _method_not_allowed("POST")
    try:
        user = await authenticate(request)
    except (drf.NotAuthenticated, drf.AuthenticationFailed, drf.PermissionDenied) as exc:
        return _openai_auth_error(exc)
    try:
        parsed = oa.parse_chat_completion(_read_body(request))
    except RequestDataTooBig:
        return _openai_error(413, "The request body is too large.", "payload_too_large")
    except oa.InvalidRequest as exc:
        return _openai_error(400, exc.message, exc.code, exc.param)
    provider = request.headers.get("x-byok-provider") or None
    created = int(time.time())
    if parsed.stream:
        return await _openai_stream(parsed, provider, user.pk, created, time_in_byok_ms(request))
    try:
        result = await get_handler().chat(
            parsed.request, provider=provider, user_id=user.pk, interface="openai", before_ms=time_in_byok_ms(request)
        )
    except ByokError as exc:
        return _openai_byok_error(exc)
    served = _served_result(result)
    body = render_openai.render_completion(
        result.response,
        completion_id=f"chatcmpl-{result.request_id}",
        created=created,
        model=f"{served.provider}/{served.model}",
        legacy=parsed.legacy_functions,
    )
    return _json(body, headers=served.headers())


async def _openai_stream(
    parsed: oa.ParsedChat, provider: str | None, user_id: int, created: int, before_ms: float
) -> HttpResponseBase:
    agen, first = await _open(
        parsed.request, provider=provider, user_id=user_id, interface="openai", before_ms=before_ms
    )
    if isinstance(first, StreamFailed):
        return _openai_byok_error(
            first.error, {"x-byok-request-id": first.request_id, "x-byok-attempts": str(len(first.attempts))}
        )
    served = _served_stream(first)
    writer = render_openai.ChunkWriter(
        f"chatcmpl-{served.request_id}",
        created,
        f"{served.provider}/{served.model}",
        include_usage=parsed.include_usage,
        legacy=parsed.legacy_functions,
    )
    return _streaming(_openai_chunks(agen, first, writer), served.headers())


async def _openai_chunks(agen, first, writer: render_openai.ChunkWriter) -> AsyncIterator[bytes]:
    try:
        event = first
        while event is not None:
            if isinstance(event, StreamDone):
                await _drain(agen)
                yield writer.done(event.finish_reason, event.usage)
                return
            if isinstance(event, StreamFailed):
                await _drain(agen)
                yield writer.failed(event.error)
                return
            chunk = writer.event(event)
            if chunk is not None:
                yield chunk
            event = await anext(agen, None)
        yield writer.failed(StreamInterruptedError("The stream ended without a final event."))
    except Exception:
        log.exception("chat stream failed inside byok")
        yield writer.failed(InternalError())
    finally:
        await agen.aclose()  # closes the upstream request when the client went away first


@csrf_exempt
async def models(request: HttpRequest) -> HttpResponse:
    """`GET /v1/models`."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await authenticate(request)
    except (drf.NotAuthenticated, drf.AuthenticationFailed, drf.PermissionDenied) as exc:
        return _openai_auth_error(exc)
    return _json(render_openai.model_list(await get_handler().list_providers()))


@csrf_exempt
async def model_detail(request: HttpRequest, model: str) -> HttpResponse:
    """`GET /v1/models/{id}` (ids may contain a slash: `<provider>/<model>`)."""
    if request.method != "GET":
        return _method_not_allowed("GET")
    try:
        await authenticate(request)
    except (drf.NotAuthenticated, drf.AuthenticationFailed, drf.PermissionDenied) as exc:
        return _openai_auth_error(exc)
    for item in render_openai.model_list(await get_handler().list_providers())["data"]:
        if item["id"] == model:
            return _json(item)
    return _openai_error(404, f"The model '{model}' does not exist.", "model_not_found", "model")


# -- byok's own shape -------------------------------------------------------------------------------


def _byok_error(exc: Exception, extra: dict[str, str] | None = None) -> HttpResponse:
    """An error in byok's shape, through the management API's exception handler."""
    drf_response = exception_handler(exc, {})
    headers = {k: v for k, v in drf_response.items() if k.lower() != "content-type"}
    return _json(drf_response.data, drf_response.status_code, {**headers, **_overhead(exc), **(extra or {})})


_CHAT_FIELDS = frozenset(
    {"messages", "provider", "model", "temperature", "top_p", "max_tokens", "stop", "tools", "tool_choice", "stream"}
)
_BYOK_ROLES = ("system", "user", "assistant", "tool")


class _Errors(dict):
    def add(self, field: str, message: str) -> None:
        self.setdefault(field, []).append(message)


def _optional_str(body: dict, name: str, errors: _Errors, *, max_len: int = 200) -> str | None:
    value = body.get(name)
    if value is None:
        return None
    if not isinstance(value, str) or len(value) > max_len:
        errors.add(name, f"A string of at most {max_len} characters.")
        return None
    problem = rules.stored_text_problem(value)
    if problem:
        errors.add(name, f"This field {problem}.")
        return None
    return value.strip() or None


def _byok_tool_calls(raw: Any, field: str, errors: _Errors) -> tuple[ToolCall, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add(field, "A list of tool calls.")
        return ()
    calls = []
    for j, call in enumerate(raw):
        where = f"{field}[{j}]"
        if not isinstance(call, dict) or not isinstance(call.get("name"), str) or not call["name"]:
            errors.add(where, "An object with a `name`, an `id` and `arguments`.")
            continue
        arguments = call.get("arguments", "{}")
        if isinstance(arguments, dict):
            arguments = orjson.dumps(arguments).decode()
        if not isinstance(arguments, str):
            errors.add(f"{where}.arguments", "JSON text or an object.")
            continue
        call_id = call.get("id")
        if call_id is not None and not isinstance(call_id, str):
            errors.add(f"{where}.id", "A string.")
            continue
        calls.append(ToolCall(id=call_id, name=call["name"], arguments=arguments))
    return tuple(calls)


def _byok_messages(raw: Any, errors: _Errors) -> tuple[Message, ...]:
    if not isinstance(raw, list) or not raw:
        errors.add("messages", "A non-empty list of messages.")
        return ()
    if len(raw) > rules.MAX_MESSAGES:
        errors.add("messages", f"At most {rules.MAX_MESSAGES} messages.")
        return ()
    out = []
    for i, m in enumerate(raw):
        where = f"messages[{i}]"
        if not isinstance(m, dict):
            errors.add(where, "An object with a `role` and `content`.")
            continue
        role = m.get("role")
        if role not in _BYOK_ROLES:
            errors.add(f"{where}.role", f"One of: {', '.join(_BYOK_ROLES)}.")
            continue
        content = m.get("content")
        if content is not None and not isinstance(content, str):
            errors.add(f"{where}.content", "A string.")
            continue
        problem = rules.content_problem(content) if content else None
        if problem:
            errors.add(f"{where}.content", f"This field {problem}.")
            continue
        calls = _byok_tool_calls(m.get("tool_calls"), f"{where}.tool_calls", errors) if role == "assistant" else ()
        if content is None and not (role == "assistant" and calls):
            errors.add(f"{where}.content", "This field is required.")
            continue
        tool_call_id, name = m.get("tool_call_id"), m.get("name")
        if (
            role == "tool"
            and not (isinstance(tool_call_id, str) and tool_call_id)
            and not (isinstance(name, str) and name)
        ):
            errors.add(
                f"{where}.tool_call_id", "A tool result needs the `tool_call_id` (or the function `name`) it answers."
            )
            continue
        out.append(
            Message(
                role=role,
                content=content,
                tool_calls=calls,
                tool_call_id=tool_call_id if role == "tool" and isinstance(tool_call_id, str) else None,
                name=name if role == "tool" and isinstance(name, str) else None,
            )
        )
    return tuple(out)


def _byok_tools(raw: Any, errors: _Errors) -> tuple[Tool, ...]:
    if raw is None:
        return ()
    if not isinstance(raw, list):
        errors.add("tools", "A list of tools.")
        return ()
    tools = []
    for i, t in enumerate(raw):
        where = f"tools[{i}]"
        name = t.get("name") if isinstance(t, dict) else None
        if not isinstance(name, str) or not oa._FUNCTION_NAME.match(name):
            errors.add(f"{where}.name", "1-64 letters, digits, underscores or dashes.")
            continue
        description, parameters = t.get("description") or "", t.get("parameters")
        if not isinstance(description, str):
            errors.add(f"{where}.description", "A string.")
            continue
        if parameters is not None and not isinstance(parameters, dict):
            errors.add(f"{where}.parameters", "A JSON schema object.")
            continue
        tools.append(
            Tool(name=name, description=description, parameters=parameters or {"type": "object", "properties": {}})
        )
    return tuple(tools)


def _byok_number(body: dict, name: str, low: float, high: float, errors: _Errors) -> float | None:
    value = body.get(name)
    if value is None:
        return None
    if rules.number_problem(value, low, high):
        errors.add(name, f"A number between {low:g} and {high:g}.")
        return None
    return float(value)


def parse_byok_chat(body: Any) -> tuple[ChatRequest, str | None, bool]:
    """A `POST /api/chat` body -> (request, provider, stream); drf.ValidationError (422) listing every bad field."""
    if not isinstance(body, dict):
        raise drf.ValidationError({"non_field_errors": ["The body must be a JSON object."]})
    errors = _Errors()
    for name in sorted(set(body) - _CHAT_FIELDS):
        errors.add(name, "Unknown field.")
    messages = _byok_messages(body.get("messages"), errors)
    tools = _byok_tools(body.get("tools"), errors)
    provider = _optional_str(body, "provider", errors, max_len=64)
    model = _optional_str(body, "model", errors) or ""
    tool_choice = _optional_str(body, "tool_choice", errors, max_len=64)
    if tool_choice and tool_choice not in ("auto", "none", "required") and tool_choice not in {t.name for t in tools}:
        errors.add("tool_choice", "auto, none, required, or the name of one of the tools.")
    max_tokens = body.get("max_tokens")
    if max_tokens is not None and rules.int_problem(max_tokens):
        errors.add("max_tokens", f"An integer from 1 to {rules.MAX_TOKENS}.")
    stop = body.get("stop")
    if isinstance(stop, str):
        stop = [stop]
    if stop is not None and (
        not isinstance(stop, list) or len(stop) > rules.MAX_STOP or not all(isinstance(s, str) for s in stop)
    ):
        errors.add("stop", f"A string or a list of at most {rules.MAX_STOP} strings.")
        stop = None
    stream = body.get("stream", False)
    if stream is not None and not isinstance(stream, bool):
        errors.add("stream", "true or false.")
    temperature = _byok_number(body, "temperature", *rules.TEMPERATURE, errors)
    top_p = _byok_number(body, "top_p", *rules.TOP_P, errors)
    if errors:
        raise drf.ValidationError(dict(errors))
    req = ChatRequest(
        model=model,
        messages=messages,
        tools=tools,
        tool_choice=tool_choice,
        temperature=temperature,
        top_p=top_p,
        max_tokens=max_tokens,
        stop=tuple(s for s in stop or () if s),
        stream=bool(stream),
    )
    return req, provider, bool(stream)


def _message_dict(text, reasoning, refusal, tool_calls) -> dict[str, Any]:
    return {
        "role": "assistant",
        "content": text,
        "reasoning": reasoning,
        "refusal": refusal,
        "tool_calls": [{"id": tc.id, "name": tc.name, "arguments": tc.arguments} for tc in tool_calls],
    }


@csrf_exempt
async def byok_chat(request: HttpRequest) -> HttpResponseBase:
    """`POST /api/chat`: byok's own shape, streaming as SSE with `"stream": true`."""
    try:
        if request.method != "POST":
            raise drf.MethodNotAllowed(request.method or "")
        user = await authenticate(request)
        try:
            raw = _read_body(request)
        except RequestDataTooBig as exc:
            return _byok_error(exc)
        try:
            body = orjson.loads(raw)
        except orjson.JSONDecodeError:
            raise drf.ParseError("The body is not valid JSON.") from None
        req, provider, stream = parse_byok_chat(body)
    except drf.APIException as exc:
        return _byok_error(exc)
    if stream:
        return await _byok_stream(req, provider, user.pk, time_in_byok_ms(request))
    try:
        result = await get_handler().chat(
            req, provider=provider, user_id=user.pk, interface="rest", before_ms=time_in_byok_ms(request)
        )
    except ByokError as exc:
        return _byok_error(exc)
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
        "message": _message_dict(answer.text, answer.reasoning, answer.refusal, answer.tool_calls),
        "finish_reason": finish,
        "usage": (answer.usage.to_dict() if answer.usage else None),
    }
    return _json(body, headers=_served_result(result).headers())


async def _byok_stream(req: ChatRequest, provider: str | None, user_id: int, before_ms: float) -> HttpResponseBase:
    agen, first = await _open(req, provider=provider, user_id=user_id, interface="rest", before_ms=before_ms)
    if isinstance(first, StreamFailed):
        return _byok_error(
            first.error, {"x-byok-request-id": first.request_id, "x-byok-attempts": str(len(first.attempts))}
        )
    return _streaming(_byok_events(agen, first), _served_stream(first).headers())


async def _byok_events(agen, first) -> AsyncIterator[bytes]:
    """Handler events -> SSE bytes through the dialect's pure renderer (`ByokStreamRenderer`)."""
    render = ByokStreamRenderer()
    try:
        event: GatewayEvent | None = first
        while event is not None:
            if isinstance(event, StreamDone):
                await _drain(agen)
                yield render.done(event)
                return
            if isinstance(event, StreamFailed):
                await _drain(agen)
                yield render.failed(event)
                return
            chunk = render.event(event)
            if chunk:
                yield chunk
            event = await anext(agen, None)
        yield render.error(StreamInterruptedError("The stream ended without a final event."), request_id=None)
    except Exception:
        log.exception("chat stream failed inside byok")
        yield render.error(InternalError(), request_id=None)
    finally:
        await agen.aclose()
