"""The normalised vocabulary every adapter speaks.

Requests come in as a `ChatRequest`; a full answer goes out as a `ChatResponse`;
a stream is a sequence of `StreamEvent`s. Adapters translate between these and
their provider's wire format and nothing else: no I/O policy, no ORM.

The gateway's `stream()` wraps the adapters' events into the complete stream
vocabulary the front ends render (`GatewayEvent`): `StreamStarted` (who
serves it), `StreamEvent`s (deltas, tool calls, usage, finish), then exactly
one `StreamDone` or `StreamFailed`.

    req = ChatRequest(model="gpt-4o", messages=[Message(role="user", content="hi")])

All values are plain frozen dataclasses so they can cross threads, tasks and
processes, and `to_dict()` gives the JSON shape the API and websocket send.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any, Literal

from byok.exceptions import ByokError
from byok.providers.content import (
    REASONING_EFFORTS,
    CacheControl,
    ContentPart,
    ImagePart,
    ReasoningEffort,
    ResponseFormat,
    TextPart,
    Thinking,
)

__all__ = [
    "FINISH_REASONS",
    "REASONING_EFFORTS",
    "CacheControl",
    "ContentPart",
    "ImagePart",
    "ReasoningEffort",
    "ResponseFormat",
    "TextPart",
    "Thinking",
    "ChatRequest",
    "ChatResponse",
    "FinishReason",
    "GatewayEvent",
    "Message",
    "RateLimitInfo",
    "Role",
    "StreamDone",
    "StreamEvent",
    "StreamFailed",
    "StreamStarted",
    "TOKEN_KINDS",
    "Tool",
    "ToolCall",
    "UpstreamRequest",
    "Usage",
]

Role = Literal["system", "user", "assistant", "tool"]
FinishReason = Literal["stop", "length", "tool_calls", "content_filter", "error"]
FINISH_REASONS: tuple[str, ...] = ("stop", "length", "tool_calls", "content_filter", "error")
# Stream events that carry model output: the first of them is the "first token".
TOKEN_KINDS = frozenset(
    {"text_delta", "reasoning_delta", "refusal_delta", "tool_call_start", "tool_call_delta", "redacted_thinking"}
)


@dataclass(frozen=True, kw_only=True, slots=True)
class ToolCall:
    """A function call the model asked for; `arguments` is the raw JSON text.

    `thought_signature` is Gemini's `thoughtSignature` of the `functionCall` part:
    Gemini needs it back, on the same call, in the next turn's history.
    """

    id: str | None
    name: str
    arguments: str = "{}"
    thought_signature: str | None = None


@dataclass(frozen=True, kw_only=True, slots=True)
class Tool:
    """A function the model may call, described by a JSON schema."""

    name: str
    description: str = ""
    parameters: dict[str, Any] = field(default_factory=lambda: {"type": "object", "properties": {}})
    strict: bool | None = None  # OpenAI's strict function schemas
    cache_control: CacheControl | None = None  # an Anthropic cache breakpoint after this tool


@dataclass(frozen=True, kw_only=True, slots=True)
class Message:
    """One conversation turn.

    Content is either `content` (plain text) or `parts` (text and image parts,
    with cache breakpoints); when `parts` is set it is the whole content and
    `content` stays None. `tool_calls` is set on assistant turns that called
    tools, `thinking` on assistant turns whose reasoning must go back (Anthropic
    signatures, DeepSeek reasoning_content). `tool_call_id` (and `name`, the
    function's name, which Gemini needs) and `is_error` are set on tool results.
    """

    role: Role
    content: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    tool_call_id: str | None = None
    name: str | None = None
    parts: tuple[ContentPart, ...] = ()
    thinking: tuple[Thinking, ...] = ()
    is_error: bool = False

    @property
    def text(self) -> str | None:
        """The text of the turn: `content`, or its text parts joined (None when there is none)."""
        if not self.parts:
            return self.content
        texts = [p.text for p in self.parts if isinstance(p, TextPart)]
        return "".join(texts) if texts else None

    @property
    def content_parts(self) -> tuple[ContentPart, ...]:
        """The content as parts, whichever way it was given (plain text becomes one TextPart)."""
        if self.parts:
            return self.parts
        return (TextPart(text=self.content),) if self.content else ()

    @property
    def has_images(self) -> bool:
        return any(isinstance(p, ImagePart) for p in self.parts)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChatRequest:
    """A provider-neutral chat request.

    `tool_choice` is "auto", "none", "required", or a function name to force;
    `parallel_tool_calls` False allows at most one call per turn (None: the
    provider's default). `max_tokens` None lets the adapter (or the handler's
    budget) pick a default. `reasoning_effort` asks for thinking by level,
    `thinking_budget` by tokens (it wins; 0 turns thinking off). `n` above 1 is
    refused; `logprobs` (and `top_logprobs`, alternatives per token) by adapters
    whose provider cannot honour them.
    `betas` are `anthropic-beta` values, sent to Anthropic and ignored elsewhere.
    """

    model: str
    messages: tuple[Message, ...]
    tools: tuple[Tool, ...] = ()
    tool_choice: str | None = None
    temperature: float | None = None
    top_p: float | None = None
    max_tokens: int | None = None
    stop: tuple[str, ...] = ()
    stream: bool = False
    response_format: ResponseFormat | None = None
    reasoning_effort: ReasoningEffort | None = None
    thinking_budget: int | None = None
    n: int = 1
    logprobs: bool = False
    top_logprobs: int | None = None
    parallel_tool_calls: bool | None = None
    top_k: int | None = None
    user: str | None = None
    metadata: dict[str, str] | None = None
    betas: tuple[str, ...] = ()

    @property
    def system(self) -> str | None:
        """All system turns joined, for providers that take the system prompt apart."""
        parts = [text for m in self.messages if m.role == "system" and (text := m.text)]
        return "\n\n".join(parts) if parts else None


@dataclass(frozen=True, kw_only=True, slots=True)
class Usage:
    """Token counts. `output_tokens` includes reasoning tokens where the provider counts them so.

    `input_tokens` counts every prompt token, cached or not. Of those,
    `cached_input_tokens` were read from the provider's prompt cache and
    `cache_creation_input_tokens` were written to it (Anthropic bills writes
    above the input price; `cache_creation_1h_input_tokens` is the share
    written with the one-hour TTL, billed higher still).
    """

    input_tokens: int = 0
    output_tokens: int = 0
    total_tokens: int = 0
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None
    cache_creation_input_tokens: int | None = None
    cache_creation_1h_input_tokens: int | None = None

    @property
    def cache_read_input_tokens(self) -> int | None:
        """Anthropic's name for `cached_input_tokens`."""
        return self.cached_input_tokens

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True, kw_only=True, slots=True)
class ChatResponse:
    """A complete answer, whatever provider produced it."""

    text: str | None
    reasoning: str | None = None  # all reasoning text joined, for dialects that show it as one string
    refusal: str | None = None
    tool_calls: tuple[ToolCall, ...] = ()
    thinking: tuple[Thinking, ...] = ()  # the reasoning blocks with their signatures, to send back next turn
    finish_reason: FinishReason = "stop"
    raw_finish_reason: str | None = None
    stop_sequence: str | None = None  # the request's `stop` string that ended it, when the provider names it
    usage: Usage | None = None
    provider: str = ""
    model: str = ""
    response_id: str | None = None
    # OpenAI's `logprobs.content` entries ({token, logprob, bytes, top_logprobs}), as the provider sent
    # them, when asked for (None: not asked, or the provider gave none)
    logprobs: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def to_message(self) -> Message:
        """The assistant turn this answer becomes in the next request's history, signatures included."""
        return Message(role="assistant", content=self.text, tool_calls=self.tool_calls, thinking=self.thinking)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamEvent:
    """One normalised stream event; `kind` says which fields are set.

    - `text_delta`: `text`, and `logprobs` (OpenAI's `logprobs.content` entries of the
      chunk, carried as sent) when they were asked for
    - `reasoning_delta`: `text` (a piece of the current thinking block)
    - `thinking_signature`: `signature`: the current thinking block is complete
      and signed (Anthropic's `signature_delta`); the next reasoning starts a new block
    - `redacted_thinking`: `signature` holds the block's opaque data
    - `refusal_delta`: `text` (OpenAI structured-output refusals, streamed apart from content)
    - `tool_call_start`: `index`, `tool_call_id`, `name`, and `signature` (Gemini's thoughtSignature) if any
    - `tool_call_delta`: `index`, `arguments` (a fragment of the JSON text)
    - `usage`: `usage` (cumulative; the last one wins)
    - `finish`: `finish_reason`, `raw_finish_reason`, and `stop_sequence` when the provider
      names which of the request's `stop` strings ended it (only Anthropic does)
    - `meta`: `response_id`, `model` (what the provider says it is serving)

    Errors inside a stream are raised as `byok.exceptions.ProviderError`,
    not yielded, so the handler decides between failover and a partial end.
    """

    kind: Literal[
        "text_delta",
        "reasoning_delta",
        "refusal_delta",
        "tool_call_start",
        "tool_call_delta",
        "usage",
        "finish",
        "meta",
        "thinking_signature",
        "redacted_thinking",
    ]
    text: str | None = None
    index: int | None = None
    tool_call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    usage: Usage | None = None
    finish_reason: FinishReason | None = None
    raw_finish_reason: str | None = None
    stop_sequence: str | None = None
    response_id: str | None = None
    model: str | None = None
    signature: str | None = None
    logprobs: list[dict[str, Any]] | None = None

    def to_dict(self) -> dict[str, Any]:
        return {k: v for k, v in asdict(self).items() if v is not None}


