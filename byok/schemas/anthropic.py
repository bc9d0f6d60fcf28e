"""Anthropic's Messages API request (`POST /v1/messages`, `.../count_tokens`) as pydantic v2 models.

    req = parse_messages(body_bytes)   # -> AnthropicMessagesRequest, or InvalidMessages (a 400 naming the field)
    chat = to_chat_request(req)                # -> byok's normalised ChatRequest (`anthropic_chat`)

Field names, types and limits follow https://docs.anthropic.com/en/api/messages; errors name the
field the way Anthropic's own do (`messages.0.content.1.tool_use_id: ...`). byok's shared limits
(`byok.schemas.rules`) apply on top: control characters, message count, stop sequences.

Unknown fields: like Anthropic's API, an unknown top-level field is a 400 ("Extra inputs are not
permitted"); the Messages API fields byok does not act on are accepted and ignored (`IGNORED`).
Inside content blocks, tools and `metadata`, unknown keys are ignored (Anthropic adds block
options often, e.g. `citations`). Block types byok cannot carry to every provider (documents,
server tools' results, ...) are a 400 naming the block.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, Literal

import orjson
from pydantic import BaseModel, ConfigDict, Field, StrictBool, StrictInt, StrictStr, ValidationError, model_validator

from byok.schemas import rules

__all__ = [
    "IGNORED",
    "AnthropicCountTokensRequest",
    "InvalidMessages",
    "AnthropicMessagesRequest",
    "AnthropicRequestBase",
    "parse_count_tokens",
    "parse_messages",
]

# Messages API fields byok accepts and ignores: server-side features of Anthropic's own platform
# (containers, MCP servers, context management, service tiers, regions, diagnostics, speed) that
# do not change the shape of the answer. Documented in the README.
IGNORED = frozenset(
    {
        "service_tier",
        "container",
        "context_management",
        "mcp_servers",
        "inference_geo",
        "diagnostics",
        "speed",
        "output_config",
        "cache_control",
        "user_profile_id",
        "workspace_id",
    }
)
_TOOL_NAME = re.compile(r"^[A-Za-z0-9_-]{1,64}$")
_MEDIA_TYPES = ("image/jpeg", "image/png", "image/gif", "image/webp")
_MIN_THINKING_BUDGET = 1024  # Anthropic's own minimum


class InvalidMessages(Exception):
    """The body is not a valid Messages request: a 400 `invalid_request_error` whose message names the field."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message)
        self.message, self.field = message, field


# -- content blocks ---------------------------------------------------------------------------------


class _Block(BaseModel):
    model_config = ConfigDict(extra="ignore", strict=True, frozen=True)


class AnthropicCacheControl(_Block):
    type: Literal["ephemeral"]
    ttl: Literal["5m", "1h"] | None = None


class AnthropicTextBlock(_Block):
    type: Literal["text"]
    text: StrictStr
    cache_control: AnthropicCacheControl | None = None


class AnthropicBase64Source(_Block):
    type: Literal["base64"]
    media_type: Literal["image/jpeg", "image/png", "image/gif", "image/webp"]
    data: StrictStr = Field(min_length=1)


class AnthropicUrlSource(_Block):
    type: Literal["url"]
    url: StrictStr = Field(min_length=1, max_length=8192)


class AnthropicImageBlock(_Block):
    type: Literal["image"]
    source: Annotated[AnthropicBase64Source | AnthropicUrlSource, Field(discriminator="type")]
    cache_control: AnthropicCacheControl | None = None


class AnthropicToolUseBlock(_Block):
    type: Literal["tool_use"]
    id: StrictStr = Field(min_length=1, max_length=256)
    name: StrictStr = Field(min_length=1, max_length=64)
    input: dict[str, Any]
    cache_control: AnthropicCacheControl | None = None


AnthropicResultPart = Annotated[AnthropicTextBlock | AnthropicImageBlock, Field(discriminator="type")]


class AnthropicToolResultBlock(_Block):
    type: Literal["tool_result"]
    tool_use_id: StrictStr = Field(min_length=1, max_length=256)
    content: StrictStr | list[AnthropicResultPart] | None = None
    is_error: StrictBool | None = None
    cache_control: AnthropicCacheControl | None = None


class AnthropicThinkingBlock(_Block):
    type: Literal["thinking"]
    thinking: StrictStr
    signature: StrictStr = ""


class AnthropicRedactedThinkingBlock(_Block):
    type: Literal["redacted_thinking"]
    data: StrictStr


AnthropicContentBlock = Annotated[
    AnthropicTextBlock
    | AnthropicImageBlock
    | AnthropicToolUseBlock
    | AnthropicToolResultBlock
    | AnthropicThinkingBlock
    | AnthropicRedactedThinkingBlock,
    Field(discriminator="type"),
]


class AnthropicMessageParam(_Block):
    role: Literal["user", "assistant"]
    content: StrictStr | list[AnthropicContentBlock]


# -- tools, tool choice, thinking, metadata ------------------------------------------------------------


