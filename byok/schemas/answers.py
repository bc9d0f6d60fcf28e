"""What the chat endpoints answer, as pydantic models: the OpenAPI document's response schemas.

The renderers (`byok.api.render_openai`, `byok.api.views_byok`) build these bodies as plain dicts
on the hot path; these models only describe them (`byok.api.openapi_chat` publishes them), and the
schema fuzz test (`test_schema_fuzz`) checks every answer against them.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

__all__ = [
    "ByokAttempt",
    "ByokChatResponse",
    "ByokUsage",
    "ChatCompletion",
    "ChatCompletionMessageToolCall",
    "CompletionUsage",
    "Model",
    "ModelList",
    "OpenAIError",
]


class _Answer(BaseModel):
    model_config = ConfigDict(extra="allow")


# -- OpenAI-compatible -------------------------------------------------------------------------------


class FunctionCallOut(_Answer):
    name: str
    arguments: str


class ChatCompletionMessageToolCall(_Answer):
    id: str
    type: Literal["function"]
    function: FunctionCallOut


class PromptTokensDetails(_Answer):
    cached_tokens: int | None = None


class CompletionTokensDetails(_Answer):
    reasoning_tokens: int | None = None


class CompletionUsage(_Answer):
    prompt_tokens: int
    completion_tokens: int
    total_tokens: int
    prompt_tokens_details: PromptTokensDetails | None = None
    completion_tokens_details: CompletionTokensDetails | None = None


class LegacyFunctionCall(_Answer):
    """Legacy: asked with `functions`."""

    name: str | None = None
    arguments: str | None = None


class CompletionMessage(_Answer):
    role: Literal["assistant"]
    content: str | None
    refusal: str | None
    tool_calls: list[ChatCompletionMessageToolCall] | None = None
    function_call: LegacyFunctionCall | None = None
    reasoning_content: str | None = None


class Choice(_Answer):
    index: int
    message: CompletionMessage
    logprobs: dict[str, Any] | None = Field(
        description='`{"content": [{token, logprob, bytes, top_logprobs}], "refusal": null}` when `logprobs`'
        " was asked for, else null."
    )
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "function_call"]


class ChatCompletion(_Answer):
    """OpenAI's `chat.completion` object."""

    id: str
    object: Literal["chat.completion"]
    created: int
    model: str = Field(description="`<provider>/<model>` that answered.")
    choices: list[Choice] = Field(min_length=1, max_length=1)
    usage: CompletionUsage
    system_fingerprint: str | None = Field(default=None, description="Always null.")


class OpenAIErrorDetail(_Answer):
    message: str
    type: str = Field(
        description="e.g. `invalid_request_error`, `authentication_error`, `rate_limit_error`, `upstream_error`."
    )
    param: str | None = Field(description="The offending request parameter, e.g. `messages[0].role`.")
    code: str | None = Field(
        description="e.g. `invalid_type`, `missing_required_parameter`, `invalid_api_key`, `model_not_found`."
    )


class OpenAIError(_Answer):
    """OpenAI's error shape, so the official SDKs raise their typed exceptions."""

    error: OpenAIErrorDetail


class Model(_Answer):
    id: str = Field(description="`<provider>/<default model>` or a bare default model.")
    object: Literal["model"]
    created: int
    owned_by: str = Field(description="The provider's name.")


class ModelList(_Answer):
    object: Literal["list"]
    data: list[Model]


# -- byok's own chat ---------------------------------------------------------------------------------


class ByokAttempt(_Answer):
    provider: str
    key_hint: str
    status: int | None
    error_class: str | None
    ms: float


class ByokUsage(_Answer):
    input_tokens: int
    output_tokens: int
    total_tokens: int
    cached_input_tokens: int | None = None
    reasoning_tokens: int | None = None


class ByokToolCallOut(_Answer):
    id: str | None
    name: str
    arguments: str
    thought_signature: str | None = Field(
        default=None, description="Gemini's signature of the call: send it back with the call on the next turn."
    )


class ByokThinkingBlock(_Answer):
    type: Literal["thinking", "redacted_thinking"]
    thinking: str | None = None
    signature: str | None = None
    data: str | None = Field(default=None, description="A redacted_thinking block's opaque data.")


class ByokAnswerMessage(_Answer):
    role: Literal["assistant"]
    content: str | None
    reasoning: str | None
    refusal: str | None
    tool_calls: list[ByokToolCallOut]
    thinking: list[ByokThinkingBlock] | None = Field(
        default=None,
        description="Signed thinking blocks (Anthropic): send them back unchanged on this assistant turn next time.",
    )


class ByokChatResponse(_Answer):
    """One answer with how byok got it."""

    id: str = Field(description="byok's request id.")
    provider: str
    model: str
    key_hint: str
    attempts: list[ByokAttempt] = Field(description="Every try, failed ones first.")
    latency_ms: float
    failover_ms: float
    message: ByokAnswerMessage
    finish_reason: Literal["stop", "length", "tool_calls", "content_filter", "error"]
    usage: ByokUsage | None
