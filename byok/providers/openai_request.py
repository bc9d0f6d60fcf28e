"""Building an OpenAI-style chat-completions body from a `ChatRequest`, for OpenAI and the vendors that copy it.

What each vendor accepts differs; `Profile` says it, and what a vendor would reject
(or could not honour) is a 400 here, before anything is sent:

- content parts -> `text` / `image_url` parts where images are accepted (OpenAI, and
  `openai_compatible` servers, which decide for themselves); `cache_control` is Anthropic's
  and is left out (OpenAI and DeepSeek cache prompts by themselves);
- `reasoning_effort` passed on; a token `thinking_budget` (the Anthropic dialect's) becomes
  the nearest effort; DeepSeek's `thinking` switch for "none";
- DeepSeek `reasoning_content` goes back on the assistant turns of an exchange that called
  tools, which its thinking mode requires, and is left out elsewhere, where it is ignored:
  https://api-docs.deepseek.com/guides/thinking_mode ("Tool calls");
- `response_format` json_object / json_schema (name, schema, strict) where supported;
- `parallel_tool_calls` sent with tools only (OpenAI refuses it without); `top_k` only where
  the server knows it; `n` above 1: byok returns one choice, so it is refused rather than
  silently dropped; `logprobs` / `top_logprobs` passed on where the vendor returns them
  (OpenAI, `openai_compatible` servers), refused elsewhere (DeepSeek's thinking mode rejects
  them: https://api-docs.deepseek.com/guides/reasoning_model).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from byok.exceptions import BadRequestError
from byok.providers.types import ChatRequest, ImagePart, Message, TextPart, Tool

__all__ = ["Profile", "build_body", "effort_for_budget"]


@dataclass(frozen=True, kw_only=True, slots=True)
class Profile:
    """What one OpenAI-style vendor accepts."""

    kind: str
    name: str
    max_tokens_field: str = "max_completion_tokens"
    requires_max_tokens: bool = False
    default_max_tokens: int = 4096
    images: bool = True
    json_schema: bool = True
    top_k: bool = False
    parallel_tool_calls: bool = True
    send_user: bool = True
    reasoning_content: bool = False  # send DeepSeek's reasoning_content back across tool turns
    thinking_switch: bool = False  # DeepSeek's {"thinking": {"type": "disabled"}} for effort "none"
    logprobs: bool = False  # returns `logprobs` / `top_logprobs` as OpenAI does


def effort_for_budget(budget: int) -> str | None:
    """The reasoning effort nearest a token budget (None: no reasoning asked)."""
    if budget <= 0:
        return None
    if budget <= 2048:
        return "low"
    return "medium" if budget <= 8192 else "high"


def build_body(req: ChatRequest, profile: Profile) -> dict[str, Any]:
    def bad(message: str) -> BadRequestError:
        return BadRequestError(message, provider=profile.kind)

    if req.n != 1:
        raise bad(f"'n' must be 1 through byok for {profile.name}: byok returns one choice per request.")
    asks_logprobs = req.logprobs or req.top_logprobs is not None
    if asks_logprobs and not profile.logprobs:
        raise bad(f"'logprobs' is not supported through byok for {profile.name}: byok does not return them.")
    if req.top_k is not None and not profile.top_k:
        raise bad(f"'top_k' is not supported by {profile.name}.")
    if req.parallel_tool_calls is False and req.tools and not profile.parallel_tool_calls:
        raise bad(f"'parallel_tool_calls': false cannot be enforced on {profile.name}, which has no such switch.")
    body: dict[str, Any] = {"model": req.model, "messages": messages(req.messages, profile)}
    if req.tools:
        body["tools"] = [{"type": "function", "function": _function(t)} for t in req.tools]
        if req.parallel_tool_calls is not None and profile.parallel_tool_calls:
            body["parallel_tool_calls"] = req.parallel_tool_calls
    if req.tool_choice:
        choice = req.tool_choice
        forced = {"type": "function", "function": {"name": choice}}
        body["tool_choice"] = choice if choice in ("auto", "none", "required") else forced
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k
    if req.max_tokens is not None:
        body[profile.max_tokens_field] = req.max_tokens
    elif profile.requires_max_tokens:
        body[profile.max_tokens_field] = profile.default_max_tokens
    if req.stop:
        body["stop"] = list(req.stop)
    effort = req.reasoning_effort
    if req.thinking_budget is not None:
        effort = effort_for_budget(req.thinking_budget) or "none"  # type: ignore[assignment]
    if effort == "none" and profile.thinking_switch:
        body["thinking"] = {"type": "disabled"}
    elif effort:
        body["reasoning_effort"] = effort
    fmt = req.response_format
    if fmt is not None:
        if fmt.type == "json_schema":
            if not profile.json_schema:
                raise bad(f"'response_format' json_schema is not supported by {profile.name}; use json_object.")
            spec: dict[str, Any] = {"name": fmt.name or "response"}
            if fmt.description:
                spec["description"] = fmt.description
            if fmt.schema is not None:
                spec["schema"] = fmt.schema
            if fmt.strict is not None:
                spec["strict"] = fmt.strict
            body["response_format"] = {"type": "json_schema", "json_schema": spec}
        else:
            body["response_format"] = {"type": fmt.type}
    if asks_logprobs:
        body["logprobs"] = True
        if req.top_logprobs is not None:
            body["top_logprobs"] = req.top_logprobs
    if req.user and profile.send_user:
        body["user"] = req.user
    if req.stream:
        body["stream"] = True
        body["stream_options"] = {"include_usage": True}  # without it no usage arrives at all
    return body


def _function(tool: Tool) -> dict[str, Any]:
    fn: dict[str, Any] = {"name": tool.name, "description": tool.description, "parameters": tool.parameters}
    if tool.strict is not None:
        fn["strict"] = tool.strict
    return fn


def _content(m: Message, profile: Profile) -> str | list[dict[str, Any]]:
    """Plain text where there is no image (every vendor takes a string), else OpenAI's parts."""
    if not m.has_images:
        return m.text or ""
    if not profile.images:
        raise BadRequestError(f"{profile.name} does not accept images.", provider=profile.kind)
    parts: list[dict[str, Any]] = []
    for p in m.parts:
        if isinstance(p, TextPart):
            parts.append({"type": "text", "text": p.text})
        elif isinstance(p, ImagePart):
            image: dict[str, Any] = {"url": p.data_url}
            if p.detail:
                image["detail"] = p.detail
            parts.append({"type": "image_url", "image_url": image})
    return parts