class AnthropicToolParam(_Block):
    """A client tool (`type` absent or "custom"); Anthropic's server tools are refused in `_check_tools`."""

    type: Literal["custom"] | None = None
    name: StrictStr
    description: StrictStr = ""
    input_schema: dict[str, Any]
    cache_control: AnthropicCacheControl | None = None


class AnthropicToolChoice(_Block):
    type: Literal["auto", "any", "tool", "none"]
    name: StrictStr | None = None
    disable_parallel_tool_use: StrictBool | None = None


class AnthropicThinkingConfig(_Block):
    type: Literal["enabled", "disabled", "adaptive"]
    budget_tokens: StrictInt | None = None


class AnthropicMetadata(_Block):
    user_id: StrictStr | None = Field(default=None, max_length=256)


# -- the requests --------------------------------------------------------------------------------------


class AnthropicRequestBase(BaseModel):
    """What `POST /v1/messages` and `.../count_tokens` share."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)

    model: StrictStr = Field(min_length=1, max_length=256)
    messages: list[AnthropicMessageParam] = Field(min_length=1, max_length=rules.MAX_MESSAGES)
    system: StrictStr | list[AnthropicTextBlock] | None = None
    tools: list[dict[str, Any]] | None = None
    tool_choice: AnthropicToolChoice | None = None
    thinking: AnthropicThinkingConfig | None = None
    # Accepted and ignored (see IGNORED): typed loosely, as Anthropic's platform evolves them.
    service_tier: Any = None
    container: Any = None
    context_management: Any = None
    mcp_servers: Any = None
    inference_geo: Any = None
    diagnostics: Any = None
    speed: Any = None
    output_config: Any = None
    cache_control: Any = None
    user_profile_id: Any = None
    workspace_id: Any = None

    @model_validator(mode="after")
    def _check(self) -> AnthropicRequestBase:
        _check_text(self)
        tools = self.parsed_tools()
        names = [t.name for t in tools]
        if len(set(names)) != len(names):
            raise ValueError("tools: Tool names must be unique.")
        choice = self.tool_choice
        if choice is not None:
            if choice.type == "tool":
                if not choice.name:
                    raise ValueError("tool_choice.name: Field required")
                if choice.name not in names:
                    raise ValueError(f"tool_choice.name: Tool '{choice.name}' not found in tools.")
            elif choice.type == "any" and not tools:
                raise ValueError("tool_choice: 'any' needs tools.")
        _check_tool_results(self.messages)
        return self

    def parsed_tools(self) -> list[AnthropicToolParam]:
        """`tools` as client tools; a server tool (`type` other than "custom") is refused."""
        out = []
        for i, raw in enumerate(self.tools or ()):
            kind = raw.get("type")
            if kind not in (None, "custom"):
                raise ValueError(
                    f"tools.{i}.type: Anthropic's server tools ('{kind}') are not supported by byok; "
                    "give client tools (name, description, input_schema)."
                )
            try:
                tool = AnthropicToolParam.model_validate(raw)
            except ValidationError as exc:
                raise ValueError(_first_error(exc, prefix=f"tools.{i}.")) from None
            if not _TOOL_NAME.match(tool.name):
                raise ValueError(f"tools.{i}.name: String should match pattern '^[a-zA-Z0-9_-]{{1,64}}$'")
            if tool.input_schema.get("type") != "object":
                raise ValueError(f"tools.{i}.input_schema.type: Input should be 'object'")
            out.append(tool)
        return out


class AnthropicMessagesRequest(AnthropicRequestBase):
    """`POST /v1/messages`."""

    max_tokens: StrictInt = Field(ge=1, le=rules.MAX_TOKENS)
    stream: StrictBool = False
    stop_sequences: list[StrictStr] | None = Field(default=None, max_length=rules.MAX_STOP)
    temperature: float | None = Field(default=None, ge=0.0, le=1.0)
    top_p: float | None = Field(default=None, ge=0.0, le=1.0)
    top_k: StrictInt | None = Field(default=None, ge=0)
    metadata: AnthropicMetadata | None = None

    @model_validator(mode="after")
    def _check_thinking(self) -> AnthropicMessagesRequest:
        thinking = self.thinking
        if thinking is not None and thinking.type == "enabled":
            budget = thinking.budget_tokens
            if budget is None:
                raise ValueError("thinking.enabled.budget_tokens: Field required")
            if budget < _MIN_THINKING_BUDGET:
                raise ValueError(f"thinking.enabled.budget_tokens: Input should be >= {_MIN_THINKING_BUDGET}")
            if budget >= self.max_tokens:
                raise ValueError("`max_tokens` must be greater than `thinking.budget_tokens`.")
        for value, where in [(self.metadata and self.metadata.user_id, "metadata.user_id")]:
            if value:
                problem = rules.stored_text_problem(value)
                if problem:
                    raise ValueError(f"{where}: It {problem}.")
        return self


class AnthropicCountTokensRequest(AnthropicRequestBase):
    """`POST /v1/messages/count_tokens`: a Messages request without the answer's settings."""


