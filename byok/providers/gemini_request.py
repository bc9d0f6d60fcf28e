"""Building a Gemini `generateContent` body from a `ChatRequest` (https://ai.google.dev/api/generate-content).

What is translated, and what Gemini cannot do that byok refuses with a 400 before sending:

- turns -> `contents` with roles `user` / `model`, consecutive same-role turns merged;
  system turns -> `systemInstruction`;
- content parts -> `text`, `inlineData` (base64 images) and `fileData` (files Gemini can
  read by URI: its Files API and `gs://`); any other URL is refused, since Gemini does not
  fetch the web (byok's gateway inlines such images first when BYOK_FETCH_IMAGE_URLS allows);
- tool calls -> `functionCall` parts carrying their `thoughtSignature`, which Gemini 3
  requires back (https://ai.google.dev/gemini-api/docs/thought-signatures); history from
  another provider has none, so Gemini 3 gets the documented placeholder that skips the check;
- tool results -> `functionResponse` parts (an error result as `{"error": ...}`);
- `response_format` -> `responseMimeType` application/json (+ `responseJsonSchema`);
  https://ai.google.dev/gemini-api/docs/structured-output
- `reasoning_effort` / `thinking_budget` -> `thinkingConfig`: `thinkingLevel` on Gemini 3,
  `thinkingBudget` within the model's range on 2.5 (https://ai.google.dev/gemini-api/docs/thinking);
- `n` > 1, `logprobs` and `parallel_tool_calls: false` (Gemini has no switch for it): a 400.
"""

from __future__ import annotations

import mimetypes
import re
from typing import Any

import orjson

from byok.exceptions import BadRequestError
from byok.providers.types import ChatRequest, ContentPart, ImagePart, Message, TextPart, ToolCall

__all__ = ["FILE_URIS", "SKIP_SIGNATURE", "build_body", "thinking_config"]

PROVIDER = "gemini"
# The value Gemini documents for function calls whose signature cannot be known (history
# written elsewhere): https://ai.google.dev/gemini-api/docs/thought-signatures#faqs
SKIP_SIGNATURE = "skip_thought_signature_validator"

_TOOL_MODES = {"auto": "AUTO", "none": "NONE", "required": "ANY"}
FILE_URIS = ("https://generativelanguage.googleapis.com/", "gs://")
_GEMINI_3 = re.compile(r"^gemini-3")
# thinkingLevel values per Gemini 3 family: Pro knows low/high, Flash also minimal/medium.
_LEVELS_PRO = {"minimal": "low", "low": "low", "medium": "high", "high": "high", "none": "low"}
_LEVELS_FLASH = {"minimal": "minimal", "low": "low", "medium": "medium", "high": "high", "none": "minimal"}
# Gemini 2.5 thinkingBudget ranges: (model prefix, lowest non-zero, highest, can turn off).
_BUDGETS = (
    ("gemini-2.5-flash-lite", 512, 24576, True),
    ("gemini-2.5-flash", 1, 24576, True),
    ("gemini-2.5-pro", 128, 32768, False),
)
_EFFORT_BUDGETS = {"minimal": 512, "low": 1024, "medium": 8192, "high": 24576}


def _bad(message: str) -> BadRequestError:
    return BadRequestError(message, provider=PROVIDER)


def build_body(req: ChatRequest) -> dict[str, Any]:
    """The JSON body; raises BadRequestError for what Gemini would refuse or cannot honour."""
    if req.n != 1:
        raise _bad("'n' must be 1 for Gemini through byok: byok reads one candidate per answer.")
    if req.logprobs or req.top_logprobs:
        raise _bad("'logprobs' is not supported for Gemini through byok.")
    if req.parallel_tool_calls is False and req.tools and req.tool_choice != "none":
        raise _bad("'parallel_tool_calls': false cannot be enforced on Gemini, which has no such switch.")
    model = req.model.removeprefix("models/")
    body: dict[str, Any] = {"contents": contents(req.messages, gemini_3=bool(_GEMINI_3.match(model)))}
    system = [p for m in req.messages if m.role == "system" for p in m.content_parts]
    if any(isinstance(p, ImagePart) for p in system):
        body["systemInstruction"] = {"parts": [_part(p) for p in system]}
    elif req.system:
        body["systemInstruction"] = {"parts": [{"text": req.system}]}
    if req.tools:
        # parametersJsonSchema takes plain JSON Schema; `parameters` only an OpenAPI subset.
        # https://ai.google.dev/api/caching#FunctionDeclaration
        declarations = []
        for tool in req.tools:
            declaration: dict[str, Any] = {"name": tool.name, "parametersJsonSchema": tool.parameters}
            if tool.description:
                declaration["description"] = tool.description
            declarations.append(declaration)
        body["tools"] = [{"functionDeclarations": declarations}]
    if req.tool_choice:
        mode = _TOOL_MODES.get(req.tool_choice)
        config: dict[str, Any] = {"mode": mode} if mode else {"mode": "ANY", "allowedFunctionNames": [req.tool_choice]}
        body["toolConfig"] = {"functionCallingConfig": config}
    generation: dict[str, Any] = {}
    if req.temperature is not None:
        generation["temperature"] = req.temperature
    if req.top_p is not None:
        generation["topP"] = req.top_p
    if req.top_k is not None:
        generation["topK"] = req.top_k
    if req.max_tokens is not None:
        generation["maxOutputTokens"] = req.max_tokens
    if req.stop:
        generation["stopSequences"] = list(req.stop)
    fmt = req.response_format
    if fmt is not None and fmt.type != "text":
        generation["responseMimeType"] = "application/json"
        if fmt.type == "json_schema" and fmt.schema is not None:
            generation["responseJsonSchema"] = fmt.schema
    thinking = thinking_config(req, model)
    if thinking:
        generation["thinkingConfig"] = thinking
    if generation:
        body["generationConfig"] = generation
    return body


