"""Anthropic Messages wire format.

Stream order as the API sends it: message_start, content_block_start, ping,
content_block_delta..., content_block_stop (per block: thinking, then text or
tool_use), message_delta (stop_reason, cumulative output_tokens), message_stop.
"""

from __future__ import annotations

import os
from typing import Any

import orjson

from devtools.fakeprovider.answer import Answer, Prompt, PromptError, count_words, text_of
from devtools.fakeprovider.errors import anthropic_error
from devtools.fakeprovider.settings import Settings
from devtools.fakeprovider.streaming import StreamPlan

__all__ = ["models_list", "read_prompt", "render_json", "render_stream"]

MODELS = ("claude-sonnet-4-20250514", "claude-3-5-haiku-20241022", "claude-opus-4-20250514")
SIGNATURE = "ZmFrZXByb3ZpZGVyLXNpZ25hdHVyZQ=="  # opaque to clients, like the real one; checked when sent back


def read_prompt(body: dict[str, Any]) -> Prompt:
    model = body.get("model")
    if not isinstance(model, str) or not model:
        raise PromptError("model: Field required")
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages:
        raise PromptError("messages: Field required")
    max_tokens = body.get("max_tokens")
    if not isinstance(max_tokens, int) or isinstance(max_tokens, bool) or max_tokens < 1:
        raise PromptError("max_tokens: Field required")
    texts = [text_of(body.get("system"))] + [
        text_of(m.get("content")) for m in messages[:10_000] if isinstance(m, dict)
    ]
    last = messages[-1]
    last_user = text_of(last.get("content")) if isinstance(last, dict) and last.get("role") == "user" else None
    tool = None
    tools = body.get("tools")
    if isinstance(tools, list) and tools and isinstance(tools[0], dict) and isinstance(tools[0].get("name"), str):
        tool = (tools[0]["name"], tools[0].get("input_schema") or {})
    thinking = body.get("thinking")
    if isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"):
        _check_thinking(messages)
    return Prompt(
        model=model,
        stream=body.get("stream") is True,
        input_tokens=count_words(texts),
        last_user_text=last_user,
        tool=tool,
        max_tokens=max_tokens,
        reasoning=isinstance(thinking, dict) and thinking.get("type") in ("enabled", "adaptive"),
    )


def _check_thinking(messages: list[Any]) -> None:
    """What Anthropic checks with thinking on: signatures are its own, and a tool loop's last assistant
    turn opens with its thinking block (https://docs.anthropic.com/en/docs/build-with-claude/extended-thinking)."""
    for i, m in enumerate(messages[:10_000]):
        content = m.get("content") if isinstance(m, dict) else None
        for j, block in enumerate(content if isinstance(content, list) else ()):
            if isinstance(block, dict) and block.get("type") == "thinking" and block.get("signature") != SIGNATURE:
                raise PromptError(f"messages.{i}.content.{j}: Invalid `signature` in `thinking` block")
    assistants = [i for i, m in enumerate(messages) if isinstance(m, dict) and m.get("role") == "assistant"]
    if not assistants:
        return
    last = assistants[-1]
    content = messages[last].get("content")
    blocks = [b for b in content if isinstance(b, dict)] if isinstance(content, list) else []
    if any(b.get("type") == "tool_use" for b in blocks) and blocks[0].get("type") not in (
        "thinking",
        "redacted_thinking",
    ):
        raise PromptError(
            f"messages.{last}.content.0.type: Expected `thinking` or `redacted_thinking`, but found "
            f"`{blocks[0].get('type')}`. When `thinking` is enabled, a final `assistant` message must start with a "
            "thinking block (preceeding the lastmost set of `tool_use` and `tool_result` blocks)."
        )


def _stop_reason(answer: Answer) -> str:
    return "tool_use" if answer.tool_name else "max_tokens" if answer.truncated else "end_turn"


def _output_tokens(answer: Answer) -> int:
    return answer.output_tokens + len(answer.reasoning)


def _usage(prompt: Prompt, output: int) -> dict[str, Any]:
    return {
        "input_tokens": prompt.input_tokens,
        "cache_creation_input_tokens": 0,
        "cache_read_input_tokens": 0,
        "output_tokens": output,
        "service_tier": "standard",
    }


def _ids() -> tuple[str, str]:
    return "msg_" + os.urandom(12).hex(), "toolu_" + os.urandom(12).hex()