# -- checks shared by both requests ----------------------------------------------------------------------


def _check_text(req: AnthropicRequestBase) -> None:
    """byok's shared rules (`rules`): no control characters in the model name, nor in message text."""
    problem = rules.stored_text_problem(req.model)
    if problem:
        raise ValueError(f"model: It {problem}.")
    texts: list[tuple[str, str]] = []
    if isinstance(req.system, str):
        texts.append(("system", req.system))
    elif req.system:
        texts += [(f"system.{i}.text", b.text) for i, b in enumerate(req.system)]
    for i, m in enumerate(req.messages):
        if isinstance(m.content, str):
            texts.append((f"messages.{i}.content", m.content))
            continue
        for j, block in enumerate(m.content):
            if isinstance(block, AnthropicTextBlock):
                texts.append((f"messages.{i}.content.{j}.text", block.text))
            elif isinstance(block, AnthropicToolResultBlock) and isinstance(block.content, str):
                texts.append((f"messages.{i}.content.{j}.content", block.content))
    for where, text in texts:
        problem = rules.content_problem(text)
        if problem:
            raise ValueError(f"{where}: It {problem}.")


def _check_tool_results(messages: list[AnthropicMessageParam]) -> None:
    """Blocks in the turns that may carry them; every `tool_result` answers an earlier `tool_use`."""
    seen: set[str] = set()
    for i, m in enumerate(messages):
        if isinstance(m.content, str):
            continue
        for j, block in enumerate(m.content):
            where = f"messages.{i}.content.{j}"
            if m.role == "user" and isinstance(
                block, (AnthropicToolUseBlock, AnthropicThinkingBlock, AnthropicRedactedThinkingBlock)
            ):
                raise ValueError(f"{where}.type: '{block.type}' blocks belong to assistant turns.")
            if m.role == "assistant" and isinstance(block, (AnthropicToolResultBlock, AnthropicImageBlock)):
                raise ValueError(f"{where}.type: '{block.type}' blocks belong to user turns.")
            if isinstance(block, AnthropicToolUseBlock):
                seen.add(block.id)
            elif isinstance(block, AnthropicToolResultBlock) and block.tool_use_id not in seen:
                raise ValueError(
                    f"{where}.tool_use_id: Unexpected `tool_use_id` found in `tool_result` blocks: "
                    f"{block.tool_use_id}. Each `tool_result` block must have a corresponding `tool_use` "
                    "block in an earlier message."
                )


# -- parsing ---------------------------------------------------------------------------------------------


_BRANCH = re.compile(r"^(str|int|bool|float|list\[.*\]|dict\[.*\]|function-.*)$")  # pydantic's union labels


def _location(loc: tuple[Any, ...]) -> str:
    return ".".join(str(part) for part in loc if not (isinstance(part, str) and _BRANCH.match(part)))


def _first_error(exc: ValidationError, prefix: str = "") -> str:
    """Anthropic's style: `<dotted.path>: <message>`; unknown block types said plainly.

    Of a union's errors (`content`: a string or a list of blocks) the deepest is the one that
    explains the input (a list's bad block, not "not a string").
    """
    errors = exc.errors(include_url=False)
    err = max(errors, key=lambda e: len(e["loc"]))
    where = prefix + _location(err["loc"])
    if err["type"] == "union_tag_invalid":
        tag = (err.get("ctx") or {}).get("tag")
        return f"{where}.type: Content blocks of type '{tag}' are not supported by byok."
    if err["type"] == "extra_forbidden":
        return f"{where}: Extra inputs are not permitted"
    if err["type"] == "value_error":
        return str(err["msg"]).removeprefix("Value error, ")
    return f"{where}: {err['msg']}" if where else str(err["msg"])


def _parse(model: type[AnthropicRequestBase], body: bytes | dict[str, Any]) -> Any:
    if isinstance(body, (bytes, bytearray, memoryview, str)):
        try:
            body = orjson.loads(body)
        except orjson.JSONDecodeError:
            raise InvalidMessages("The request body is not valid JSON.") from None
    if not isinstance(body, dict):
        raise InvalidMessages("The request body must be a JSON object.")
    try:
        return model.model_validate(body)
    except ValidationError as exc:
        message = _first_error(exc)
        where = message.partition(": ")[0]
        raise InvalidMessages(message, where if where != message and " " not in where else None) from None


def parse_messages(body: bytes | dict[str, Any]) -> AnthropicMessagesRequest:
    """A `POST /v1/messages` body -> AnthropicMessagesRequest; InvalidMessages (400) when it is not valid."""
    parsed: AnthropicMessagesRequest = _parse(AnthropicMessagesRequest, body)
    return parsed


def parse_count_tokens(body: bytes | dict[str, Any]) -> AnthropicCountTokensRequest:
    """A `POST /v1/messages/count_tokens` body -> AnthropicCountTokensRequest; InvalidMessages (400) when not valid."""
    parsed: AnthropicCountTokensRequest = _parse(AnthropicCountTokensRequest, body)
    return parsed