def thinking_config(req: ChatRequest, model: str) -> dict[str, Any] | None:
    """`thinkingConfig` for the asked effort or budget, by model family and within its limits."""
    effort, budget = req.reasoning_effort, req.thinking_budget
    if effort is None and budget is None:
        return None
    if _GEMINI_3.match(model):
        if budget is not None:
            return {"thinkingBudget": budget, "includeThoughts": budget != 0}
        levels = _LEVELS_PRO if "pro" in model else _LEVELS_FLASH
        return {"thinkingLevel": levels[effort or "high"], "includeThoughts": effort != "none"}
    family = next((f for f in _BUDGETS if model.startswith(f[0])), None)
    if family is None:
        if effort == "none" or budget == 0:
            return None  # nothing to turn off
        raise _bad(f"'reasoning_effort' is not supported with {model}: it has no thinking.")
    _, low, high, can_disable = family
    if budget is None:
        budget = 0 if effort == "none" else _EFFORT_BUDGETS[effort or "medium"]
    if budget == 0:
        if not can_disable:
            raise _bad(f"Thinking cannot be turned off on {model} (its thinking budget is {low} to {high} tokens).")
        return {"thinkingBudget": 0}
    return {"thinkingBudget": max(low, min(high, budget)), "includeThoughts": True}


def _part(part: ContentPart) -> dict[str, Any]:
    if isinstance(part, TextPart):
        return {"text": part.text}
    return image_part(part)


def image_part(part: ImagePart) -> dict[str, Any]:
    """`inlineData` for base64 images, `fileData` for files Gemini can read by URI."""
    if part.data is not None:
        if not part.media_type:
            raise _bad("An inline image for Gemini needs its media type (data:<type>;base64,...).")
        return {"inlineData": {"mimeType": part.media_type, "data": part.data}}
    url = part.url or ""
    if not url.startswith(FILE_URIS):
        raise _bad(
            "Gemini cannot fetch image URLs: send the image as base64 (a data: URL) or a Gemini Files API URI, "
            "or ask the administrator to let byok fetch image URLs (BYOK_FETCH_IMAGE_URLS)."
        )
    mime = part.media_type or mimetypes.guess_type(url)[0]
    if not mime:
        raise _bad("Gemini needs the media type of a file URI, and this one's cannot be told from its name.")
    return {"fileData": {"mimeType": mime, "fileUri": url}}


def contents(messages: tuple[Message, ...], *, gemini_3: bool = False) -> list[dict[str, Any]]:
    """Turns in Gemini's shape: user/model only, consecutive same-role turns merged."""
    out: list[dict[str, Any]] = []
    names: dict[str | None, str] = {}  # tool call id -> function name, for results that do not say
    for m in messages:
        if m.role == "system":
            continue
        parts: list[dict[str, Any]] = []
        if m.role == "tool":
            role = "user"
            name = m.name or names.get(m.tool_call_id)
            if not name:
                raise _bad("A tool result must name its function (or answer an earlier tool call) for Gemini.")
            if m.has_images:
                raise _bad("Gemini takes tool results as JSON, not images: send the image in a user turn.")
            # An error result goes in the `error` field Gemini documents for failed calls.
            result = {"error": m.text or ""} if m.is_error else _response_object(m.text)
            parts.append({"functionResponse": {"name": name, "response": result}})
        else:
            role = "model" if m.role == "assistant" else "user"
            parts.extend(_part(p) for p in m.content_parts if not (isinstance(p, TextPart) and not p.text))
            # Gemini 3 checks the signature of the first call of each step; history from
            # elsewhere has none, and the documented placeholder stands in for it.
            unsigned = gemini_3 and m.tool_calls and not any(c.thought_signature for c in m.tool_calls)
            for i, call in enumerate(m.tool_calls):
                names[call.id] = call.name
                part: dict[str, Any] = {"functionCall": {"name": call.name, "args": _arguments(call)}}
                signature = call.thought_signature or (SKIP_SIGNATURE if unsigned and i == 0 else None)
                if signature:
                    part["thoughtSignature"] = signature
                parts.append(part)
        if not parts:
            continue
        if out and out[-1]["role"] == role:
            out[-1]["parts"].extend(parts)
        else:
            out.append({"role": role, "parts": parts})
    return out


def _response_object(content: str | None) -> dict[str, Any]:
    """functionResponse.response must be an object: a JSON object result as-is, anything else wrapped."""
    if not content:
        return {"result": ""}
    try:
        value = orjson.loads(content)
    except orjson.JSONDecodeError:
        return {"result": content}
    return value if isinstance(value, dict) else {"result": value}


def _arguments(call: ToolCall) -> dict[str, Any]:
    try:
        value = orjson.loads(call.arguments or "{}")
    except orjson.JSONDecodeError:
        value = None
    if not isinstance(value, dict):
        raise _bad(
            f"The arguments of the earlier call to tool {call.name!r} are not a JSON object; Gemini needs them as one."
        )
    return value