def render_json(prompt: Prompt, answer: Answer) -> bytes:
    msg_id, tool_id = _ids()
    content: list[dict[str, Any]] = []
    if answer.reasoning:
        content.append({"type": "thinking", "thinking": "".join(answer.reasoning), "signature": SIGNATURE})
    if answer.tool_name:
        content.append({"type": "tool_use", "id": tool_id, "name": answer.tool_name, "input": answer.tool_args})
    else:
        content.append({"type": "text", "text": answer.text})
    return orjson.dumps(
        {
            "id": msg_id,
            "type": "message",
            "role": "assistant",
            "model": prompt.model,
            "content": content,
            "stop_reason": _stop_reason(answer),
            "stop_sequence": None,
            "usage": _usage(prompt, _output_tokens(answer)),
        }
    )


def _event(name: bytes, data: bytes) -> bytes:
    return b"event: " + name + b"\ndata: " + data + b"\n\n"


def _block_start(index: int, block: bytes) -> bytes:
    return _event(
        b"content_block_start", b'{"type":"content_block_start","index":%d,"content_block":%s}' % (index, block)
    )


def _block_stop(index: int) -> bytes:
    return _event(b"content_block_stop", b'{"type":"content_block_stop","index":%d}' % index)


def _delta(index: int, kind: bytes, field: bytes, value: str) -> bytes:
    return _event(
        b"content_block_delta",
        b'{"type":"content_block_delta","index":%d,"delta":{"type":"%s","%s":%s}}'
        % (index, kind, field, orjson.dumps(value)),
    )


def render_stream(prompt: Prompt, answer: Answer, s: Settings) -> StreamPlan:
    msg_id, tool_id = _ids()
    message: dict[str, Any] = {
        "id": msg_id,
        "type": "message",
        "role": "assistant",
        "model": prompt.model,
        "content": [],
        "stop_reason": None,
        "stop_sequence": None,
        "usage": _usage(prompt, 1),
    }
    start = _event(b"message_start", orjson.dumps({"type": "message_start", "message": message}))
    ping = _event(b"ping", b'{"type": "ping"}')
    chunks: list[bytes] = []
    index = 0
    if answer.reasoning:
        head = start + _block_start(0, b'{"type":"thinking","thinking":"","signature":""}') + ping
        chunks.extend(_delta(0, b"thinking_delta", b"thinking", p) for p in answer.reasoning)
        chunks[-1] += _delta(0, b"signature_delta", b"signature", SIGNATURE) + _block_stop(0)
        index = 1
        prefix = b""
    else:
        head, prefix = start, ping  # ping follows the first block start, as the API does
    if answer.tool_name:
        block = b'{"type":"tool_use","id":"%s","name":%s,"input":{}}' % (
            tool_id.encode(),
            orjson.dumps(answer.tool_name),
        )
        body = [_delta(index, b"input_json_delta", b"partial_json", f) for f in answer.tool_fragments]
    else:
        block = b'{"type":"text","text":""}'
        body = [_delta(index, b"text_delta", b"text", p) for p in answer.pieces]
    opener = _block_start(index, block) + prefix
    if body:
        body[0] = opener + body[0]
    else:
        head += opener
    chunks.extend(body)
    tail = (
        _block_stop(index)
        + _event(
            b"message_delta",
            orjson.dumps(
                {
                    "type": "message_delta",
                    "delta": {"stop_reason": _stop_reason(answer), "stop_sequence": None},
                    "usage": {"output_tokens": _output_tokens(answer)},
                }
            ),
        )
        + _event(b"message_stop", b'{"type":"message_stop"}')
    )
    return StreamPlan(
        head=head,
        chunks=chunks,
        tail=tail,
        error_frame=_event(b"error", orjson.dumps(anthropic_error(529))),
        malformed_frame=_event(
            b"content_block_delta", b'{"type":"content_block_delta","index":%d,"delta":{"type":"text_del' % index
        ),
    )


def models_list() -> bytes:
    return orjson.dumps(
        {
            "data": [
                {"type": "model", "id": m, "display_name": m, "created_at": "2025-05-22T00:00:00Z"} for m in MODELS
            ],
            "has_more": False,
            "first_id": MODELS[0],
            "last_id": MODELS[-1],
        }
    )
