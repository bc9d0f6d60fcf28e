"""BYOKHandler: registry, routing, chat, streaming, failover, key pools and rotation.

Upstreams are faked with respx; the clock and sleep are injected so no test
waits for real backoff. Recorded provider bodies come from the shared corpus
(`byok/tests/fixtures/corpus`, sources in each sidecar).
"""

from __future__ import annotations

import asyncio
import json
import logging

import httpx
import pytest
import respx
from asgiref.sync import sync_to_async

from byok import registry
from byok.exceptions import (
    AllProvidersFailedError,
    BadRequestError,
    DuplicateNameError,
    InvalidConfigError,
    NoUsableProviderError,
    ProviderNotFoundError,
    RateLimitedError,
)
from byok.models import ApiKey, AuditEvent
from byok.providers.types import ChatRequest, Message, StreamDone, StreamFailed, StreamStarted, Tool, ToolCall
from byok.tests.conftest import CANARY
from byok.tests.providers.replay import corpus_case
from byok.tests.upstream_fakes import (
    ANTHROPIC,
    DEEPSEEK,
    GEMINI,
    GEMINI_STREAM,
    OPENAI,
    anthropic_json,
    ask,
    collect,
    gemini_json,
    openai_chunks,
    openai_json,
    register,
    sse,
    text_of,
    usage_rows,
)

pytestmark = pytest.mark.django_db(transaction=True)


# -- adapters through the handler (owner's plan, adapters issue) ----------------------------------


class TestTokenStreaming:
    async def test_stream_response_openai(self, handler):
        _, body = corpus_case("openai_stream_text_usage_chunk")
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        with respx.mock:
            respx.post(OPENAI).respond(200, headers={"content-type": "text/event-stream"}, content=body)
            events = await collect(handler.stream(ask("Say hello")))
        expected = corpus_case("openai_stream_text_usage_chunk")[0]["expected"]
        assert text_of(events) == expected["text"]
        done = events[-1]
        assert isinstance(done, StreamDone)
        assert done.usage.input_tokens == expected["usage"]["input_tokens"]
        assert done.provider == "openai"

    async def test_stream_response_anthropic(self, handler):
        sidecar, body = corpus_case("anthropic_stream_sdk_basic")
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-3-opus-20240229")
        with respx.mock:
            respx.post(ANTHROPIC).respond(200, headers={"content-type": "text/event-stream"}, content=body)
            events = await collect(handler.stream(ask()))
        assert text_of(events) == sidecar["expected"]["text"]
        assert isinstance(events[-1], StreamDone) and events[-1].finish_reason == "stop"

    async def test_stream_response_deepseek(self, handler):
        sidecar, body = corpus_case("deepseek_stream_reasoner")
        await register(kind="deepseek", api_key="sk-deepseek-0123456789abcdef", default_model="deepseek-reasoner")
        with respx.mock:
            respx.post(DEEPSEEK).respond(200, headers={"content-type": "text/event-stream"}, content=body)
            events = await collect(handler.stream(ask()))
        reasoning = "".join(e.text for e in events if getattr(e, "kind", "") == "reasoning_delta")
        assert reasoning == sidecar["expected"]["reasoning"]
        assert text_of(events) == sidecar["expected"]["text"]
        assert isinstance(events[-1], StreamDone)

    async def test_stream_response_gemini(self, handler):
        sidecar, body = corpus_case("gemini_stream_cjk_multichunk")
        await register(kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.0-flash")
        with respx.mock:
            route = respx.post(url__startswith=GEMINI_STREAM).respond(
                200, headers={"content-type": "text/event-stream"}, content=body
            )
            events = await collect(handler.stream(ask()))
        assert text_of(events) == sidecar["expected"]["text"]
        assert "key=" not in str(route.calls.last.request.url)
        assert isinstance(events[-1], StreamDone)

    async def test_stream_yields_tokens(self, handler):
        """Tokens are yielded one by one as they arrive, before the upstream has finished."""
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        release = asyncio.Event()
        body = openai_chunks("one ", "two ", "three")
        cut = body.index(b"data: ", body.index(b'"content": "one "'))
        first, rest = body[:cut], body[cut:]

        class Slow(httpx.AsyncByteStream):
            async def __aiter__(self):
                yield first
                await release.wait()
                yield rest

        with respx.mock:
            respx.post(OPENAI).mock(
                return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Slow())
            )
            agen = handler.stream(ask())
            seen = []
            async for event in agen:
                seen.append(event)
                if getattr(event, "text", None) == "one ":
                    break
            assert not release.is_set()  # "one " arrived while the upstream was still holding the rest
            release.set()
            async for event in agen:
                seen.append(event)
        assert text_of(seen) == "one two three"
        assert isinstance(seen[-1], StreamDone)

    async def test_stream_handles_errors(self, handler):
        """An error after the first token ends the stream with one partial error event."""
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-x")
        body = (
            b"event: message_start\ndata: "
            b'{"type":"message_start","message":{"id":"m","model":"claude-x","usage":{"input_tokens":3,"output_tokens":0}}}\n\n'
            b"event: content_block_start\ndata: "
            b'{"type":"content_block_start","index":0,"content_block":{"type":"text","text":""}}\n\n'
            b"event: content_block_delta\ndata: "
            b'{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hel"}}\n\n'
            b'event: error\ndata: {"type":"error","error":{"type":"overloaded_error","message":"Overloaded"}}\n\n'
        )
        with respx.mock:
            respx.post(ANTHROPIC).respond(200, headers={"content-type": "text/event-stream"}, content=body)
            events = await collect(handler.stream(ask()))
        assert text_of(events) == "Hel"
        assert isinstance(events[-1], StreamFailed)
        assert events[-1].partial is True
        assert events[-1].error.code == "upstream_overloaded"
        assert sum(isinstance(e, (StreamDone, StreamFailed)) for e in events) == 1


