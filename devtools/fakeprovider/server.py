"""The aiohttp application: routing, auth, settings, faults, and the control API.

    runner, base_url = await start_server("127.0.0.1", 0, {"chunks": 4})
    ...
    await runner.cleanup()

Provider paths may be preceded by `/cfg/<settings>/` (see settings.py). One
catch-all route does the dispatch itself so that the prefix, raw Gemini model
names and OpenAI-compatible base paths need no router tricks.
"""

from __future__ import annotations

import asyncio
import hashlib
import ipaddress
import re
from typing import Any
from urllib.parse import unquote

import orjson
from aiohttp import web

from devtools.fakeprovider import anthropic_format, embeddings, gemini_format, openai_format
from devtools.fakeprovider.answer import Prompt, PromptError, build_answer
from devtools.fakeprovider.errors import error_response, ratelimit_headers, request_id, simple_error
from devtools.fakeprovider.faults import FaultPicker, drop_connection, wait_until_gone
from devtools.fakeprovider.recorder import Recorder
from devtools.fakeprovider.replay import send_replay
from devtools.fakeprovider.settings import (
    STATUS_FAULTS,
    SettingError,
    Settings,
    from_headers,
    parse_cfg_segment,
    resolve,
    validate,
)
from devtools.fakeprovider.streaming import send_stream

__all__ = ["FAKE", "FakeProvider", "create_app", "start_server"]

_CHAT = {
    "/v1/chat/completions": "openai",
    "/openai/v1/chat/completions": "openai",
    "/deepseek/chat/completions": "deepseek",
    "/deepseek/v1/chat/completions": "deepseek",
    "/v1/messages": "anthropic",
    "/anthropic/v1/messages": "anthropic",
}
_MODELS = {
    "/v1/models": "openai",
    "/openai/v1/models": "openai",
    "/deepseek/models": "deepseek",
    "/deepseek/v1/models": "deepseek",
    "/anthropic/v1/models": "anthropic",
    "/v1beta/models": "gemini",
    "/gemini/v1beta/models": "gemini",
}
_GEMINI = re.compile(r"^(?:/gemini)?/v1(?:beta|alpha)?/models/([^/:]+):(generateContent|streamGenerateContent)$")
_GEMINI_EMBED = re.compile(r"^(?:/gemini)?/v1(?:beta|alpha)?/models/([^/:]+):(embedContent|batchEmbedContents)$")
_JSON = "application/json"
_MAX_RECORDED_BODY = 256 * 1024  # bytes; larger bodies are recorded as their size only


