"""A parsed Anthropic Messages request (`byok.schemas.anthropic`) -> byok's normalised `ChatRequest`.

    chat = to_chat_request(parse_messages(body), betas=("prompt-caching-2024-07-31",))

- `system` (a string or text blocks) becomes a system turn;
- text and image blocks become `content`, or `parts` when there are images or cache breakpoints;
- `tool_use` blocks become the assistant turn's `tool_calls` (arguments as JSON text), `thinking`
  and `redacted_thinking` blocks its `thinking` (signatures and data kept for the next turn);
- a user turn's `tool_result` blocks become `tool` turns placed before its other content
  (OpenAI-style providers want results right after the calls), with `is_error` kept;
- `tool_choice` auto / any / none / tool -> "auto" / "required" / "none" / the tool's name,
  `disable_parallel_tool_use` -> `parallel_tool_calls=False`;
- `thinking` enabled -> `thinking_budget` = its `budget_tokens`, disabled -> 0, adaptive -> the
  provider's default; `metadata.user_id` -> `user`; `top_k` as given.
"""

from __future__ import annotations

from typing import Any

import orjson

from byok.providers.types import CacheControl as CacheHint
from byok.providers.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, Thinking, Tool, ToolCall
from byok.schemas import rules
from byok.schemas.anthropic import (
    AnthropicContentBlock,
    AnthropicImageBlock,
    AnthropicMessagesRequest,
    AnthropicRedactedThinkingBlock,
    AnthropicRequestBase,
    AnthropicTextBlock,
    AnthropicThinkingBlock,
    AnthropicToolParam,
    AnthropicToolResultBlock,
    AnthropicToolUseBlock,
    AnthropicUrlSource,
)

__all__ = ["to_chat_request"]


def _cache(block: AnthropicTextBlock | AnthropicImageBlock | AnthropicToolParam) -> CacheHint | None:
    cc = block.cache_control
    return CacheHint(type=cc.type, ttl=cc.ttl) if cc is not None else None


def _part(block: AnthropicTextBlock | AnthropicImageBlock) -> ContentPart:
    if isinstance(block, AnthropicTextBlock):
        return TextPart(text=block.text, cache_control=_cache(block))
    source = block.source
    if isinstance(source, AnthropicUrlSource):
        return ImagePart(url=source.url, cache_control=_cache(block))
    return ImagePart(data=source.data, media_type=source.media_type, cache_control=_cache(block))


def _content(blocks: list[AnthropicTextBlock | AnthropicImageBlock]) -> dict[str, Any]:
    """Message fields for text and image blocks: plain `content` when that says it all, else `parts`."""
    if any(isinstance(b, AnthropicImageBlock) or b.cache_control is not None for b in blocks):
        return {"parts": tuple(_part(b) for b in blocks)}
    return {"content": rules.join_parts(b.text for b in blocks if isinstance(b, AnthropicTextBlock))}


def _result(block: AnthropicToolResultBlock, name: str) -> Message:
    if block.content is None or isinstance(block.content, str):
        fields: dict[str, Any] = {"content": block.content or ""}
    else:
        fields = _content(list(block.content))
    return Message(role="tool", tool_call_id=block.tool_use_id, name=name, is_error=bool(block.is_error), **fields)


def _assistant(blocks: list[AnthropicContentBlock], names: dict[str, str]) -> Message | None:
    calls, thinking, shown = [], [], []
    for b in blocks:
        if isinstance(b, AnthropicToolUseBlock):
            names[b.id] = b.name
            calls.append(ToolCall(id=b.id, name=b.name, arguments=orjson.dumps(b.input).decode()))
        elif isinstance(b, AnthropicThinkingBlock):
            thinking.append(Thinking(text=b.thinking, signature=b.signature or None))
        elif isinstance(b, AnthropicRedactedThinkingBlock):
            thinking.append(Thinking(redacted=b.data))
        elif isinstance(b, AnthropicTextBlock) and (b.text or b.cache_control):
            shown.append(b)
    if not (shown or calls or thinking):
        return None
    fields = _content(list(shown)) if shown else {}
    return Message(role="assistant", tool_calls=tuple(calls), thinking=tuple(thinking), **fields)


def _messages(req: AnthropicRequestBase) -> list[Message]:
    out: list[Message] = []
    if isinstance(req.system, str):
        out.append(Message(role="system", content=req.system))
    elif req.system:
        out.append(Message(role="system", **_content(list(req.system))))
    names: dict[str, str] = {}  # tool_use id -> tool name (Gemini wants the name on results)
    for m in req.messages:
        blocks: list[AnthropicContentBlock] = (
            [AnthropicTextBlock(type="text", text=m.content)] if isinstance(m.content, str) else m.content
        )
        if m.role == "assistant":
            turn = _assistant(blocks, names)
            if turn is not None:
                out.append(turn)
            continue
        # A user turn: its tool results first (OpenAI-style providers want them right after the calls).
        out += [_result(b, names[b.tool_use_id]) for b in blocks if isinstance(b, AnthropicToolResultBlock)]
        shown = [b for b in blocks if isinstance(b, (AnthropicTextBlock, AnthropicImageBlock))]
        if shown:
            out.append(Message(role="user", **_content(shown)))
    return out


_CHOICE = {"auto": "auto", "any": "required", "none": "none"}


def to_chat_request(req: AnthropicRequestBase, *, betas: tuple[str, ...] = ()) -> ChatRequest:
    """The normalised request every adapter speaks; `betas` from the `anthropic-beta` header."""
    tools = tuple(
        Tool(name=t.name, description=t.description, parameters=t.input_schema, cache_control=_cache(t))
        for t in req.parsed_tools()
    )
    choice, parallel = None, None
    if req.tool_choice is not None:
        choice = req.tool_choice.name if req.tool_choice.type == "tool" else _CHOICE[req.tool_choice.type]
        if req.tool_choice.disable_parallel_tool_use:
            parallel = False
    budget = None
    if req.thinking is not None and req.thinking.type != "adaptive":
        budget = req.thinking.budget_tokens if req.thinking.type == "enabled" else 0
    common: dict[str, Any] = {
        "model": req.model,
        "messages": tuple(_messages(req)),
        "tools": tools,
        "tool_choice": choice,
        "parallel_tool_calls": parallel,
        "thinking_budget": budget,
        "betas": betas,
    }
    if not isinstance(req, AnthropicMessagesRequest):
        return ChatRequest(**common)
    return ChatRequest(
        **common,
        temperature=req.temperature,
        top_p=req.top_p,
        top_k=req.top_k,
        max_tokens=req.max_tokens,
        stop=tuple(s for s in req.stop_sequences or () if s),
        stream=req.stream,
        user=req.metadata.user_id if req.metadata else None,
    )
