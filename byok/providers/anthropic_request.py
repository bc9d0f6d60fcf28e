"""Building an Anthropic Messages request body from a `ChatRequest` (https://docs.anthropic.com/en/api/messages).

What is translated, and where Anthropic's own rules are checked before sending
(a request Anthropic would refuse for a reason byok can see is a 400 here):

- system turns -> top-level `system` (a list of text blocks when any carries `cache_control`);
- content parts -> `text` / `image` blocks (`source` `url` or `base64`), `cache_control` kept;
- assistant thinking -> `thinking` blocks with their `signature` and `redacted_thinking`
  blocks, first in the turn as Anthropic requires; unsigned reasoning (another provider's)
  is left out, since Anthropic only accepts blocks it signed;
- tool results -> `tool_result` blocks (text or blocks, `is_error`), merged into one user turn;
- `tool_choice` auto/none/required/named -> auto/none/any/tool, `parallel_tool_calls: false`
  -> `disable_parallel_tool_use`;
- `reasoning_effort` / `thinking_budget` -> `thinking.budget_tokens` (>= 1024, < max_tokens);
  https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking
- `response_format` -> `output_config.format` on models with structured outputs
  (https://docs.anthropic.com/en/docs/build-with-claude/structured-outputs), else a forced
  tool named `FORMAT_TOOL` whose input is read back as the answer's text;
- `n` > 1 and `logprobs`: Anthropic has neither, so a 400.
"""

from __future__ import annotations

import re
from typing import Any

import orjson

from byok.exceptions import BadRequestError
from byok.providers.types import (
    ChatRequest,
    ContentPart,
    ImagePart,
    Message,
    TextPart,
    Tool,
    ToolCall,
)

__all__ = ["FORMAT_TOOL", "build_body", "thinking_budget"]

PROVIDER = "anthropic"
# The tool byok forces for response_format on models without structured outputs; its input is the answer.
FORMAT_TOOL = "byok_response_format"

MIN_THINKING_BUDGET = 1024
# reasoning_effort -> thinking.budget_tokens. "minimal" is Anthropic's floor.
EFFORT_BUDGETS = {"minimal": 1024, "low": 2048, "medium": 8192, "high": 24576}
# Room left for the visible answer when the caller gave no max_tokens.
ANSWER_ROOM = 4096
IMAGE_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")

_TOOL_CHOICE = {"auto": "auto", "required": "any", "none": "none"}
# Models before extended thinking (Claude 3 and 3.5); 3.7 and every later model think.
_NO_THINKING = re.compile(r"^claude-(3-(opus|sonnet|haiku)|3-5-|instant|2)")
# Models with structured outputs (output_config.format): Sonnet/Haiku/Opus 4.5 and later, Opus 4.1.
_STRUCTURED = re.compile(r"^claude-(opus-4-1|(sonnet|haiku|opus)-4-[5-9]|(sonnet|haiku|opus)-([5-9]|4-\d\d))")


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message, provider=PROVIDER)