def _json(data: Any, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    body = data if isinstance(data, bytes) else orjson.dumps(data)
    return web.Response(body=body, status=status, headers=headers, content_type=_JSON)


def _route(method: str, path: str, headers: Any) -> tuple[str, str, str | None, bool]:
    """(kind, provider, gemini model, gemini sse) for a provider path; kind is chat, models or ''."""
    if method == "POST":
        provider = _CHAT.get(path)
        if provider:
            return "chat", provider, None, False
        match = _GEMINI.match(path)
        if match:
            return "gemini", "gemini", unquote(match.group(1)), match.group(2) == "streamGenerateContent"
        match = _GEMINI_EMBED.match(path)
        if match:
            return "embed", "gemini", unquote(match.group(1)), match.group(2) == "batchEmbedContents"
        if path.endswith("/embeddings") and "deepseek" not in path:  # DeepSeek has no embeddings API
            return "embed", "openai", None, False
        if path.endswith("/chat/completions"):  # any OpenAI-compatible base path
            return "chat", "deepseek" if "deepseek" in path else "openai", None, False
        if path.endswith("/messages"):
            return "chat", "anthropic", None, False
    elif method == "GET":
        provider = _MODELS.get(path) or ("openai" if path.endswith("/models") else "")
        if provider == "openai" and "anthropic-version" in headers:
            provider = "anthropic"
        if provider:
            return "models", provider, None, False
    return "", "", None, False


def _api_key(provider: str, request: web.Request) -> str | None:
    h = request.headers
    if provider == "gemini":
        return h.get("x-goog-api-key") or request.query.get("key") or None
    if provider == "anthropic" and h.get("x-api-key"):
        return h["x-api-key"]
    scheme, _, token = h.get("authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


_MISSING_AUTH = {
    "openai": (
        401,
        "You didn't provide an API key. You need to provide your API key in an Authorization header "
        "using Bearer auth (i.e. Authorization: Bearer YOUR_KEY).",
    ),
    "deepseek": (401, "Authentication Fails, no api key provided"),
    "anthropic": (401, "x-api-key header is required"),
    "gemini": (
        403,
        "Method doesn't allow unregistered callers (callers without established identity). "
        "Please use API Key or other form of API consumer identity to call this API.",
    ),
}


class FakeProvider:
    """State shared by all requests: settings layers, recorder, fault picker."""

    def __init__(self, config: dict[str, Any] | None = None) -> None:
        self.base, self.base_keys = self._split(config or {})
        self.control: dict[str, Any] = {}
        self.keys: list[tuple[str, dict[str, Any]]] = []
        self.recorder = Recorder()
        self.faults = FaultPicker()

    @staticmethod
    def _split(config: dict[str, Any]) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
        if not isinstance(config, dict):
            raise SettingError("config must be a JSON object")
        config = dict(config)
        keys = config.pop("keys", None) or {}
        if not isinstance(keys, dict) or not all(isinstance(v, dict) for v in keys.values()):
            raise SettingError('"keys" must map a key fingerprint or suffix to settings')
        return validate(config), [(str(k).strip(), validate(v)) for k, v in list(keys.items())[:1000] if str(k).strip()]

    def settings_for(self, key: str, cfg: str | None, headers: Any) -> Settings:
        layers = [self.base, self.control]
        overrides = self.base_keys + self.keys
        if overrides:
            digest = hashlib.sha256(key.strip().encode()).hexdigest()
            for matcher, override in overrides:
                if key.endswith(matcher) or (len(matcher) >= 8 and digest.startswith(matcher.lower())):
                    layers.append(override)
        if cfg:
            layers.append(parse_cfg_segment(cfg))
        layers.append(from_headers(headers))
        return resolve(*layers)

    # --- dispatch -----------------------------------------------------------

    async def dispatch(self, request: web.Request) -> web.StreamResponse:
        path = request.rel_url.raw_path
        cfg = None
        if path.startswith("/cfg/"):
            end = path.find("/", 5)
            if end < 0:
                return _json(
                    {"error": {"message": "fakeprovider: /cfg/<settings>/ needs a provider path after it"}}, 404
                )
            cfg, path = path[5:end], path[end:]
        kind, provider, model, stream = _route(request.method, path, request.headers)
        if not kind:  # recorded too: a wrong base URL in a gateway test shows up here
            key = _api_key("openai", request) or _api_key("anthropic", request) or _api_key("gemini", request)
            rec = self._record(request, "", path, cfg, key, await request.read(), None)
            return self._reject(
                rec, _json({"error": {"message": f"fakeprovider: no route for {request.method} {path}"}}, 404)
            )
        if kind == "models":
            return self._models(request, provider, path, cfg)
        if kind == "embed":
            return await self._embed(request, provider, path, cfg, model, stream)
        return await self._chat(request, provider, path, cfg, model, stream)

    def _record(
        self,
        request: web.Request,
        provider: str,
        path: str,
        cfg: str | None,
        key: str | None,
        raw: bytes,
        body: Any,
        model: str = "",
        stream: bool = False,
    ) -> dict[str, Any]:
        if len(raw) > _MAX_RECORDED_BODY:  # 10,000 records must stay small in a benchmark
            stored: Any = {"_fakeprovider_truncated": True, "bytes": len(raw)}
        else:
            stored = body if body is not None else raw[:4096].decode("utf-8", "replace")
        return self.recorder.start(
            method=request.method,
            path=path,
            cfg=cfg,
            query=request.rel_url.raw_query_string,
            provider=provider,
            headers=request.headers,
            key=key,
            model=model,
            stream=stream,
            body=stored,
        )

    def _models(self, request: web.Request, provider: str, path: str, cfg: str | None) -> web.Response:
        key = _api_key(provider, request)
        rec = self._record(request, provider, path, cfg, key, b"", None)
        if not key:
            status, message = _MISSING_AUTH[provider]
            return self._reject(rec, _json(simple_error(provider, status, message), status))
        fault = self.faults.from_key(provider, key)
        if fault in STATUS_FAULTS:
            status, headers, body = error_response(provider, fault, model="", key=key)
            rec["fault"] = fault
            self.recorder.finish(rec, "fault", status)
            return _json(body, status, headers)
        self.recorder.finish(rec, "completed", 200)
        if provider == "anthropic":
            return _json(anthropic_format.models_list())
        if provider == "gemini":
            return _json(gemini_format.models_list())
        return _json(openai_format.models_list(provider))

    async def _embed(
        self, request: web.Request, provider: str, path: str, cfg: str | None, model: str | None, batch: bool
    ) -> web.Response:
        """Embeddings (`embeddings.py`): auth and status faults by key as for the model list, then vectors."""
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        key = _api_key(provider, request)
        rec = self._record(request, provider, path, cfg, key, raw, body, model or "")
        if not key:
            status, message = _MISSING_AUTH[provider]
            return self._reject(rec, _json(simple_error(provider, status, message), status))
        fault = self.faults.from_key(provider, key)
        if fault in STATUS_FAULTS:
            status, headers, answer = error_response(provider, fault, model=model or "", key=key)
            rec["fault"] = fault
            self.recorder.finish(rec, "fault", status)
            return _json(answer, status, headers)
        if not isinstance(body, dict):
            return self._reject(rec, _json(simple_error(provider, 400, "Invalid JSON payload received."), 400))
        if provider == "gemini":
            status, out = embeddings.gemini_embeddings(
                body, model or "", "batchEmbedContents" if batch else "embedContent"
            )
        else:
            status, out = embeddings.openai_embeddings(body)
            rec["model"] = body.get("model") or ""
        if isinstance(out, str):
            return self._reject(rec, _json(simple_error(provider, status, out), status))
        self.recorder.finish(rec, "completed", 200)
        return _json(out)

    async def _chat(
        self,
        request: web.Request,
        provider: str,
        path: str,
        cfg: str | None,
        gemini_model: str | None,
        gemini_stream: bool,
    ) -> web.StreamResponse:
        raw = await request.read()
        try:
            body: Any = orjson.loads(raw) if raw else None
        except orjson.JSONDecodeError:
            body = None
        key = _api_key(provider, request)
        rec = self._record(request, provider, path, cfg, key, raw, body, gemini_model or "", gemini_stream)
        if not key:
            status, message = _MISSING_AUTH[provider]
            return self._reject(rec, _json(simple_error(provider, status, message), status))
        if provider == "anthropic" and "anthropic-version" not in request.headers:
            return self._reject(rec, _json(simple_error(provider, 400, "anthropic-version: header is required"), 400))
        try:
            s = self.settings_for(key, cfg, request.headers)
        except SettingError as exc:
            return self._reject(rec, _json({"error": {"message": f"fakeprovider: {exc}", "type": "fake_config"}}, 400))
        if not isinstance(body, dict):
            return self._reject(
                rec, _json(simple_error(provider, 400, "We could not parse the JSON body of your request."), 400)
            )
        try:
            if provider == "anthropic":
                prompt = anthropic_format.read_prompt(body)
            elif provider == "gemini":
                prompt = gemini_format.read_prompt(body, gemini_model or "", gemini_stream)
            else:
                prompt = openai_format.read_prompt(body, provider)
        except PromptError as exc:
            return self._reject(rec, _json(simple_error(provider, 400, str(exc)), 400))
        rec["model"], rec["stream"] = prompt.model, prompt.stream
        if s.replay:
            return await send_replay(request, s, rec, self.recorder)
        fault = self.faults.pick(provider, key, rec["key_fp"], s)
        rec["fault"] = fault or None
        try:
            return await self._answer(request, provider, prompt, s, fault, key, rec)
        except asyncio.CancelledError:
            self.recorder.finish(rec, "cancelled")
            raise
        except ConnectionResetError:
            self.recorder.finish(rec, "cancelled")
            return web.Response(status=499)

    def _reject(self, rec: dict[str, Any], resp: web.Response) -> web.Response:
        self.recorder.finish(rec, "rejected", resp.status)
        return resp

    async def _answer(
        self,
        request: web.Request,
        provider: str,
        prompt: Prompt,
        s: Settings,
        fault: str,
        key: str,
        rec: dict[str, Any],
    ) -> web.StreamResponse:
        if fault == "slow":
            await asyncio.sleep(s.slow_ms / 1000)
        if fault in STATUS_FAULTS or (fault == "stream_error" and not prompt.stream):
            status, headers, body = error_response(
                provider, fault, model=prompt.model, key=key, retry_after=s.retry_after
            )
            self.recorder.finish(rec, "fault", status)
            return _json(body, status, headers)
        if not prompt.stream and fault in ("drop", "stall"):
            if fault == "stall" and await wait_until_gone(request, s.stall_max_s):
                self.recorder.finish(rec, "cancelled")
                return web.Response(status=499)
            self.recorder.finish(rec, "fault")
            drop_connection(request)
            return web.Response(status=499)  # never reaches the client: the connection is closed
        answer = build_answer(prompt, s)
        headers = self._success_headers(provider, s)
        if prompt.stream:
            if provider == "anthropic":
                plan = anthropic_format.render_stream(prompt, answer, s)
            elif provider == "gemini":
                plan = gemini_format.render_stream(prompt, answer, s, sse=request.query.get("alt") == "sse")
            else:
                plan = openai_format.render_stream(provider, prompt, answer, s)
            plan.headers.update(headers)
            return await send_stream(request, plan, s, fault, rec, self.recorder)
        return await self._answer_json(request, provider, prompt, answer, s, fault, headers, rec)

    async def _answer_json(
        self,
        request: web.Request,
        provider: str,
        prompt: Prompt,
        answer: Any,
        s: Settings,
        fault: str,
        headers: dict[str, str],
        rec: dict[str, Any],
    ) -> web.StreamResponse:
        if provider == "anthropic":
            body = anthropic_format.render_json(prompt, answer)
        elif provider == "gemini":
            body = gemini_format.render_json(prompt, answer)
        else:
            body = openai_format.render_json(provider, prompt, answer)
        if fault == "malformed":
            body = body[: len(body) // 2]
        wait = (s.first_delay_ms + s.delay_ms * max(0, answer.output_tokens - 1)) / 1000
        if wait and provider == "deepseek":
            # DeepSeek sends blank lines while a non-stream answer is being generated.
            resp = web.StreamResponse(status=200, headers={"Content-Type": _JSON, **headers})
            await resp.prepare(request)
            await resp.write(b"\n")
            await asyncio.sleep(wait)
            await resp.write(body)
            await resp.write_eof()
        else:
            if wait:
                await asyncio.sleep(wait)
            resp = _json(body, 200, headers)
        rec["chunks_sent"] = answer.output_tokens
        self.recorder.finish(rec, "fault" if fault else "completed", 200)
        return resp

    @staticmethod
    def _success_headers(provider: str, s: Settings) -> dict[str, str]:
        headers = (
            {"request-id": request_id()}
            if provider == "anthropic"
            else {"x-request-id": request_id()}
            if provider in ("openai", "deepseek")
            else {}
        )
        if s.remaining_requests >= 0:
            headers.update(ratelimit_headers(provider, s.remaining_requests, s.retry_after))
        return headers

    # --- control API --------------------------------------------------------

    async def list_requests(self, request: web.Request) -> web.Response:
        return _json(self.recorder.list(request.query))

    async def clear_requests(self, request: web.Request) -> web.Response:
        n = len(self.recorder.list({}))
        self.recorder.clear()
        return _json({"cleared": n})

    async def stats(self, request: web.Request) -> web.Response:
        return _json(self.recorder.stats())

    def _config_view(self) -> dict[str, Any]:
        return {"base": self.base, "defaults": self.control, "keys": {m: o for m, o in self.base_keys + self.keys}}

    async def get_config(self, request: web.Request) -> web.Response:
        return _json(self._config_view())

    async def set_config(self, request: web.Request) -> web.Response:
        try:
            data = orjson.loads(await request.read() or b"{}")
            self.control, self.keys = self._split(data)
        except (orjson.JSONDecodeError, SettingError) as exc:
            return _json({"error": {"message": f"fakeprovider: {exc}"}}, 400)
        return _json(self._config_view())

    async def reset(self, request: web.Request) -> web.Response:
        self.control, self.keys = {}, []
        self.recorder.clear()
        self.faults.reset()
        return _json({"reset": True})

    async def health(self, request: web.Request) -> web.Response:
        return _json({"ok": True})


FAKE = web.AppKey("fake", FakeProvider)  # app[FAKE] is the state, for in-process tests


def create_app(config: dict[str, Any] | None = None) -> web.Application:
    fake = FakeProvider(config)
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app[FAKE] = fake
    r = app.router
    r.add_get("/_control/requests", fake.list_requests)
    r.add_delete("/_control/requests", fake.clear_requests)
    r.add_get("/_control/stats", fake.stats)
    r.add_get("/_control/config", fake.get_config)
    r.add_post("/_control/config", fake.set_config)
    r.add_post("/_control/reset", fake.reset)
    r.add_get("/_control/health", fake.health)
    r.add_route("*", "/{tail:.*}", fake.dispatch)
    return app


def check_loopback(host: str) -> str:
    """The address to bind; anything but loopback is refused (the fake has no auth of its own)."""
    if host == "localhost":
        return "127.0.0.1"
    try:
        if ipaddress.ip_address(host).is_loopback:
            return host
    except ValueError:
        pass
    raise ValueError(f"fakeprovider binds only to a loopback address, not {host!r}")


async def start_server(
    host: str = "127.0.0.1", port: int = 0, config: dict[str, Any] | None = None
) -> tuple[web.AppRunner, str]:
    """Start in the running loop; returns the runner (call `cleanup()`) and `http://host:port`."""
    host = check_loopback(host)
    runner = web.AppRunner(create_app(config), handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
    await runner.setup()
    site = web.TCPSite(runner, host, port, backlog=4096)
    await site.start()
    bound = runner.addresses[0]
    shown = f"[{bound[0]}]" if ":" in bound[0] else bound[0]
    return runner, f"http://{shown}:{bound[1]}"