class TestChatCompletion:
    async def test_chat_completion_openai(self, handler):
        sidecar, body = corpus_case("openai_json_text")
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        with respx.mock:
            respx.post(OPENAI).respond(200, content=body, headers={"content-type": "application/json"})
            result = await handler.chat(ask())
        assert result.response.text == sidecar["expected"]["text"]
        assert result.provider == "openai"
        assert result.response.usage.input_tokens == sidecar["expected"]["usage"]["input_tokens"]

    async def test_chat_completion_anthropic(self, handler):
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-sonnet-4")
        with respx.mock:
            route = respx.post(ANTHROPIC).respond(200, json=anthropic_json("Bonjour"))
            result = await handler.chat(ask())
        sent = route.calls.last.request
        assert sent.headers["x-api-key"] == "sk-ant-0123456789abcdef"
        assert json.loads(sent.content)["max_tokens"] > 0
        assert result.response.text == "Bonjour"
        assert result.response.finish_reason == "stop"

    async def test_system_prompt_handling(self, handler):
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-sonnet-4")
        req = ChatRequest(
            model="", messages=(Message(role="system", content="Be terse."), Message(role="user", content="Hi"))
        )
        with respx.mock:
            route = respx.post(ANTHROPIC).respond(200, json=anthropic_json())
            await handler.chat(req)
        body = json.loads(route.calls.last.request.content)
        assert body["system"] == "Be terse."
        assert [m["role"] for m in body["messages"]] == ["user"]

    async def test_conversation_history(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        history = (
            Message(role="user", content="My name is Ada."),
            Message(role="assistant", content="Hello Ada."),
            Message(role="user", content="What is my name?"),
        )
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json("Ada."))
            result = await handler.chat(ChatRequest(model="", messages=history))
        sent = json.loads(route.calls.last.request.content)["messages"]
        assert [(m["role"], m["content"]) for m in sent] == [(m.role, m.content) for m in history]
        assert result.response.text == "Ada."

    async def test_function_calling(self, handler):
        sidecar, body = corpus_case("openai_json_parallel_tool_calls")
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        tool = Tool(
            name="get_weather",
            description="Weather",
            parameters={"type": "object", "properties": {"city": {"type": "string"}}},
        )
        with respx.mock:
            route = respx.post(OPENAI).respond(200, content=body, headers={"content-type": "application/json"})
            result = await handler.chat(
                ChatRequest(model="", messages=(Message(role="user", content="Weather?"),), tools=(tool,))
            )
        sent = json.loads(route.calls.last.request.content)
        assert sent["tools"][0]["function"]["name"] == "get_weather"
        assert [c.name for c in result.response.tool_calls] == [c["name"] for c in sidecar["expected"]["tool_calls"]]
        assert result.response.finish_reason == "tool_calls"

    async def test_temperature_sampling(self, handler):
        await register(kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.0-flash")
        with respx.mock:
            route = respx.post(GEMINI).respond(200, json=gemini_json())
            await handler.chat(ask(temperature=0.2, top_p=0.9, max_tokens=50, stop=("END",)))
        config = json.loads(route.calls.last.request.content)["generationConfig"]
        assert config == {"temperature": 0.2, "topP": 0.9, "maxOutputTokens": 50, "stopSequences": ["END"]}


# -- the handler (handler issue) --------------------------------------------------------------------


class TestBYOKHandlerInit:
    async def test_byok_handler_init(self, handler):
        assert await handler.list_providers() == []
        assert (await handler.snapshot()).default is None

    async def test_register_provider(self, handler):
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key=CANARY, default_model="gpt-4o"
        )
        assert provider.name == "openai"
        keys = await sync_to_async(lambda: list(provider.keys.all()))()
        assert [k.status for k in keys] == ["active"]
        assert await sync_to_async(AuditEvent.objects.filter(action="provider.create").count)() == 1

    async def test_get_provider(self, handler):
        created = await sync_to_async(registry.register_provider)(kind="anthropic", name="claude")
        assert (await sync_to_async(registry.get_provider)("claude")).pk == created.pk
        assert (await sync_to_async(registry.get_provider)(created.pk)).name == "claude"
        with pytest.raises(Exception) as info:
            await sync_to_async(registry.get_provider)("nope")
        assert info.value.status_code == 404

    async def test_get_default_provider(self, handler):
        await sync_to_async(registry.register_provider)(kind="openai", api_key=CANARY)
        await sync_to_async(registry.register_provider)(
            kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", is_default=True
        )
        assert ((await handler.snapshot()).default).name == "gemini"
        await sync_to_async(registry.update_provider)("openai", {"is_default": True})
        assert ((await handler.snapshot()).default).name == "openai"

    async def test_list_providers(self, handler):
        await sync_to_async(registry.register_provider)(kind="openai", priority=20)
        await sync_to_async(registry.register_provider)(kind="anthropic", priority=10)
        assert [p.name for p in await handler.list_providers()] == ["anthropic", "openai"]

    async def test_provider_config_validation(self, handler):
        with pytest.raises(InvalidConfigError) as info:
            await sync_to_async(registry.register_provider)(kind="cohere")
        assert "kind" in info.value.errors
        with pytest.raises(InvalidConfigError) as info:
            await sync_to_async(registry.register_provider)(kind="openai", name="bad name!", timeout=-1)
        assert set(info.value.errors) == {"name", "timeout"}
        with pytest.raises(InvalidConfigError) as info:
            await sync_to_async(registry.register_provider)(kind="openai_compatible")
        assert "base_url" in info.value.errors
        with pytest.raises(InvalidConfigError) as info:
            await sync_to_async(registry.register_provider)(kind="openai", api_key="short")
        assert "api_key" in info.value.errors
        await sync_to_async(registry.register_provider)(kind="openai")
        with pytest.raises(DuplicateNameError):
            await sync_to_async(registry.register_provider)(kind="openai")

    async def test_private_base_urls_are_refused_unless_allowed(self, handler, settings):
        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": False}
        for url in (
            "http://127.0.0.1:8080/v1",
            "http://10.0.0.8/v1",
            "http://169.254.169.254/",
            "http://localhost/v1",
            "http://[::1]/v1",
        ):
            with pytest.raises(InvalidConfigError) as info:
                await sync_to_async(registry.register_provider)(kind="openai_compatible", name="local", base_url=url)
            assert "base_url" in info.value.errors, url
        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
        await sync_to_async(registry.register_provider)(
            kind="openai_compatible", name="local", base_url="http://127.0.0.1:8080/v1"
        )


