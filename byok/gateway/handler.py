"""`BYOKHandler`: the one service every interface calls, and the only code that talks to providers.

    handler = get_handler()
    result = await handler.chat(req, provider="openai", user_id=user.pk)
    async for event in handler.stream(req):
        ...  # StreamEvent deltas, then exactly one StreamDone or StreamFailed

It owns routing (explicit provider > failover policy > default > automatic),
key selection from the pool (rate windows, quotas, cooldowns in the shared
state), retries with backoff, failover, usage accounting and the registry
operations (through `byok.registry`, audited).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any

from asgiref.sync import sync_to_async
from django.conf import settings

from byok import registry
from byok.audit import SYSTEM, Actor
from byok.budgets import BudgetGate, load_book
from byok.gateway.config_cache import KeyConfig, ProviderConfig, Snapshot, load_snapshot
from byok.exceptions import (
    AllProvidersFailedError,
    ByokError,
    ClientError,
    KeyFaultError,
    KeyQuotaError,
    NoUsableProviderError,
    ProviderError,
    ProviderNotFoundError,
    RateLimitError,
    RateLimitedError,
    UpstreamTimeout,
)
from byok.gateway.keypool import KeyPool
from byok.providers.types import TOKEN_KINDS, ChatRequest, ChatResponse, Message, StreamEvent, Usage
from byok.gateway.retry import MAX_RETRY_AFTER_S, backoff_delay, is_retryable, rate_limit_until
from byok.secrets import remember_secret
from byok.signals import config_changed
from byok.state import StateBackend, VersionWatcher, get_state_backend, key_scope
from byok.gateway.streaming import StreamDone, StreamFailed, UpstreamStream, open_stream
from byok.tokens import estimate_prompt_tokens
from byok.gateway.upstream import ClientRegistry, map_transport_errors
from byok.gateway.usage import UsageEntry, UsageWriter, now_utc

__all__ = ["Attempt", "BYOKHandler", "ChatResult", "StreamDone", "StreamFailed", "get_handler", "split_model"]

log = logging.getLogger("byok.request")

# How long a request may wait for the earliest cooldown to end before answering 429.
MAX_COOLDOWN_WAIT_S = 10.0


@dataclass(slots=True)
class Attempt:
    """One try at one provider with one key; what `failover_path` records."""

    provider: str
    key_hint: str
    status: int | None
    error_class: str | None
    ms: float

    def to_dict(self) -> dict[str, Any]:
        return {"provider": self.provider, "key_hint": self.key_hint, "status": self.status, "error_class": self.error_class, "ms": round(self.ms, 2)}


@dataclass(slots=True)
class ChatResult:
    """A complete answer and how byok got it."""

    response: ChatResponse
    provider: str
    model: str
    key_hint: str
    attempts: list[Attempt]
    latency_ms: float
    failover_ms: float
    request_id: str


@dataclass(slots=True)
class Target:
    provider: ProviderConfig
    model: str
    max_retries: int
    prepared: Any = None  # byok.budgets.Prepared: the request with max_tokens settled for this model


@dataclass(slots=True)
class _Run:
    """The bookkeeping of one request across its attempts."""

    request_id: str
    started: float
    attempts: list[Attempt] = field(default_factory=list)
    earliest_recovery: float | None = None
    only_rate_limited: bool = True
    last_error: ByokError | None = None
    current: tuple[Target, KeyConfig] | None = None  # the attempt under way, for accounting on cancel

    def note_recovery(self, at: float | None) -> None:
        if at is not None and (self.earliest_recovery is None or at < self.earliest_recovery):
            self.earliest_recovery = at


def split_model(model: str, known: dict[str, Any]) -> tuple[str | None, str]:
    """`"<provider>/<model>"` -> (provider, model) when the prefix is a configured provider; else (None, model)."""
    prefix, slash, rest = model.partition("/")
    if slash and prefix in known:
        return prefix, rest
    return None, model


class BYOKHandler:
    """Routing, key pools, retries, failover, streaming and accounting over the configured providers."""

    def __init__(
        self,
        *,
        state_factory: Callable[[], StateBackend] | None = None,
        clients: ClientRegistry | None = None,
        clock: Callable[[], float] = time.monotonic,
        wall: Callable[[], float] = time.time,
        sleep: Callable[[float], Any] = asyncio.sleep,
        rand: Callable[[], float] = random.random,
        usage: UsageWriter | None = None,
    ) -> None:
        self._state_factory = state_factory or (
            lambda: get_state_backend(settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"], now=wall)
        )
        self._states: dict[int, tuple[asyncio.AbstractEventLoop, StateBackend, VersionWatcher, asyncio.Lock]] = {}
        self.clients = clients or ClientRegistry(settings.BYOK.get("HTTP_TRANSPORT", "default"))
        self.clock, self.wall, self.sleep, self.rand = clock, wall, sleep, rand
        self.usage = usage or UsageWriter()
        self.pool = KeyPool()
        self.gate = BudgetGate()  # catalog limits, cost, user and key budgets (byok.budgets)
        self._snapshot: Snapshot | None = None
        self._generation = 0  # bumped by local changes; a load started before one is not kept
        self._forced_refresh_at = float("-inf")
        self._secrets: dict[bytes, str] = {}
        config_changed.connect(self._on_config_changed, weak=True)

    # -- configuration cache ------------------------------------------------------------

    def _on_config_changed(self, **kwargs: Any) -> None:
        self.invalidate()

    def _may_refresh(self) -> bool:
        """At most one forced reload a second, so unknown names cannot drive database load."""
        now = self.clock()
        if now - self._forced_refresh_at < 1.0:
            return False
        self._forced_refresh_at = now
        return True

    def invalidate(self) -> None:
        """Forget cached providers and keys; the next request reloads them."""
        self._generation += 1
        self._snapshot = None

    def state(self) -> StateBackend:
        return self._state_entry()[1]

    def _state_entry(self) -> tuple[asyncio.AbstractEventLoop, StateBackend, VersionWatcher, asyncio.Lock]:
        loop = asyncio.get_running_loop()
        entry = self._states.get(id(loop))
        if entry is None or entry[0] is not loop:
            backend = self._state_factory()
            entry = (loop, backend, VersionWatcher(backend, 0.5, now=self.clock), asyncio.Lock())
            self._states = {k: v for k, v in self._states.items() if not v[0].is_closed()}
            self._states[id(loop)] = entry
        return entry

    async def snapshot(self) -> Snapshot:
        """Providers and keys, reloaded when this or another process changed them."""
        _, _, watcher, loading = self._state_entry()
        if await watcher.changed():
            self._snapshot = None
        snap = self._snapshot
        if snap is not None:
            return snap
        # Single flight: after a change, one load serves every request waiting for it,
        # rather than one database connection per in-flight request.
        async with loading:
            snap = self._snapshot
            if snap is None:
                generation = self._generation
                snap, book = await sync_to_async(_load_config, thread_sensitive=True)()
                self.gate.preload(snap, book)
                if generation == self._generation:
                    self._snapshot = snap
                live = {k.sealed.token for p in snap.ordered for k in p.keys}
                self._secrets = {t: s for t, s in self._secrets.items() if t in live}
        return snap

    def _secret(self, key: KeyConfig) -> str:
        secret = self._secrets.get(key.sealed.token)
        if secret is None:
            secret = key.sealed.reveal()
            remember_secret(secret)
            self._secrets[key.sealed.token] = secret
        return secret

    # -- registry (audited, through byok.registry) -------------------------------------------

    async def register_provider(self, *, actor: Actor = SYSTEM, **values: Any):
        return await sync_to_async(registry.register_provider)(actor=actor, **values)

    async def update_provider(self, provider_id, changes: dict, *, actor: Actor = SYSTEM):
        return await sync_to_async(registry.update_provider)(provider_id, changes, actor=actor)

    async def get_provider(self, provider_id):
        return await sync_to_async(registry.get_provider)(provider_id)

    async def get_default_provider(self) -> ProviderConfig | None:
        return (await self.snapshot()).default

    async def list_providers(self) -> list[ProviderConfig]:
        return list((await self.snapshot()).ordered)

    async def delete_provider(self, provider_id, *, actor: Actor = SYSTEM) -> None:
        await sync_to_async(registry.delete_provider)(provider_id, actor=actor)

    async def add_key(self, provider_id, api_key: str, *, actor: Actor = SYSTEM, **options: Any):
        return await sync_to_async(registry.add_key)(provider_id, api_key, actor=actor, **options)

    async def revoke_key(self, provider_id, key_id, *, actor: Actor = SYSTEM):
        return await sync_to_async(registry.revoke_key)(provider_id, key_id, actor=actor)

    async def rotate_key(self, provider_id, new_api_key: str, *, key_id=None, actor: Actor = SYSTEM):
        return await sync_to_async(registry.rotate_key)(provider_id, new_api_key, key_id=key_id, actor=actor)

    async def test_provider(self, provider_id) -> dict[str, Any]:
        """A minimal live call (one short answer, no failover): ok, latency, error."""
        provider = await self.get_provider(provider_id)
        req = ChatRequest(model=provider.default_model or "", messages=(_ping_message(),), max_tokens=1)
        started = self.clock()
        try:
            result = await self.chat(req, provider=provider.name, interface="test", failover=False)
        except ByokError as exc:
            return {"ok": False, "latency_ms": (self.clock() - started) * 1000, "error": exc.to_dict()}
        return {"ok": True, "latency_ms": result.latency_ms, "model": result.model, "key_hint": result.key_hint, "error": None}

    # -- routing ----------------------------------------------------------------------------

    async def route(self, req: ChatRequest, provider: str | None, *, failover: bool = True) -> list[Target]:
        """The ordered targets for a request; raises ProviderNotFoundError before any upstream call."""
        snap = await self.snapshot()
        named = provider or req.model.partition("/")[0] if (provider or "/" in req.model) else None
        if named and named not in snap.by_name and self._may_refresh():
            # Perhaps just registered through another process: look again before refusing.
            self.invalidate()
            snap = await self.snapshot()
        model = req.model
        if provider is None:
            provider, model = split_model(model, snap.by_name)
        if provider is not None:
            primary = snap.by_name.get(provider)
            if primary is None:
                raise ProviderNotFoundError(f"No provider named {provider!r} is configured.")
            policy = snap.policy_for(primary.id)
        else:
            default = snap.default
            policy = snap.policy_for(default.id if default else None)
            if policy is not None and (default is None or policy.primary_id == default.id):
                primary = snap.by_id[policy.primary_id]
            elif default is not None:
                primary, policy = default, None
            else:
                auto = [p for p in snap.ordered if p.enabled and p.keys]
                if not auto:
                    raise NoUsableProviderError("No enabled provider with a usable key is configured.")
                targets = [Target(p, (model or p.default_model) if i == 0 else p.default_model, p.max_retries) for i, p in enumerate(auto)]
                return targets[:1] if not failover else targets
        retries = policy.max_retries if policy else primary.max_retries
        targets = [Target(primary, model or primary.default_model, retries)]
        if failover and policy is not None:
            for pid in policy.fallback_ids:
                fallback = snap.by_id.get(pid)
                if fallback is not None and fallback.id != primary.id:
                    targets.append(Target(fallback, fallback.default_model, policy.max_retries))
        return targets

    # -- attempts -----------------------------------------------------------------------------

    def _attempt(self, run: _Run, target: Target, key: KeyConfig, started: float, exc: ByokError | None) -> None:
        status = getattr(exc, "status", None) if exc else 200
        run.attempts.append(Attempt(
            target.provider.name, key.hint, status, getattr(exc, "error_class", exc.code if exc else None) if exc else None,
            (self.clock() - started) * 1000,
        ))
        if exc is not None:
            log.info("failover request_id=%s provider=%s key=%s status=%s class=%s", run.request_id,
                     target.provider.name, key.hint, status, run.attempts[-1].error_class)

    async def _key_fault(self, key: KeyConfig, exc: KeyFaultError) -> None:
        """Take a key the provider rejected out of the pool, here at once and everywhere through the DB."""
        parked = isinstance(exc, KeyQuotaError)
        until = self.wall() + exc.retry_after if parked and exc.retry_after else None
        await self.state().cooldown(key_scope(key.id), until if until else self.wall() + 3600)
        await sync_to_async(registry.set_key_status)(
            key.id, "parked" if parked else "invalid", reason=f"{exc.code}: {exc.message}",
            parked_until=datetime.fromtimestamp(until, timezone.utc) if until else None,
        )

    async def _failover(self, run: _Run, targets: list[Target], req: ChatRequest, call, deadline: float):
        """Try `call(target, key, secret)` across keys, retries and targets; return (result, target, key)."""
        blocked = self.gate.key_blocker(self.state())
        for round_ in range(2):
            for target in targets:
                retries, tried = 0, set()
                tokens = target.prepared.reserve if target.prepared else estimate_prompt_tokens(req) + (req.max_tokens or 0)
                while True:
                    key, retry_at = await self.pool.pick(self.state(), target.provider, tokens=tokens, exclude=tried, now=self.wall(), blocked=blocked)
                    if key is None:
                        run.note_recovery(retry_at)
                        if retry_at is None:
                            run.only_rate_limited = run.only_rate_limited and bool(tried)
                        break
                    started = self.clock()
                    run.current = (target, key)
                    try:
                        result = await call(target, key, self._secret(key))
                    except ClientError as exc:
                        self._attempt(run, target, key, started, exc)
                        raise
                    except KeyFaultError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error, run.only_rate_limited = exc, False
                        tried.add(key.id)
                        await self._key_fault(key, exc)
                    except RateLimitError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error = exc
                        until = await self.state().cooldown(self.pool.scope(key), rate_limit_until(exc, self.wall()))
                        run.note_recovery(until)
                        tried.add(key.id)
                    except ProviderError as exc:
                        self._attempt(run, target, key, started, exc)
                        run.last_error, run.only_rate_limited = exc, False
                        retries += 1
                        if not is_retryable(exc) or retries > target.max_retries:
                            break
                        delay = backoff_delay(retries, retry_after=exc.retry_after, rand=self.rand)
                        if self.clock() + delay > deadline:
                            break
                        await self.sleep(delay)
                    else:
                        self._attempt(run, target, key, started, None)
                        return result, target, key
            # Everything is cooling down: wait for the earliest recovery if the deadline allows, once.
            wait = (run.earliest_recovery - self.wall()) if run.earliest_recovery else None
            if round_ == 0 and run.only_rate_limited and wait is not None and 0 < wait <= min(MAX_COOLDOWN_WAIT_S, deadline - self.clock()):
                await self.sleep(wait)
                continue
            break
        raise self._final_error(run)

    def _final_error(self, run: _Run) -> ByokError:
        attempts = [a.to_dict() for a in run.attempts]
        if run.only_rate_limited and run.earliest_recovery is not None:
            wait = min(max(run.earliest_recovery - self.wall(), 1.0), MAX_RETRY_AFTER_S * 20)
            return RateLimitedError(f"Every target is rate limited; retry in {wait:.0f}s.", retry_after=wait, attempts=attempts)
        if not run.attempts:
            return NoUsableProviderError("No provider has a usable key for this request.")
        timeout = isinstance(run.last_error, UpstreamTimeout)
        summary = "; ".join(f"{a.provider} {a.key_hint}: {a.error_class or a.status}" for a in run.attempts)
        return AllProvidersFailedError(f"Every attempt failed ({summary}).", attempts=attempts, timeout=timeout)

    # -- chat -----------------------------------------------------------------------------------

    async def _send(self, target: Target, key: KeyConfig, secret: str, req: ChatRequest) -> tuple[ChatResponse, Any]:
        provider = target.provider
        adapter = provider.adapter
        up = adapter.build_request(_with_model(req, target.model, stream=False), api_key=secret, base_url=provider.base_url or None)
        client = self.clients.get()
        with map_transport_errors(provider.name):
            response = await client.request(up.method, up.url, headers=up.headers, json=up.json, timeout=provider.timeout)
            body = await response.aread()
        if response.status_code >= 400:
            raise adapter.classify_error(response.status_code, response.headers, body)
        await self.pool.note_headers(self.state(), key, adapter.parse_rate_limits(response.headers), self.wall())
        return adapter.parse_response(body, status=response.status_code), response

    async def chat(
        self, req: ChatRequest, *, provider: str | None = None, user_id: int | None = None,
        interface: str = "rest", failover: bool = True, deadline_s: float = 300.0,
    ) -> ChatResult:
        """A complete answer, with failover; raises a ByokError subclass when it cannot get one."""
        run = _Run(uuid.uuid4().hex, self.clock())
        entry = UsageEntry(request_id=run.request_id, created_at=now_utc(), user_id=user_id, interface=interface, stream=False, model=req.model)
        try:
            targets = await self.route(req, provider, failover=failover)
            targets = await self.gate.admit(req, targets, user_id=user_id, state=self.state(), snapshot=await self.snapshot(), now=self.wall())

            async def call(target, key, secret):
                return await self._send(target, key, secret, target.prepared.request)

            (answer, _raw), target, key = await self._failover(run, targets, req, call, run.started + deadline_s)
        except BaseException as exc:
            self._finish(entry, run, error=exc)
            raise
        usage = answer.usage or Usage()
        self._fill(entry, run, target, key, usage)
        self._finish(entry, run)
        await self.gate.spend(self.state(), user_id=user_id, key_id=key.id, kind=target.provider.kind, usage=usage, cost=entry.cost)
        return ChatResult(
            response=answer, provider=target.provider.name, model=answer.model or target.model, key_hint=key.hint,
            attempts=run.attempts, latency_ms=entry.latency_ms, failover_ms=entry.failover_ms, request_id=run.request_id,
        )

    async def stream(
        self, req: ChatRequest, *, provider: str | None = None, user_id: int | None = None,
        interface: str = "rest", deadline_s: float = 300.0,
    ) -> AsyncIterator[StreamEvent | StreamDone | StreamFailed]:
        """Normalised events as they arrive, then exactly one StreamDone or StreamFailed.

        Failures before the first token fail over transparently; after it the
        stream ends with StreamFailed(partial=True). Closing the iterator (or
        cancelling its task) closes the upstream response at once; usage is
        recorded either way.
        """
        run = _Run(uuid.uuid4().hex, self.clock())
        entry = UsageEntry(request_id=run.request_id, created_at=now_utc(), user_id=user_id, interface=interface, stream=True, model=req.model)
        opened: UpstreamStream | None = None
        usage = Usage()
        outcome: BaseException | None = None
        try:
            try:
                targets = await self.route(req, provider)
                targets = await self.gate.admit(req, targets, user_id=user_id, state=self.state(), snapshot=await self.snapshot(), now=self.wall())

                async def call(target, key, secret):
                    return await open_stream(self, target, key, secret, _with_model(target.prepared.request, target.model, stream=True))

                opened, target, key = await self._failover(run, targets, req, call, run.started + deadline_s)
            except ByokError as exc:
                outcome = exc
                yield StreamFailed(error=exc, partial=False, request_id=run.request_id, attempts=[a.to_dict() for a in run.attempts])
                return
            self._fill(entry, run, target, key, usage)
            entry.ttft_ms = (opened.first_token_at - run.started) * 1000 if opened.first_token_at else None
            finish = None
            try:
                async for event in opened.events():
                    if event.kind == "usage":
                        usage = event.usage or usage
                    elif event.kind == "finish":
                        finish = event
                    if entry.ttft_ms is None and event.kind in TOKEN_KINDS:
                        entry.ttft_ms = (self.clock() - run.started) * 1000
                    yield event
            except ByokError as exc:
                outcome = exc
                self._fill(entry, run, target, key, usage)
                yield StreamFailed(error=exc, partial=True, request_id=run.request_id, attempts=[a.to_dict() for a in run.attempts])
                return
            self._fill(entry, run, target, key, usage)
            await self.pool.record_usage(self.state(), key, usage, estimated=target.prepared.reserve)
            yield StreamDone(
                finish_reason=finish.finish_reason if finish else "stop", raw_finish_reason=finish.raw_finish_reason if finish else None,
                usage=usage, provider=target.provider.name, model=opened.model or target.model, key_hint=key.hint,
                attempts=[a.to_dict() for a in run.attempts], latency_ms=(self.clock() - run.started) * 1000,
                failover_ms=entry.failover_ms, ttft_ms=entry.ttft_ms, request_id=run.request_id,
            )
        except BaseException as exc:  # cancelled, or the consumer closed us (GeneratorExit)
            outcome = exc
            raise
        finally:
            if opened is not None:
                await opened.aclose()
            self._finish(entry, run, error=outcome)
            if run.current is not None:
                await self.gate.spend(self.state(), user_id=user_id, key_id=run.current[1].id,
                                      kind=run.current[0].provider.kind, usage=usage, cost=entry.cost)

    # -- accounting -----------------------------------------------------------------------------

    def _fill(self, entry: UsageEntry, run: _Run, target: Target, key: KeyConfig, usage: Usage) -> None:
        entry.provider_id, entry.provider_name, entry.model = target.provider.id, target.provider.name, target.model
        entry.key_id, entry.key_fingerprint, entry.key_hint = key.id, key.fingerprint, key.hint
        entry.tokens_in, entry.tokens_out = usage.input_tokens, usage.output_tokens
        entry.cost = self.gate.cost(target, usage)
        entry.failover_ms = sum(a.ms for a in run.attempts[:-1])

    def _finish(self, entry: UsageEntry, run: _Run, *, error: BaseException | None = None) -> None:
        if not entry.provider_name and run.current is not None:
            target, key = run.current
            self._fill(entry, run, target, key, Usage())
        entry.latency_ms = (self.clock() - run.started) * 1000
        entry.attempts = len(run.attempts)
        entry.failover_path = [a.to_dict() for a in run.attempts]
        if error is None:
            entry.status = "ok"
        elif isinstance(error, ByokError):
            entry.status, entry.error_code = "error", error.code
        elif isinstance(error, (asyncio.CancelledError, GeneratorExit)):
            entry.status, entry.error_code = "cancelled", "cancelled"
        else:
            entry.status, entry.error_code = "error", "internal_error"
        self.usage.add(entry)
        log.info("chat request_id=%s provider=%s model=%s attempts=%d status=%s code=%s latency_ms=%.1f",
                 run.request_id, entry.provider_name or "-", entry.model, entry.attempts, entry.status,
                 entry.error_code or "-", entry.latency_ms)

    async def flush_usage(self) -> None:
        await self.usage.flush()

    async def aclose(self) -> None:
        await self.clients.aclose()
        entry = self._states.pop(id(asyncio.get_running_loop()), None)
        if entry is not None:
            await entry[1].close()
        await self.usage.flush()




def _with_model(req: ChatRequest, model: str, *, stream: bool) -> ChatRequest:
    if req.model == model and req.stream == stream:
        return req
    return replace(req, model=model, stream=stream)


def _load_config():
    """Providers and keys, and the catalog overrides and budgets, in one hop to the ORM thread."""
    return load_snapshot(), load_book()


def _ping_message() -> Message:
    return Message(role="user", content="ping")


def bump_shared_version(**kwargs: Any) -> None:
    """Tell every other process (through Redis) that providers or keys changed; they reload within a second.

    Connected to `config_changed` when the app starts, so it runs whether or
    not this process has a handler yet.
    """
    if not settings.REDIS_URL:
        return  # one process: the local invalidation is all there is
    import redis

    try:
        with redis.Redis.from_url(settings.REDIS_URL, socket_timeout=2) as client:
            client.incr(settings.BYOK["STATE_PREFIX"] + "version")
    except redis.RedisError:
        log.warning("could not announce a configuration change through Redis")


_handler: BYOKHandler | None = None


def get_handler() -> BYOKHandler:
    """The process-wide handler (created on first use)."""
    global _handler
    if _handler is None:
        _handler = BYOKHandler()
    return _handler