def build_body(req: ChatRequest, default_max_tokens: int) -> dict[str, Any]:
    """The JSON body for `POST /v1/messages`; raises BadRequestError for what Anthropic would refuse."""
    if req.n != 1:
        raise _bad("'n' must be 1 for Anthropic models: the Messages API returns one answer per request.")
    if req.logprobs or req.top_logprobs:
        raise _bad("'logprobs' is not supported by Anthropic models.")
    model = req.model
    budget = thinking_budget(req)
    max_tokens = req.max_tokens
    if budget:
        if max_tokens is None:
            max_tokens = budget + ANSWER_ROOM
        elif max_tokens <= MIN_THINKING_BUDGET:
            raise _bad(f"'max_tokens' must be above {MIN_THINKING_BUDGET} for Anthropic extended thinking.")
        budget = min(budget, max_tokens - 1)
        _check_thinking_sampling(req)
    body: dict[str, Any] = {
        "model": model,
        "max_tokens": max_tokens if max_tokens is not None else default_max_tokens,
        "messages": messages(req.messages),
    }
    system = _system(req.messages)
    if system:
        body["system"] = system
    tools = [_tool(t) for t in req.tools]
    choice = _tool_choice(req, bool(budget))
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        if fmt.type == "json_schema" and fmt.schema is not None and _STRUCTURED.match(model):
            body["output_config"] = {"format": {"type": "json_schema", "schema": fmt.schema}}
        else:
            if budget:
                raise _bad(
                    f"'response_format' {fmt.type} needs a forced tool on {model}, "
                    "which Anthropic does not allow with extended thinking."
                )
            schema = fmt.schema if fmt.type == "json_schema" and fmt.schema else {"type": "object"}
            description = fmt.description or "Give the answer as this tool's input, in the requested JSON shape."
            tools.append({"name": FORMAT_TOOL, "description": description, "input_schema": schema})
            choice = _format_choice(choice, parallel=req.parallel_tool_calls)
    if tools:
        body["tools"] = tools
    if choice:
        body["tool_choice"] = choice
    if budget:
        body["thinking"] = {"type": "enabled", "budget_tokens": budget}
    if req.temperature is not None:
        body["temperature"] = req.temperature
    if req.top_p is not None:
        body["top_p"] = req.top_p
    if req.top_k is not None:
        body["top_k"] = req.top_k
    if req.stop:
        body["stop_sequences"] = list(req.stop)
    user = req.user or (req.metadata or {}).get("user_id")
    if user:
        body["metadata"] = {"user_id": user}  # the only metadata field Anthropic accepts
    if req.stream:
        body["stream"] = True
    return body


def thinking_budget(req: ChatRequest) -> int:
    """Thinking tokens asked for (0: none), checked against the model and Anthropic's floor."""
    if req.thinking_budget is not None:
        budget = req.thinking_budget
        if 0 < budget < MIN_THINKING_BUDGET:
            raise _bad(f"Anthropic's thinking budget must be at least {MIN_THINKING_BUDGET} tokens (got {budget}).")
    elif req.reasoning_effort and req.reasoning_effort != "none":
        budget = EFFORT_BUDGETS[req.reasoning_effort]
    else:
        return 0
    if budget and _NO_THINKING.match(req.model):
        raise _bad(f"'reasoning_effort' is not supported with {req.model}: it has no extended thinking.")
    return budget


def _check_thinking_sampling(req: ChatRequest) -> None:
    # https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking#feature-compatibility
    if req.temperature is not None and req.temperature != 1:
        raise _bad("'temperature' cannot be changed while Anthropic extended thinking is on (leave it unset or 1).")
    if req.top_k is not None:
        raise _bad("'top_k' cannot be set while Anthropic extended thinking is on.")
    if req.top_p is not None and not 0.95 <= req.top_p <= 1:
        raise _bad("'top_p' must be between 0.95 and 1 while Anthropic extended thinking is on.")
    if req.tool_choice not in (None, "auto", "none"):
        raise _bad("'tool_choice' can only be auto or none while Anthropic extended thinking is on.")


def _tool_choice(req: ChatRequest, thinking: bool) -> dict[str, Any] | None:
    choice = req.tool_choice
    out: dict[str, Any] | None
    if choice is None:
        out = {"type": "auto"} if req.parallel_tool_calls is False and req.tools else None
    elif choice in _TOOL_CHOICE:
        out = {"type": _TOOL_CHOICE[choice]}
    else:
        out = {"type": "tool", "name": choice}
    if out is not None and req.parallel_tool_calls is False and out["type"] != "none":
        out["disable_parallel_tool_use"] = True
    return out


def _format_choice(choice: dict[str, Any] | None, *, parallel: bool | None) -> dict[str, Any]:
    """Force the format tool: alone when the caller's tools may not run, else "any" tool."""
    if choice is None or choice["type"] == "none":
        return {"type": "tool", "name": FORMAT_TOOL}
    if choice["type"] == "tool":
        return choice  # the caller's own forced tool comes first
    out: dict[str, Any] = {"type": "any"}
    if parallel is False:
        out["disable_parallel_tool_use"] = True
    return out