class TestProviderRouting:
    @pytest.mark.parametrize(
        "kind,url,auth_header,auth_value,answer",
        [
            ("openai", OPENAI, "authorization", "Bearer sk-route-0123456789abcdef", openai_json("ok")),
            ("anthropic", ANTHROPIC, "x-api-key", "sk-route-0123456789abcdef", anthropic_json("ok")),
            ("deepseek", DEEPSEEK, "authorization", "Bearer sk-route-0123456789abcdef", openai_json("ok")),
            ("gemini", GEMINI, "x-goog-api-key", "sk-route-0123456789abcdef", gemini_json("ok")),
        ],
    )
    async def test_route_by_kind(self, handler, kind, url, auth_header, auth_value, answer):
        await register(
            kind=kind,
            api_key="sk-route-0123456789abcdef",
            default_model="gemini-2.0-flash" if kind == "gemini" else "m",
            timeout=7,
        )
        await register(kind="openai", name="other", api_key="sk-other-0123456789abcdef", default_model="gpt-4o")
        with respx.mock:
            route = respx.post(url).respond(200, json=answer)
            result = await handler.chat(ask(), provider=kind)
        sent = route.calls.last.request
        assert sent.headers[auth_header] == auth_value
        assert sent.extensions["timeout"]["read"] == 7
        assert result.provider == kind and result.response.text == "ok"

    async def test_route_to_openai(self, handler):
        await self.test_route_by_kind(
            handler, "openai", OPENAI, "authorization", "Bearer sk-route-0123456789abcdef", openai_json("ok")
        )

    async def test_route_to_anthropic(self, handler):
        await self.test_route_by_kind(
            handler, "anthropic", ANTHROPIC, "x-api-key", "sk-route-0123456789abcdef", anthropic_json("ok")
        )

    async def test_route_to_deepseek(self, handler):
        await self.test_route_by_kind(
            handler, "deepseek", DEEPSEEK, "authorization", "Bearer sk-route-0123456789abcdef", openai_json("ok")
        )

    async def test_route_to_gemini(self, handler):
        await self.test_route_by_kind(
            handler, "gemini", GEMINI, "x-goog-api-key", "sk-route-0123456789abcdef", gemini_json("ok")
        )

    async def test_model_prefix_names_the_provider_and_base_url_overrides(self, handler, settings):
        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
        await register(
            kind="openai_compatible",
            name="local",
            base_url="http://127.0.0.1:9999/v1",
            api_key="sk-local-0123456789abcdef",
        )
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
        with respx.mock:
            route = respx.post("http://127.0.0.1:9999/v1/chat/completions").respond(200, json=openai_json("local"))
            result = await handler.chat(ask(model="local/meta-llama/Llama-3"))
        assert json.loads(route.calls.last.request.content)["model"] == "meta-llama/Llama-3"
        assert result.provider == "local"

    async def test_an_unknown_provider_prefix_is_404_and_never_sent_to_the_default_provider(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
        with respx.mock(assert_all_called=False) as mock:
            mock.post(OPENAI).respond(200, json=openai_json("wrongly served"))
            for call in (
                handler.chat(ask(model="nosuchprovider/gpt-4o")),
                collect(handler.stream(ask(model="nosuchprovider/gpt-4o"))),
            ):
                try:
                    events = await call
                except ProviderNotFoundError as exc:
                    assert exc.status_code == 404 and "nosuchprovider" in exc.message
                else:
                    assert [type(e) for e in events] == [StreamFailed] and events[0].error.code == "provider_not_found"
            assert mock.calls.call_count == 0

    async def test_a_slash_model_the_catalog_knows_for_a_provider_goes_to_it_whole(self, handler, settings):
        from byok.changes import announce
        from byok.models import CatalogOverride

        settings.BYOK = {**settings.BYOK, "ALLOW_PRIVATE_BASE_URLS": True}
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
        await register(
            kind="openai_compatible",
            name="router",
            base_url="http://127.0.0.1:9999/v1",
            api_key="sk-router-0123456789abcdef",
        )
        await sync_to_async(CatalogOverride.objects.create)(
            provider="router", model="meta-llama/llama-3.1-8b", context_window=8192
        )
        await sync_to_async(announce)(None)
        with respx.mock(assert_all_called=False) as mock:
            openai = mock.post(OPENAI).respond(200, json=openai_json("default"))
            router = mock.post("http://127.0.0.1:9999/v1/chat/completions").respond(200, json=openai_json("routed"))
            result = await handler.chat(ask(model="meta-llama/llama-3.1-8b"))
            assert result.provider == "router" and not openai.called
            assert json.loads(router.calls.last.request.content)["model"] == "meta-llama/llama-3.1-8b"
            # The same id known to the default route's provider stays on the default route.
            await sync_to_async(CatalogOverride.objects.create)(
                provider="openai", model="meta-llama/llama-3.1-8b", context_window=8192
            )
            await sync_to_async(announce)(None)
            result = await handler.chat(ask(model="meta-llama/llama-3.1-8b"))
            assert (
                result.provider == "openai"
                and json.loads(openai.calls.last.request.content)["model"] == "meta-llama/llama-3.1-8b"
            )

    async def test_auto_provider_selection(self, handler):
        """No default: the enabled provider with a usable key, by priority."""
        await register(kind="openai", priority=1, default_model="gpt-4o")  # no key: skipped
        await register(kind="anthropic", priority=5, enabled=False, api_key="sk-ant-0123456789abcdef")
        await register(
            kind="gemini", priority=9, api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.0-flash"
        )
        with respx.mock:
            respx.post(GEMINI).respond(200, json=gemini_json("auto"))
            result = await handler.chat(ask())
        assert result.provider == "gemini"

    async def test_provider_not_found_error(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef")
        with respx.mock(assert_all_called=False) as mock:
            with pytest.raises(ProviderNotFoundError):
                await handler.chat(ask(), provider="nope")
            assert mock.calls.call_count == 0

    async def test_no_provider_at_all_is_503(self, handler):
        with pytest.raises(NoUsableProviderError) as info:
            await handler.chat(ask())
        assert info.value.status_code == 503


async def _policy(primary: str, *fallbacks: str, max_retries=2):
    from byok.changes import announce
    from byok.models import FailoverPolicy, FailoverStep, Provider

    def make():
        policy = FailoverPolicy.objects.create(
            name=f"{primary}-chain", primary=Provider.objects.get(name=primary), max_retries=max_retries
        )
        for i, name in enumerate(fallbacks):
            FailoverStep.objects.create(policy=policy, provider=Provider.objects.get(name=name), position=i)
        announce(None)

    from django.db import transaction

    await sync_to_async(lambda: transaction.atomic()(make)())()


class TestFailover:
    async def test_failover_on_provider_error(self, handler, fake_time):
        await register(
            kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True, max_retries=1
        )
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-sonnet-4")
        await _policy("openai", "anthropic", max_retries=1)
        with respx.mock:
            primary = respx.post(OPENAI).respond(503, json={"error": {"message": "down"}})
            fallback = respx.post(ANTHROPIC).respond(200, json=anthropic_json("from fallback"))
            result = await handler.chat(ask())
        assert primary.call_count == 2  # first try + one retry
        assert fallback.call_count == 1
        assert result.provider == "anthropic" and result.response.text == "from fallback"
        assert [a.provider for a in result.attempts] == ["openai", "openai", "anthropic"]
        assert fake_time.slept and all(s > 0 for s in fake_time.slept)

    async def test_failover_exhaustion(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
        await register(kind="deepseek", api_key="sk-deepseek-0123456789abcdef", default_model="deepseek-chat")
        await _policy("openai", "deepseek", max_retries=0)
        with respx.mock:
            respx.post(OPENAI).respond(500, json={"error": {"message": "boom"}})
            respx.post(DEEPSEEK).respond(502, text="bad gateway")
            with pytest.raises(AllProvidersFailedError) as info:
                await handler.chat(ask())
        error = info.value
        assert error.status_code == 502
        assert [(a["provider"], a["status"]) for a in error.attempts] == [("openai", 500), ("deepseek", 502)]
        assert "sk-openai" not in error.message and "sk-openai" not in json.dumps(error.to_dict())
        rows = await usage_rows(handler)
        assert [(r.status, r.attempts, r.error_code) for r in rows] == [("error", 2, "upstream_failed")]

    async def test_retry_on_transient_error(self, handler, fake_time):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", max_retries=3)
        with respx.mock:
            route = respx.post(OPENAI).mock(
                side_effect=[
                    httpx.Response(502, text="x"),
                    httpx.ConnectTimeout("slow"),
                    httpx.Response(200, json=openai_json("third time")),
                ]
            )
            result = await handler.chat(ask())
        assert route.call_count == 3
        assert result.response.text == "third time"
        assert len(fake_time.slept) == 2 and fake_time.slept[1] > fake_time.slept[0]  # exponential

    async def test_retry_after_is_honoured(self, handler, fake_time):
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-x", max_retries=1)
        with respx.mock:
            respx.post(ANTHROPIC).mock(
                side_effect=[
                    httpx.Response(
                        529,
                        headers={"retry-after": "7"},
                        json={"type": "error", "error": {"type": "overloaded_error", "message": "busy"}},
                    ),
                    httpx.Response(200, json=anthropic_json("ok")),
                ]
            )
            await handler.chat(ask())
        assert fake_time.slept == [7.0]

    async def test_no_retry_on_auth_error(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", max_retries=3)
        with respx.mock:
            route = respx.post(OPENAI).respond(
                401, json={"error": {"message": "Incorrect API key", "code": "invalid_api_key"}}
            )
            with pytest.raises(AllProvidersFailedError) as info:
                await handler.chat(ask())
        assert route.call_count == 1
        assert info.value.status_code == 502  # the caller's own token was fine: an upstream failure
        key = await sync_to_async(ApiKey.objects.get)()
        assert key.status == "invalid"
        assert (
            await sync_to_async(
                AuditEvent.objects.filter(action="key.invalid", key_fingerprint=key.fingerprint).count
            )()
            == 1
        )

    async def test_client_errors_are_neither_retried_nor_failed_over(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-x")
        await _policy("openai", "anthropic")
        with respx.mock(assert_all_called=False) as mock:
            route = mock.post(OPENAI).respond(400, json={"error": {"message": "messages: too long"}})
            fallback = mock.post(ANTHROPIC).respond(200, json=anthropic_json())
            with pytest.raises(BadRequestError) as info:
                await handler.chat(ask())
        assert route.call_count == 1 and fallback.call_count == 0
        assert "too long" in info.value.message and info.value.status_code == 400

    async def test_failover_preserves_context(self, handler):
        await register(
            kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True, max_retries=0
        )
        await register(kind="gemini", api_key="AIzaSyA-0123456789abcdefghijklmnop", default_model="gemini-2.0-flash")
        await _policy("openai", "gemini", max_retries=0)
        tool = Tool(
            name="lookup", description="Look up", parameters={"type": "object", "properties": {"q": {"type": "string"}}}
        )
        req = ChatRequest(
            model="",
            temperature=0.3,
            max_tokens=64,
            tools=(tool,),
            messages=(
                Message(role="system", content="You are byok."),
                Message(role="user", content="Find cats"),
                Message(
                    role="assistant", tool_calls=(ToolCall(id="call_1", name="lookup", arguments='{"q": "cats"}'),)
                ),
                Message(role="tool", tool_call_id="call_1", name="lookup", content='{"n": 3}'),
                Message(role="user", content="And dogs?"),
            ),
        )
        with respx.mock:
            respx.post(OPENAI).respond(500, json={"error": {"message": "x"}})
            route = respx.post(GEMINI).respond(200, json=gemini_json("3 cats"))
            result = await handler.chat(req)
        body = json.loads(route.calls.last.request.content)
        assert body["systemInstruction"]["parts"][0]["text"] == "You are byok."
        assert [c["role"] for c in body["contents"]] == ["user", "model", "user"]
        assert body["contents"][1]["parts"][0]["functionCall"] == {"name": "lookup", "args": {"q": "cats"}}
        last_turn = body["contents"][2]["parts"]
        assert last_turn[0]["functionResponse"]["name"] == "lookup"
        assert last_turn[1] == {"text": "And dogs?"}
        assert body["tools"][0]["functionDeclarations"][0]["name"] == "lookup"
        assert body["generationConfig"]["temperature"] == 0.3
        assert result.provider == "gemini"

    async def test_failover_latency_tracking(self, handler, fake_time):
        await register(
            kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True, max_retries=0
        )
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-x")
        await _policy("openai", "anthropic", max_retries=0)

        def slow_failure(request):
            fake_time.now += 0.25
            return httpx.Response(503, json={"error": {"message": "down"}})

        def slow_success(request):
            fake_time.now += 0.1
            return httpx.Response(200, json=anthropic_json())

        with respx.mock:
            respx.post(OPENAI).mock(side_effect=slow_failure)
            respx.post(ANTHROPIC).mock(side_effect=slow_success)
            result = await handler.chat(ask())
        assert [round(a.ms) for a in result.attempts] == [250, 100]
        assert round(result.failover_ms) == 250
        assert round(result.latency_ms) == 350
        [row] = await usage_rows(handler)
        assert (row.provider_name, row.attempts, round(row.failover_ms), round(row.latency_ms)) == (
            "anthropic",
            2,
            250,
            350,
        )
        assert [(p["provider"], p["status"]) for p in row.failover_path] == [("openai", 503), ("anthropic", 200)]

    async def test_stream_fails_over_before_the_first_token(self, handler):
        await register(
            kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True, max_retries=0
        )
        await register(kind="anthropic", api_key="sk-ant-0123456789abcdef", default_model="claude-3-opus-20240229")
        await _policy("openai", "anthropic", max_retries=0)
        error_after_200 = sse({"error": {"message": "overloaded", "type": "server_error"}}, done=False)
        _, anthropic_body = corpus_case("anthropic_stream_sdk_basic")
        with respx.mock:
            respx.post(OPENAI).respond(200, headers={"content-type": "text/event-stream"}, content=error_after_200)
            respx.post(ANTHROPIC).respond(200, headers={"content-type": "text/event-stream"}, content=anthropic_body)
            events = await collect(handler.stream(ask()))
        assert not any(isinstance(e, StreamFailed) for e in events)
        assert events[-1].provider == "anthropic"
        assert [a["provider"] for a in events[-1].attempts] == ["openai", "anthropic"]
        # Who serves it is known before the first token: the first event says so, and only the first.
        started = events[0]
        assert isinstance(started, StreamStarted) and [isinstance(e, StreamStarted) for e in events].count(True) == 1
        assert (started.provider, started.model, started.request_id) == (
            "anthropic",
            events[-1].model,
            events[-1].request_id,
        )
        assert [a["provider"] for a in started.attempts] == ["openai", "anthropic"] and started.key_hint == events[
            -1
        ].key_hint
        assert started.failover_ms == events[-1].failover_ms
        assert events[1].kind != "text_delta" or events[1].text  # tokens follow the StreamStarted

    async def test_a_stream_nobody_can_serve_is_one_stream_failed_and_no_stream_started(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", max_retries=0)
        with respx.mock:
            respx.post(OPENAI).respond(503, json={"error": {"message": "down", "type": "server_error"}})
            events = await collect(handler.stream(ask(model="openai/gpt-4o")))
        assert [type(e) for e in events] == [StreamFailed] and events[0].partial is False
        assert [a["status"] for a in events[0].attempts] == [503]

    async def test_stream_cancellation_closes_upstream_and_records_usage(self, handler):
        await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o")
        closed, streaming = asyncio.Event(), asyncio.Event()

        class Endless(httpx.AsyncByteStream):
            async def __aiter__(self):
                yield openai_chunks("first")[:150]
                streaming.set()
                await asyncio.sleep(3600)
                yield b""

            async def aclose(self):
                closed.set()

        with respx.mock:
            respx.post(OPENAI).mock(
                return_value=httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Endless())
            )

            async def consume():
                async for _ in handler.stream(ask()):
                    pass

            task = asyncio.create_task(consume())
            await asyncio.wait_for(streaming.wait(), 30)  # the answer is under way (not a fixed sleep: slow under load)
            task.cancel()
            with pytest.raises(asyncio.CancelledError):
                await task
        assert closed.is_set()
        [row] = await usage_rows(handler)
        assert row.status == "cancelled" and row.provider_name == "openai"


class TestKeyManagement:
    async def test_rotate_api_key(self, handler):
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-old-0123456789abcdef", default_model="gpt-4o"
        )
        new = await sync_to_async(registry.rotate_key)(provider.pk, "sk-new-0123456789abcdef")
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json())
            await handler.chat(ask())
        assert route.calls.last.request.headers["authorization"] == "Bearer sk-new-0123456789abcdef"
        statuses = await sync_to_async(lambda: dict(ApiKey.objects.values_list("hint", "status")))()
        assert statuses == {"sk-…cdef": "active"} or sorted(statuses.values()) == ["active", "retired"]
        events = await sync_to_async(lambda: list(AuditEvent.objects.filter(action="key.rotate")))()
        assert len(events) == 1 and events[0].key_fingerprint == new.fingerprint
        assert "sk-new-0123456789abcdef" not in json.dumps(events[0].details)

    async def test_in_flight_stream_finishes_on_the_old_key(self, handler):
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-old-0123456789abcdef", default_model="gpt-4o"
        )
        release = asyncio.Event()
        body = openai_chunks("a", "b")
        cut = body.index(b"data: ", body.index(b'"content": "a"'))  # after the first token's event

        class Held(httpx.AsyncByteStream):
            async def __aiter__(self):
                yield body[:cut]
                await release.wait()
                yield body[cut:]

        with respx.mock:
            route = respx.post(OPENAI).mock(
                side_effect=[
                    httpx.Response(200, headers={"content-type": "text/event-stream"}, stream=Held()),
                    httpx.Response(200, json=openai_json("new")),
                ]
            )
            agen = handler.stream(ask())
            first = await agen.__anext__()
            await sync_to_async(registry.rotate_key)(provider.pk, "sk-new-0123456789abcdef")
            result = await handler.chat(ask())  # a new request uses the new key at once
            release.set()
            rest = [first] + [e async for e in agen]
        assert isinstance(rest[-1], StreamDone) and rest[-1].key_hint == "sk-…cdef"
        auths = [c.request.headers["authorization"] for c in route.calls]
        assert auths == ["Bearer sk-old-0123456789abcdef", "Bearer sk-new-0123456789abcdef"]
        assert result.response.text == "new"

    async def test_key_quota_exceeded(self, handler):
        """OpenAI 429 insufficient_quota parks the key; the next key takes over."""
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-first-0123456789abcdef", default_model="gpt-4o"
        )
        await sync_to_async(registry.add_key)(provider.pk, "sk-second-0123456789abcdef")
        with respx.mock:
            route = respx.post(OPENAI).mock(
                side_effect=lambda req: (
                    httpx.Response(
                        429,
                        json={
                            "error": {
                                "message": "You exceeded your current quota",
                                "code": "insufficient_quota",
                                "type": "insufficient_quota",
                            }
                        },
                    )
                    if "first" in req.headers["authorization"]
                    else httpx.Response(200, json=openai_json("second"))
                )
            )
            results = [await handler.chat(ask()) for _ in range(3)]
        assert {r.response.text for r in results} == {"second"}
        statuses = await sync_to_async(lambda: dict(ApiKey.objects.values_list("label", "status").order_by("id")))()
        keys = await sync_to_async(lambda: list(ApiKey.objects.order_by("id").values_list("status", flat=True)))()
        assert keys == ["parked", "active"]
        assert sum("first" in c.request.headers["authorization"] for c in route.calls) == 1
        assert statuses  # audit row written for the parking
        assert await sync_to_async(AuditEvent.objects.filter(action="key.parked").count)() == 1

    async def test_key_validation(self, handler):
        provider = await sync_to_async(registry.register_provider)(kind="openai")
        for bad in ("", "   ", "short", "has space inside-0123456789"):
            with pytest.raises(InvalidConfigError):
                await sync_to_async(registry.add_key)(provider.pk, bad)
        with pytest.raises(InvalidConfigError) as info:
            await sync_to_async(registry.add_key)(provider.pk, "sk-fine-0123456789abcdef", rpm=0, quota_window="year")
        assert set(info.value.errors) == {"rpm", "quota_window"}

    async def test_multiple_keys_per_provider(self, handler):
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-aaaa-0123456789abcdef", default_model="gpt-4o"
        )
        await sync_to_async(registry.add_key)(provider.pk, "sk-bbbb-0123456789abcdef")
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json())
            for _ in range(4):
                await handler.chat(ask())
        used = [c.request.headers["authorization"][7:11] for c in route.calls]
        assert sorted(used) == ["sk-a", "sk-a", "sk-b", "sk-b"]

    async def test_key_rate_limiting(self, handler, fake_time):
        """A 429 cools the key until its reset; the next key is tried before failing over; then 429 with Retry-After."""
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-aaaa-0123456789abcdef", default_model="gpt-4o"
        )
        await sync_to_async(registry.add_key)(provider.pk, "sk-bbbb-0123456789abcdef", rpm=2)
        with respx.mock:
            route = respx.post(OPENAI).mock(
                side_effect=lambda req: (
                    httpx.Response(
                        429,
                        headers={"retry-after": "120"},
                        json={"error": {"message": "Rate limit", "code": "rate_limit_exceeded"}},
                    )
                    if "aaaa" in req.headers["authorization"]
                    else httpx.Response(200, json=openai_json("b"))
                )
            )
            assert (await handler.chat(ask())).response.text == "b"
            assert (await handler.chat(ask())).response.text == "b"
            with pytest.raises(RateLimitedError) as info:  # a cooling, b over its rpm of 2
                await handler.chat(ask())
        assert 50 <= info.value.retry_after <= 120
        assert sum("aaaa" in c.request.headers["authorization"] for c in route.calls) == 1
        fake_time.now += 121  # windows and cooldowns reset on time
        with respx.mock:
            respx.post(OPENAI).respond(200, json=openai_json("again"))
            assert (await handler.chat(ask())).response.text == "again"

    async def test_key_revocation(self, handler):
        provider = await sync_to_async(registry.register_provider)(
            kind="openai", api_key="sk-aaaa-0123456789abcdef", default_model="gpt-4o"
        )
        other = await sync_to_async(registry.add_key)(provider.pk, "sk-bbbb-0123456789abcdef")
        first = await sync_to_async(lambda: provider.keys.order_by("id").first())()
        await sync_to_async(registry.revoke_key)(provider.pk, first.pk)
        with respx.mock:
            route = respx.post(OPENAI).respond(200, json=openai_json())
            for _ in range(3):
                await handler.chat(ask())
        assert {c.request.headers["authorization"] for c in route.calls} == {"Bearer sk-bbbb-0123456789abcdef"}
        await sync_to_async(registry.revoke_key)(provider.pk, other.pk)
        with pytest.raises(NoUsableProviderError):
            await handler.chat(ask())
        assert await sync_to_async(AuditEvent.objects.filter(action="key.revoke").count)() == 2

    async def test_keys_are_never_logged(self, handler, caplog):
        caplog.set_level(logging.DEBUG)
        for name in ("httpx", "httpcore", "byok", "byok.request"):
            logging.getLogger(name).setLevel(logging.DEBUG)
        await sync_to_async(registry.register_provider)(kind="openai", api_key=CANARY, default_model="gpt-4o")
        with respx.mock:
            respx.post(OPENAI).mock(
                side_effect=[
                    httpx.Response(500, json={"error": {"message": f"echo {CANARY}"}}),
                    httpx.Response(200, json=openai_json()),
                ]
            )
            await handler.chat(ask())
            respx.post(OPENAI).respond(401, json={"error": {"message": f"bad key {CANARY}"}})
            with pytest.raises(Exception) as info:
                await handler.chat(ask())
        assert CANARY not in caplog.text
        assert CANARY not in str(info.value) and CANARY not in repr(info.value)
        key = await sync_to_async(ApiKey.objects.get)()
        assert CANARY not in key.last_error


