"""What byok's own dialects (`POST /api/chat`, the websocket's `chat.request`) carry besides text, both ways.

In: the OpenAI dialect's field types, reused as they are (`byok.schemas.openai_extras`,
`openai_content`): content as a string or parts (`text`, `image_url` by URL or base64 `data:`
URL), an assistant turn's `thinking` blocks (Anthropic's, with their `signature`, or
`redacted_thinking` with its `data`), `response_format`, `reasoning_effort`; a tool call's
Gemini `thought_signature` is a flat field.
Out: `thinking_blocks()` and `tool_call_dict()` give an answer's signed blocks and tool calls in
the shape the client sends back on the next turn (also used by `byok.api.render_openai`). Pure.
"""

from __future__ import annotations

from typing import Any

from byok.providers.types import ContentPart, Message, Role, Thinking, ToolCall

__all__ = ["thinking_blocks", "tool_call_dict", "turn"]


def turn(role: Role, content: str | tuple[ContentPart, ...] | None, **fields: Any) -> Message:
    """A message whose content validation left as text or, when it carries more (images), as parts."""
    if isinstance(content, tuple):
        return Message(role=role, parts=content, **fields)
    return Message(role=role, content=content, **fields)


def thinking_blocks(blocks: tuple[Thinking, ...]) -> list[dict[str, Any]]:
    """Signed thinking blocks, to be sent back next turn: `{"type": "thinking", "thinking", "signature"}`
    or `{"type": "redacted_thinking", "data"}` (the shape other gateways use for Anthropic reasoning).
    Unsigned reasoning is left out: it is the answer's `reasoning` text."""
    out: list[dict[str, Any]] = []
    for b in blocks:
        if b.redacted:
            out.append({"type": "redacted_thinking", "data": b.redacted})
        elif b.signature:
            out.append({"type": "thinking", "thinking": b.text, "signature": b.signature})
    return out


def tool_call_dict(call: ToolCall) -> dict[str, Any]:
    """A tool call of an answer in byok's shape; `thought_signature` (Gemini) only when the provider gave one."""
    out: dict[str, Any] = {"id": call.id, "name": call.name, "arguments": call.arguments}
    if call.thought_signature:
        out["thought_signature"] = call.thought_signature
    return out
