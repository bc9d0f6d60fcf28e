"""`BYOKHandler`: the one service every front end calls, and the only code that talks to providers.

    handler = get_handler()
    result = await handler.chat(req, provider="openai", user_id=user.pk)
    async for event in handler.stream(req):
        ...  # StreamStarted, StreamEvent deltas, then exactly one StreamDone or StreamFailed

It routes (`byok.gateway.routing`), admits the request against the catalog and
budgets (`byok.budgets`), runs the failover loop (`byok.gateway.failover`)
over `Upstream.send()` / `Upstream.open_stream()` (`byok.gateway.upstream`; `complete()` takes the call, so
`byok.gateway.embeddings` shares the path with `Upstream.send_embeddings()`), and accounts for usage
(`byok.gateway.accounting`, `byok.gateway.usage`). Provider and key changes go through `byok.registry`, never
through the handler.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncGenerator, Awaitable, Callable
from dataclasses import replace
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings

from byok import registry
from byok.budgets import Book, BudgetGate, Ticket
from byok.exceptions import ByokError, ProviderNotFoundError
from byok.gateway.accounting import Answer, Ledger, Result
from byok.gateway.config_cache import ConfigCache, KeyConfig, ProviderConfig, Snapshot, bump_shared_version
from byok.gateway.failover import Attempt, Failover, Run
from byok.gateway.key_secrets import KeySecrets
from byok.gateway.keypool import KeyPool
from byok.gateway.meter import Meter
from byok.gateway.routing import Target, request_for, reserve_for, route, split_model
from byok.gateway.upstream import ClientRegistry, Upstream, UpstreamStream
from byok.gateway.usage import UsageWriter, shared_writer
from byok.keys.grant import Grant, ModelNotAllowed
from byok.providers.types import (
    TOKEN_KINDS,
    ChatRequest,
    ChatResponse,
    GatewayEvent,
    Message,
    StreamDone,
    StreamFailed,
    StreamStarted,
    Usage,
)
from byok.signals import config_changed
from byok.state import StateBackend, get_state_backend

__all__ = ["Attempt", "BYOKHandler", "ChatResult", "bump_shared_version", "get_handler", "split_model"]

T = TypeVar("T")
A = TypeVar("A", bound=Answer)
Send = Callable[[ProviderConfig, KeyConfig, str, ChatRequest], Awaitable[T]]  # one upstream call, as Upstream.send
ChatResult = Result[ChatResponse]  # a complete answer and how byok got it


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
        self.clock, self.wall = clock, wall
        self.usage = usage or shared_writer()
        self.pool = KeyPool()
        self.secrets = KeySecrets()  # provider keys decrypted once (byok.gateway.key_secrets)
        self.upstream = Upstream(
            clients or ClientRegistry(settings.BYOK.get("HTTP_TRANSPORT", "default")),
            self.pool,
            state=self.state,
            clock=clock,
            wall=wall,
        )
        self.failover = Failover(
            pool=self.pool, state=self.state, secret=self.secrets.reveal, clock=clock, wall=wall, sleep=sleep, rand=rand
        )
        self.gate = BudgetGate()  # catalog limits, cost, user and key budgets (byok.budgets)
        self.meter = Meter()  # the log line and the metrics of every finished request (byok.gateway.meter)
        self.ledger = Ledger(self.gate, self.usage, self.meter, clock)  # usage records (byok.gateway.accounting)
        self.config = ConfigCache(
            state_factory=state_factory
            or (lambda: get_state_backend(settings.REDIS_URL, prefix=settings.BYOK["STATE_PREFIX"], now=wall)),
            clock=clock,
            poll_s=settings.BYOK.get("CONFIG_POLL_S", 0.5),
            on_load=self._loaded,
        )
        config_changed.connect(self._on_config_changed, weak=True)

    # -- configuration cache ------------------------------------------------------------

    def _on_config_changed(self, **kwargs: Any) -> None:
        self.invalidate()

    def invalidate(self) -> None:
        """Forget cached providers and keys; the next request reloads them."""
        self.config.invalidate()

    def state(self) -> StateBackend:
        return self.config.state()

    async def snapshot(self) -> Snapshot:
        """Providers and keys, reloaded when this or another process changed them."""
        return await self.config.get()

    def _loaded(self, snap: Snapshot, book: Book) -> None:
        self.gate.preload(snap, book)
        self.meter.configure(snap, book.catalog)
        self.secrets.keep(snap)

    async def list_providers(self) -> list[ProviderConfig]:
        """The configured providers, by priority (for `GET /v1/models`)."""
        return list((await self.snapshot()).ordered)

    async def test_provider(self, provider_id: int | str) -> dict[str, Any]:
        """A minimal live call (one short answer, no failover): ok, latency, error."""
        provider = await sync_to_async(registry.get_provider)(provider_id)
        req = ChatRequest(
            model=provider.default_model or "", messages=(Message(role="user", content="ping"),), max_tokens=1
        )
        started = self.clock()
        try:
            result = await self.chat(req, provider=provider.name, interface="test", failover=False)
        except ByokError as exc:
            return {"ok": False, "latency_ms": (self.clock() - started) * 1000, "error": exc.to_dict()}
        return {
            "ok": True,
            "latency_ms": result.latency_ms,
            "model": result.model,
            "key_hint": result.key_hint,
            "error": None,
        }

    # -- routing ----------------------------------------------------------------------------

    async def route(self, req: ChatRequest, provider: str | None, *, failover: bool = True) -> list[Target]:
        """The ordered targets for a request; raises ProviderNotFoundError before any upstream call."""
        try:
            return route(await self.snapshot(), req, provider, failover=failover, knows=self._catalog_knows)
        except ProviderNotFoundError:  # registered through another process? Its announcement is read at once,
            pass  # so every request racing the change finds it; an unannounced one is sought at most once a second.
        try:
            return route(await self.config.fresh(), req, provider, failover=failover, knows=self._catalog_knows)
        except ProviderNotFoundError:
            if not self.config.may_refresh():
                raise
        self.invalidate()
        return route(await self.snapshot(), req, provider, failover=failover, knows=self._catalog_knows)

    def _catalog_knows(self, provider: ProviderConfig, model: str) -> bool:
        return self.gate.current.catalog.lookup(provider.kind, model, provider.name) is not None

    async def _admit(
        self,
        req: ChatRequest,
        provider: str | None,
        user_id: int | None,
        *,
        failover: bool = True,
        grant: Grant | None = None,
    ) -> tuple[list[Target], Ticket]:
        """Route (keeping only the targets a gateway key may use), prepare every target for its model, and reserve
        the request in its limits and budgets (the user's, the gateway key's and its team's: one round trip); the
        ticket must be settled (`Ledger.settle`) however the request ends."""
        targets = await self.route(req, provider, failover=failover)
        if grant is not None:
            targets = [t for t in targets if grant.allows(f"{t.provider.name}/{t.model}")]
            if not targets:
                raise ModelNotAllowed(f"This key may not use {req.model!r}.")
        admitted, ticket = await self.gate.admit(
            req,
            targets,
            user_id=user_id,
            state=self.state(),
            snapshot=await self.snapshot(),
            now=self.wall(),
            grant=grant,
        )
        return [replace(target, prepared=prepared) for target, prepared in admitted], ticket

    # -- chat -----------------------------------------------------------------------------------

    async def _serve(
        self,
        run: Run,
        req: ChatRequest,
        targets: list[Target],
        send: Send[T],
        *,
        stream: bool,
        deadline_s: float,
    ) -> tuple[T, Target, KeyConfig]:
        """The path `chat()` and `stream()` share once admitted: fail over across the targets and their keys until
        `send` (`Upstream.send` or `Upstream.open_stream`) succeeds."""

        async def call(target: Target, key: KeyConfig, secret: str) -> T:
            return await send(target.provider, key, secret, request_for(target, req, stream=stream))

        return await self.failover.run(
            run,
            targets,
            lambda t: reserve_for(t, req),
            call,
            deadline=run.started + deadline_s,
            blocked=self.gate.key_blocker(self.state()),
        )

    async def complete(
        self,
        req: ChatRequest,
        send: Send[A],
        *,
        provider: str | None = None,
        user_id: int | None = None,
        interface: str = "rest",
        failover: bool = True,
        deadline_s: float = 300.0,
        before_ms: float = 0.0,
        grant: Grant | None = None,
        usable: Callable[[list[Target]], list[Target]] = list,
    ) -> Result[A]:
        """One complete answer (`chat()`, `byok.gateway.embeddings.embed()`): admit `req` (limits; budgets reserved),
        fail over across the targets `usable` keeps until `send` answers, record its usage and settle the
        reservation with it, or release it however the request fails.

        `before_ms`: the time the request already spent in byok before this call (server, middleware,
        parsing), counted in the answer's overhead. `grant`: the gateway key the caller used (its allow-list
        filters the targets; usage records name the key and its team).
        """
        run, entry = self.ledger.start(
            req, user_id=user_id, interface=interface, stream=False, before_ms=before_ms, grant=grant
        )
        ticket = None
        try:
            targets, ticket = await self._admit(req, provider, user_id, failover=failover, grant=grant)
            targets = usable(targets)
            answer, target, key = await self._serve(run, req, targets, send, stream=False, deadline_s=deadline_s)
        except BaseException as exc:
            self.ledger.finish(entry, run, error=exc)
            await self.ledger.settle(self.state(), ticket, run, Usage(), None)  # failed or cancelled: released
            raise
        usage = answer.usage or Usage()
        self.ledger.fill(entry, run, target, key, usage)
        self.ledger.finish(entry, run)
        await self.ledger.settle(self.state(), ticket, run, usage, entry.cost)
        return self.ledger.result(entry, run, answer, target, key)

    async def chat(
        self,
        req: ChatRequest,
        *,
        provider: str | None = None,
        user_id: int | None = None,
        interface: str = "rest",
        failover: bool = True,
        deadline_s: float = 300.0,
        before_ms: float = 0.0,
        grant: Grant | None = None,
    ) -> ChatResult:
        """A complete answer, with failover; raises a ByokError subclass when it cannot get one (`complete()`)."""
        return await self.complete(
            req,
            self.upstream.send,
            provider=provider,
            user_id=user_id,
            interface=interface,
            failover=failover,
            deadline_s=deadline_s,
            before_ms=before_ms,
            grant=grant,
        )

    async def stream(
        self,
        req: ChatRequest,
        *,
        provider: str | None = None,
        user_id: int | None = None,
        interface: str = "rest",
        deadline_s: float = 300.0,
        before_ms: float = 0.0,
        grant: Grant | None = None,
    ) -> AsyncGenerator[GatewayEvent, None]:
        """StreamStarted, then normalised events as they arrive, then exactly one StreamDone or StreamFailed.

        Failures before the first token fail over transparently (StreamStarted
        comes after them, naming who serves); if every target fails the stream
        is a lone StreamFailed. After the first token a failure ends the stream
        with StreamFailed(partial=True). Closing the generator (or cancelling
        its task) closes the upstream response at once; usage is recorded
        either way. The overhead (StreamStarted's, and the usage record's) is
        byok's time up to the first token, upstream excluded; `before_ms` as
        for `chat()`.
        """
        run, entry = self.ledger.start(
            req, user_id=user_id, interface=interface, stream=True, before_ms=before_ms, grant=grant
        )
        opened: UpstreamStream | None = None
        usage = Usage()
        outcome: BaseException | None = None
        ticket = None
        try:
            try:
                targets, ticket = await self._admit(req, provider, user_id, grant=grant)
                opened, target, key = await self._serve(
                    run, req, targets, self.upstream.open_stream, stream=True, deadline_s=deadline_s
                )
            except ByokError as exc:
                outcome = exc
                yield StreamFailed(error=exc, partial=False, request_id=run.request_id, attempts=run.attempt_dicts())
                return
            assert opened is not None
            self.ledger.fill(entry, run, target, key, usage)
            entry.ttft_ms = (opened.first_token_at - run.started) * 1000 if opened.first_token_at else None
            entry.overhead_ms = run.overhead_ms(self.clock())
            yield StreamStarted(
                provider=target.provider.name,
                model=opened.model or target.model,
                key_hint=key.hint,
                attempts=run.attempt_dicts(),
                request_id=run.request_id,
                failover_ms=entry.failover_ms,
                overhead_ms=entry.overhead_ms,
            )
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
                self.ledger.fill(entry, run, target, key, usage)
                yield StreamFailed(error=exc, partial=True, request_id=run.request_id, attempts=run.attempt_dicts())
                return
            self.ledger.fill(entry, run, target, key, usage)
            await self.pool.record_usage(self.state(), key, usage, estimated=reserve_for(target, req))
            yield StreamDone(
                finish_reason=finish.finish_reason if finish else "stop",  # type: ignore[arg-type]  # a finish event has one
                raw_finish_reason=finish.raw_finish_reason if finish else None,
                usage=usage,
                provider=target.provider.name,
                model=opened.model or target.model,
                key_hint=key.hint,
                attempts=run.attempt_dicts(),
                latency_ms=(self.clock() - run.started) * 1000,
                failover_ms=entry.failover_ms,
                ttft_ms=entry.ttft_ms,
                request_id=run.request_id,
            )
        except BaseException as exc:  # cancelled, or the consumer closed us (GeneratorExit)
            outcome = exc
            raise
        finally:
            if opened is not None:
                await opened.aclose()
            self.ledger.finish(entry, run, error=outcome)
            await self.ledger.settle(self.state(), ticket, run, usage, entry.cost if run.current is not None else None)

    async def flush_usage(self) -> None:
        await self.usage.flush()

    async def aclose(self) -> None:
        await self.upstream.aclose()
        await self.config.aclose()
        await self.usage.flush()


_handler: BYOKHandler | None = None


def get_handler() -> BYOKHandler:
    """The process-wide handler (created on first use)."""
    global _handler
    if _handler is None:
        _handler = BYOKHandler()
    return _handler
