"""OpenAI's Responses wire format, out: byok's answers -> the `response` object and its output items. Pure.

    body = render_response(answer, response_id=..., created_at=..., model=..., echo=parsed.echo)

Streams are `byok.api.render_responses_stream`, built from the same items.

Output items come in the order a model produces them: `reasoning`, `message` (`output_text`, or a
`refusal` part), then `function_call`s with their `call_id`. `status` is `completed`, or `incomplete`
with `incomplete_details.reason` (`max_output_tokens`, `content_filter`) when the answer was cut.

Reasoning text (DeepSeek `reasoning_content`, Anthropic thinking, Gemini thoughts) is a `reasoning` item's
`summary_text`: what OpenAI shows of its own models' reasoning, and what Responses clients display.
What the next turn needs back (Anthropic thinking signatures, Gemini thought signatures) rides in the
reasoning item's `encrypted_content` (`byok.schemas.responses_carry`).
"""

from __future__ import annotations

from typing import Any

from byok.providers.types import ChatResponse, Usage
from byok.schemas import responses_carry

__all__ = [
    "call_item",
    "message_item",
    "reasoning_item",
    "refusal_part",
    "render_response",
    "response_object",
    "short_id",
    "status_of",
    "text_part",
    "usage_dict",
]

# byok finish reasons that end a response early -> OpenAI's incomplete_details.reason
# ("error": the provider stopped for its own reason, e.g. a malformed function call: no reason to give).
_INCOMPLETE = {"length": "max_output_tokens", "content_filter": "content_filter", "error": None}


def usage_dict(usage: Usage | None) -> dict[str, Any]:
    usage = usage or Usage()
    return {
        "input_tokens": usage.input_tokens,
        # input_tokens counts every prompt token; of those, cache reads and (Anthropic) cache writes
        "input_tokens_details": {
            "cached_tokens": usage.cached_input_tokens or 0,
            "cache_write_tokens": usage.cache_creation_input_tokens or 0,
        },
        "output_tokens": usage.output_tokens,
        "output_tokens_details": {"reasoning_tokens": usage.reasoning_tokens or 0},
        "total_tokens": usage.total_tokens or usage.input_tokens + usage.output_tokens,
    }


def status_of(finish_reason: str | None) -> tuple[str, dict[str, Any] | None]:
    """(status, incomplete_details) for a byok finish reason."""
    if finish_reason in _INCOMPLETE:
        return "incomplete", {"reason": _INCOMPLETE[finish_reason]}
    return "completed", None


def response_object(
    *,
    response_id: str,
    created_at: int,
    model: str,
    echo: dict[str, Any],
    status: str,
    output: list[dict[str, Any]],
    usage: Usage | None = None,
    error: dict[str, Any] | None = None,
    incomplete: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The `response` object, its request parameters echoed as OpenAI echoes them."""
    reasoning = echo.get("reasoning") or {}
    return {
        "id": response_id,
        "object": "response",
        "created_at": created_at,
        "status": status,
        "background": False,
        "error": error,
        "incomplete_details": incomplete,
        "instructions": echo.get("instructions"),
        "max_output_tokens": echo.get("max_output_tokens"),
        "max_tool_calls": None,
        "model": model,
        "output": output,
        "parallel_tool_calls": echo.get("parallel_tool_calls") is not False,
        "previous_response_id": None,
        "reasoning": {"effort": reasoning.get("effort"), "summary": reasoning.get("summary")},
        "store": False,
        "temperature": echo.get("temperature"),
        "text": echo.get("text") or {"format": {"type": "text"}},
        "tool_choice": echo.get("tool_choice") or "auto",
        "tools": echo.get("tools") or [],
        "top_p": echo.get("top_p"),
        "truncation": "disabled",
        "usage": usage_dict(usage) if usage is not None else None,
        "user": echo.get("user"),
        "metadata": echo.get("metadata") or {},
    }


# -- output items ---------------------------------------------------------------------------------------


def message_item(item_id: str, status: str, parts: list[dict[str, Any]]) -> dict[str, Any]:
    return {"id": item_id, "type": "message", "status": status, "role": "assistant", "content": parts}


def text_part(text: str) -> dict[str, Any]:
    return {"type": "output_text", "text": text, "annotations": [], "logprobs": []}


def refusal_part(text: str) -> dict[str, Any]:
    return {"type": "refusal", "refusal": text}


def reasoning_item(item_id: str, text: str | None, carry: str | None = None) -> dict[str, Any]:
    """A `reasoning` item: the reasoning text as its summary; `carry` (signatures) as its encrypted_content."""
    item: dict[str, Any] = {
        "id": item_id,
        "type": "reasoning",
        "summary": [{"type": "summary_text", "text": text}] if text else [],
    }
    if carry:
        item["encrypted_content"] = carry
    return item


def call_item(item_id: str, call_id: str, name: str, arguments: str, status: str) -> dict[str, Any]:
    return {
        "id": item_id,
        "type": "function_call",
        "status": status,
        "arguments": arguments,
        "call_id": call_id,
        "name": name,
    }


def short_id(response_id: str) -> str:
    return response_id.removeprefix("resp_")


def render_response(
    answer: ChatResponse, *, response_id: str, created_at: int, model: str, echo: dict[str, Any]
) -> dict[str, Any]:
    """A whole answer as a `response` object: reasoning, message, then function calls."""
    rid = short_id(response_id)
    reason = "tool_calls" if answer.tool_calls and answer.finish_reason == "stop" else answer.finish_reason
    status, incomplete = status_of(reason)
    call_ids = [call.id or f"call_{rid[:12]}_{i}" for i, call in enumerate(answer.tool_calls)]
    signatures = {cid: c.thought_signature for cid, c in zip(call_ids, answer.tool_calls) if c.thought_signature}
    carry = responses_carry.pack(answer.thinking, signatures)
    output: list[dict[str, Any]] = []
    if answer.reasoning or carry:
        output.append(reasoning_item(f"rs_{rid}", answer.reasoning, carry))
    parts = ([text_part(answer.text)] if answer.text else []) + (
        [refusal_part(answer.refusal)] if answer.refusal else []
    )
    if parts:
        output.append(message_item(f"msg_{rid}", status, parts))
    for i, (call_id, call) in enumerate(zip(call_ids, answer.tool_calls)):
        output.append(call_item(f"fc_{rid}_{i}", call_id, call.name, call.arguments, "completed"))
    return response_object(
        response_id=response_id,
        created_at=created_at,
        model=model,
        echo=echo,
        status=status,
        output=output,
        usage=answer.usage or Usage(),
        incomplete=incomplete,
    )
