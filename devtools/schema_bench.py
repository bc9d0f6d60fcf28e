"""Hot-path cost of validating a typical chat body: byok's schema, a minimal pydantic v2 one, DRF serializers.

    .venv/bin/python -m devtools.schema_bench [--rounds 15] [--per-round 400]

Each candidate takes the raw request bytes and returns a `ChatRequest` (decode + validate + build);
the three run interleaved, round after round, in one process, and the median per-request time of
the rounds is printed. "byok schema" is the production parser (`byok.schemas.openai_chat`: pydantic
models with every rule of the dialect); the minimal pydantic and the DRF schemas below state the
main rules (roles, content string or text parts, numbers in range, stop count, tools), so they
compare the two libraries like for like. Figures: docs/benchmarks.md.
"""

from __future__ import annotations

import argparse
import os
import statistics
import time
from typing import Annotated, Any, Literal

import django
import orjson

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
os.environ.setdefault("BYOK_LOCAL_SECRETS", "1")
django.setup()

from pydantic import BaseModel, ConfigDict, Field  # noqa: E402
from rest_framework import serializers  # noqa: E402

from byok.api.openai_compat import parse_chat_completion  # noqa: E402
from byok.providers.types import ChatRequest, Message, Tool  # noqa: E402
from byok.schemas import rules  # noqa: E402

BODY = orjson.dumps(
    {
        "model": "openai/gpt-4o-mini",
        "messages": [
            {"role": "system", "content": "You are a concise assistant. Answer in at most three sentences."},
            {"role": "user", "content": "What is the capital of France, and why is it historically important?"},
            {
                "role": "assistant",
                "content": "Paris. It has been the political and cultural centre of France for centuries.",
            },
            {
                "role": "user",
                "content": [{"type": "text", "text": "And its population?"}, {"type": "text", "text": "Roughly."}],
            },
        ],
        "temperature": 0.3,
        "top_p": 0.9,
        "max_tokens": 256,
        "stop": ["\n\n"],
        "stream": True,
        "tools": [
            {
                "type": "function",
                "function": {
                    "name": "lookup",
                    "description": "Look a fact up.",
                    "parameters": {"type": "object", "properties": {"q": {"type": "string"}}},
                },
            }
        ],
    }
)


# -- pydantic v2 ---------------------------------------------------------------------------------------


class PText(BaseModel):
    model_config = ConfigDict(extra="forbid")
    type: Literal["text"]
    text: str


class PMessage(BaseModel):
    model_config = ConfigDict(extra="forbid")
    role: Literal["system", "developer", "user", "assistant", "tool"]
    content: str | list[PText] | None = None
    tool_call_id: str | None = None
    name: str | None = None


class PFunction(BaseModel):
    name: Annotated[str, Field(pattern=r"^[A-Za-z0-9_-]{1,64}$")]
    description: str = ""
    parameters: dict[str, Any] | None = None


class PTool(BaseModel):
    type: Literal["function"]
    function: PFunction


class PChat(BaseModel):
    model_config = ConfigDict(extra="forbid")
    model: Annotated[str, Field(min_length=1)]
    messages: Annotated[list[PMessage], Field(min_length=1, max_length=rules.MAX_MESSAGES)]
    temperature: Annotated[float | None, Field(ge=0, le=2)] = None
    top_p: Annotated[float | None, Field(ge=0, le=1)] = None
    max_tokens: Annotated[int | None, Field(ge=1, le=rules.MAX_TOKENS, strict=True)] = None
    stop: str | Annotated[list[str], Field(max_length=rules.MAX_STOP)] | None = None
    stream: bool = False
    tools: list[PTool] | None = None


def _text(content: Any) -> str | None:
    if content is None or isinstance(content, str):
        return content
    return rules.join_parts(p.text if hasattr(p, "text") else p["text"] for p in content)


def via_pydantic(raw: bytes) -> ChatRequest:
    body = PChat.model_validate_json(raw)
    return ChatRequest(
        model=body.model,
        messages=tuple(
            Message(role="system" if m.role == "developer" else m.role, content=_text(m.content)) for m in body.messages
        ),
        tools=tuple(
            Tool(
                name=t.function.name,
                description=t.function.description,
                parameters=t.function.parameters or {"type": "object", "properties": {}},
            )
            for t in body.tools or ()
        ),
        temperature=body.temperature,
        top_p=body.top_p,
        max_tokens=body.max_tokens,
        stop=(body.stop,) if isinstance(body.stop, str) else tuple(body.stop or ()),
        stream=body.stream,
    )