@dataclass(frozen=True, kw_only=True, slots=True)
class UpstreamRequest:
    """What an adapter wants sent: the handler owns the client that sends it."""

    method: str
    url: str
    headers: dict[str, str] = field(repr=False)  # carries the key: never in a repr or log line
    json: dict[str, Any]


@dataclass(frozen=True, kw_only=True, slots=True)
class RateLimitInfo:
    """What the provider's rate-limit headers say; None where it did not say.

    Reset values are seconds from now, so they need no clock agreement.
    """

    remaining_requests: int | None = None
    remaining_tokens: int | None = None
    reset_requests_s: float | None = None
    reset_tokens_s: float | None = None


# -- what the gateway's stream() yields around the adapters' events ------------------------------------


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamStarted:
    """A stream's first event: who serves it, once failover is over and before the first token.

    Front ends take routing facts (response headers, the websocket's provider
    of a request) from this event and from nowhere else.
    """

    kind: Literal["started"] = "started"
    provider: str
    model: str
    key_hint: str
    attempts: list[dict[str, Any]]  # every try so far, this one last
    request_id: str
    failover_ms: float  # time spent on the tries that failed
    overhead_ms: float = 0.0  # time in byok up to this event, upstream excluded (the x-byok-overhead-ms header)


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamDone:
    """A stream's successful end: why it finished, what it used, who served it."""

    kind: Literal["done"] = "done"
    finish_reason: str
    raw_finish_reason: str | None
    usage: Usage
    provider: str
    model: str
    key_hint: str
    attempts: list[dict[str, Any]]
    latency_ms: float
    failover_ms: float
    ttft_ms: float | None
    request_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamFailed:
    """A stream's failed end; `partial` is true when tokens had already been sent."""

    kind: Literal["error"] = "error"
    error: ByokError
    partial: bool
    request_id: str
    attempts: list[dict[str, Any]] = field(default_factory=list)


# What `BYOKHandler.stream()` yields: StreamStarted (unless it fails first), StreamEvents,
# then exactly one StreamDone or StreamFailed.
GatewayEvent = StreamStarted | StreamEvent | StreamDone | StreamFailed