def _tool_exchanges(turns: tuple[Message, ...]) -> set[int]:
    """Indexes of assistant turns inside an exchange (user turn to user turn) that called tools."""
    marked: set[int] = set()
    segment: list[int] = []
    called = False
    for i, m in enumerate((*turns, Message(role="user"))):
        if m.role == "user":
            if called:
                marked.update(segment)
            segment, called = [], False
        elif m.role == "assistant":
            segment.append(i)
            called = called or bool(m.tool_calls)
    return marked


def messages(turns: tuple[Message, ...], profile: Profile) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    # History from a provider without call ids (Gemini) still needs ids here: invent
    # them, and pair each tool result with the oldest open call of its function's name.
    open_calls: dict[str, list[str]] = {}
    reasoning_turns = _tool_exchanges(turns) if profile.reasoning_content else set()
    for turn, m in enumerate(turns):
        if m.role == "assistant":
            if m.has_images:
                raise BadRequestError(f"{profile.name} takes no images in assistant turns.", provider=profile.kind)
            item: dict[str, Any] = {"role": "assistant", "content": m.text}
            if turn in reasoning_turns:
                item["reasoning_content"] = "".join(t.text for t in m.thinking)
            if m.tool_calls:
                calls = item["tool_calls"] = []
                for i, tc in enumerate(m.tool_calls):
                    call_id = tc.id or f"call_{turn}_{i}"
                    open_calls.setdefault(tc.name, []).append(call_id)
                    fn = {"name": tc.name, "arguments": tc.arguments}
                    calls.append({"id": call_id, "type": "function", "function": fn})
            elif item["content"] is None:
                item["content"] = ""
            out.append(item)
        elif m.role == "tool":
            answered = m.tool_call_id
            pending = open_calls.get(m.name or "")
            if pending and answered is None:
                answered = pending.pop(0)
            elif pending and answered in pending:
                pending.remove(answered)
            if m.has_images:
                raise BadRequestError(f"{profile.name} takes tool results as text, not images.", provider=profile.kind)
            out.append({"role": "tool", "tool_call_id": answered or "", "content": m.text or ""})
        else:
            out.append({"role": m.role, "content": _content(m, profile)})
    return out