# -- DRF serializers -----------------------------------------------------------------------------------


class DMessage(serializers.Serializer):
    role = serializers.ChoiceField(["system", "developer", "user", "assistant", "tool"])
    content = serializers.JSONField(required=False, allow_null=True)
    tool_call_id = serializers.CharField(required=False, allow_null=True)
    name = serializers.CharField(required=False, allow_null=True)

    def validate_content(self, value: Any) -> Any:
        if value is None or isinstance(value, str):
            return value
        if not isinstance(value, list) or not all(
            isinstance(p, dict) and p.get("type") == "text" and isinstance(p.get("text"), str) for p in value
        ):
            raise serializers.ValidationError("A string or an array of text parts.")
        return value


class DFunction(serializers.Serializer):
    name = serializers.RegexField(r"^[A-Za-z0-9_-]{1,64}$")
    description = serializers.CharField(required=False, allow_blank=True, default="")
    parameters = serializers.DictField(required=False, allow_null=True)


class DTool(serializers.Serializer):
    type = serializers.ChoiceField(["function"])
    function = DFunction()


class DChat(serializers.Serializer):
    model = serializers.CharField()
    messages = DMessage(many=True, allow_empty=False, max_length=rules.MAX_MESSAGES)  # type: ignore[call-arg]  # ListSerializer's
    temperature = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=2)
    top_p = serializers.FloatField(required=False, allow_null=True, min_value=0, max_value=1)
    max_tokens = serializers.IntegerField(required=False, allow_null=True, min_value=1, max_value=rules.MAX_TOKENS)
    stop = serializers.JSONField(required=False, allow_null=True)
    stream = serializers.BooleanField(required=False, default=False)
    tools = DTool(many=True, required=False)


def via_drf(raw: bytes) -> ChatRequest:
    s = DChat(data=orjson.loads(raw))
    if not s.is_valid():
        raise ValueError(s.errors)
    body = s.validated_data
    stop = body.get("stop")
    return ChatRequest(
        model=body["model"],
        messages=tuple(
            Message(role="system" if m["role"] == "developer" else m["role"], content=_text(m.get("content")))
            for m in body["messages"]
        ),
        tools=tuple(
            Tool(
                name=t["function"]["name"],
                description=t["function"]["description"],
                parameters=t["function"].get("parameters") or {"type": "object", "properties": {}},
            )
            for t in body.get("tools") or ()
        ),
        temperature=body.get("temperature"),
        top_p=body.get("top_p"),
        max_tokens=body.get("max_tokens"),
        stop=(stop,) if isinstance(stop, str) else tuple(stop or ()),
        stream=body["stream"],
    )


def via_byok(raw: bytes) -> ChatRequest:
    return parse_chat_completion(raw).request


CANDIDATES = {"byok schema (pydantic)": via_byok, "pydantic v2 minimal": via_pydantic, "DRF serializer": via_drf}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rounds", type=int, default=15)
    parser.add_argument("--per-round", type=int, default=400)
    args = parser.parse_args()
    results = {name: fn(BODY) for name, fn in CANDIDATES.items()}
    assert len({(r.model, r.messages, r.max_tokens, r.stop) for r in results.values()}) == 1, results
    times: dict[str, list[float]] = {name: [] for name in CANDIDATES}
    for _ in range(args.rounds):
        for name, fn in CANDIDATES.items():
            start = time.perf_counter()
            for _ in range(args.per_round):
                fn(BODY)
            times[name].append((time.perf_counter() - start) / args.per_round * 1e6)
    print(
        f"{len(BODY)}-byte chat body, {args.rounds} rounds x {args.per_round}, median us per "
        f"parse+validate+ChatRequest:"
    )
    for name, samples in times.items():
        print(f"  {name:22s} {statistics.median(samples):8.1f} us  (min {min(samples):.1f}, max {max(samples):.1f})")


if __name__ == "__main__":
    main()