def _tool(tool: Tool) -> dict[str, Any]:
    out: dict[str, Any] = {"name": tool.name, "input_schema": tool.parameters}
    if tool.description:
        out["description"] = tool.description
    if tool.strict:
        out["strict"] = True
    if tool.cache_control:
        out["cache_control"] = tool.cache_control.to_anthropic()
    return out


def _system(turns: tuple[Message, ...]) -> str | list[dict[str, Any]] | None:
    system = [m for m in turns if m.role == "system"]
    if not system:
        return None
    parts = [p for m in system for p in m.content_parts]
    if any(isinstance(p, ImagePart) for p in parts):
        raise _bad("Anthropic takes only text in the system prompt, not images.")
    if not any(p.cache_control for p in parts):
        texts = [t for m in system if (t := m.text)]
        return "\n\n".join(texts) if texts else None
    return [_block(p) for p in parts if isinstance(p, TextPart) and p.text]


def _block(part: ContentPart) -> dict[str, Any]:
    block: dict[str, Any]
    if isinstance(part, TextPart):
        block = {"type": "text", "text": part.text}
    else:
        block = {"type": "image", "source": image_source(part)}
    if part.cache_control:
        block["cache_control"] = part.cache_control.to_anthropic()
    return block


def image_source(part: ImagePart) -> dict[str, Any]:
    """An image block's `source`: a URL Anthropic fetches itself, or base64 data of a type it reads."""
    if part.url:
        if not part.url.startswith(("https://", "http://")):
            raise _bad("An image URL for Anthropic must be http(s) or a base64 data: URL.")
        return {"type": "url", "url": part.url}
    if part.media_type not in IMAGE_TYPES:
        raise _bad(f"Anthropic reads images of type {', '.join(IMAGE_TYPES)}, not {part.media_type or 'unknown'}.")
    return {"type": "base64", "media_type": part.media_type, "data": part.data or ""}


def messages(turns: tuple[Message, ...]) -> list[dict[str, Any]]:
    """Turns in Anthropic's shape: user/assistant only, consecutive same-role turns merged."""
    out: list[dict[str, Any]] = []
    for m in turns:
        if m.role == "system":
            continue
        if m.role == "tool":
            role, blocks = "user", [_tool_result(m)]
        elif m.role == "assistant":
            role, blocks = "assistant", _assistant_blocks(m)
        else:
            role = "user"
            blocks = [_block(p) for p in m.content_parts if not (isinstance(p, TextPart) and not p.text)]
        if not blocks:  # Anthropic rejects empty turns and empty text blocks
            continue
        if out and out[-1]["role"] == role:
            previous = out[-1]["content"]
            if role == "user" and blocks[0]["type"] == "tool_result":
                # tool_result blocks must open the user turn, before any text
                at = next((i for i, b in enumerate(previous) if b["type"] != "tool_result"), len(previous))
                previous[at:at] = blocks
            else:
                previous.extend(blocks)
        else:
            out.append({"role": role, "content": blocks})
    return out


def _assistant_blocks(m: Message) -> list[dict[str, Any]]:
    blocks: list[dict[str, Any]] = []
    for thought in m.thinking:
        if thought.redacted:
            blocks.append({"type": "redacted_thinking", "data": thought.redacted})
        elif thought.signature:
            blocks.append({"type": "thinking", "thinking": thought.text, "signature": thought.signature})
    for part in m.content_parts:
        if isinstance(part, ImagePart):
            raise _bad("Anthropic takes images in user turns and tool results, not in assistant turns.")
        if part.text:
            blocks.append(_block(part))
    blocks.extend({"type": "tool_use", "id": c.id, "name": c.name, "input": _arguments(c)} for c in m.tool_calls)
    return blocks


def _tool_result(m: Message) -> dict[str, Any]:
    result: dict[str, Any] = {"type": "tool_result", "tool_use_id": m.tool_call_id}
    if m.parts:
        result["content"] = [_block(p) for p in m.parts if not (isinstance(p, TextPart) and not p.text)]
    elif m.content:
        result["content"] = m.content
    if m.is_error:
        result["is_error"] = True
    return result


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _bad(
            f"The arguments of the earlier call to tool {call.name!r} are not a JSON object; "
            "Anthropic needs them as one."
        )
    return value
