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
from rest_framework import exceptions as drf

from byok.api import chat_entry as entry
from byok.api import openai_compat as oa
from byok.api.exceptions import exception_handler
from byok.api.render_byok import ByokStreamRenderer
from byok.gateway.handler import ChatResult
from byok.providers.types import ChatRequest, Message, Tool, ToolCall
from byok.schemas import rules

__all__ = ["byok_chat", "parse_byok_chat"]


def _byok_error(exc: Exception, extra: dict[str, str] | None = None) -> HttpResponse:
    """An error in byok's shape, through the management API's exception handler; `extra` are
    `chat_entry.answer`'s headers (overhead, a failed stream's request id and attempts)."""
    drf_response = exception_handler(exc, {})
    headers = {k: v for k, v in drf_response.items() if k.lower() != "content-type"}
    return entry.json_response(drf_response.data, drf_response.status_code, {**headers, **(extra or {})})


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
        "message": _message_dict(answer.text, answer.reasoning, answer.refusal, answer.tool_calls),
        "finish_reason": finish,
        "usage": (answer.usage.to_dict() if answer.usage else None),
    }
    return entry.json_response(body, headers=served.headers())
