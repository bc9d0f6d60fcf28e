"""A quick prompt-size estimate for rate windows (no tokenizer download at run time)."""

from __future__ import annotations

from byok.providers.types import ChatRequest

__all__ = ["estimate_prompt_tokens"]

# About four characters a token for English text; a few tokens of framing per message.
CHARS_PER_TOKEN = 4
PER_MESSAGE = 4


def estimate_prompt_tokens(req: ChatRequest) -> int:
    chars = 0
    for m in req.messages:
        chars += len(m.content or "")
        for call in m.tool_calls:
            chars += len(call.name) + len(call.arguments)
    for tool in req.tools:
        chars += len(tool.name) + len(tool.description) + len(str(tool.parameters))
    return chars // CHARS_PER_TOKEN + PER_MESSAGE * len(req.messages) + 3