async def test_a_provider_registered_elsewhere_is_found_on_first_use(handler):
    """Another process registered it a moment ago: an unknown name forces one reload before a 404."""
    from byok.signals import config_changed

    config_changed.disconnect(handler._on_config_changed)  # as if the change happened in another process
    await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("first"))
        await handler.chat(ask())  # the snapshot is now cached
        await register(kind="anthropic", name="fresh", api_key="sk-ant-0123456789abcdef", default_model="claude-x")
        respx.post(ANTHROPIC).respond(200, json=anthropic_json("fresh"))
        result = await handler.chat(ask(model="fresh/claude-x"))
        assert result.provider == "fresh"
        with pytest.raises(ProviderNotFoundError):
            await handler.chat(ask(), provider="never-registered")


async def test_requests_racing_a_registration_announced_elsewhere_all_find_the_provider(handler):
    """The once-a-second reload was just spent (another unknown name): the announced change is still read."""
    from byok.signals import config_changed

    config_changed.disconnect(handler._on_config_changed)  # as if the change happened in another process
    await register(kind="openai", api_key="sk-openai-0123456789abcdef", default_model="gpt-4o", is_default=True)
    with respx.mock:
        respx.post(OPENAI).respond(200, json=openai_json("first"))
        await handler.chat(ask())  # the snapshot is now cached and the shared version seen
        with pytest.raises(ProviderNotFoundError):
            await handler.chat(ask(), provider="not-yet")  # spends the forced reload of this second
        await register(kind="anthropic", name="fresh", api_key="sk-ant-0123456789abcdef", default_model="claude-x")
        await handler.state().bump_version()  # the registering process's announcement
        respx.post(ANTHROPIC).respond(200, json=anthropic_json("fresh"))
        results = await asyncio.gather(*(handler.chat(ask(model="fresh/claude-x")) for _ in range(5)))
    assert [r.provider for r in results] == ["fresh"] * 5
