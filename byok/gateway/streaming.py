"""Opening an upstream stream and reading it up to its first token, for transparent failover.

`open_stream()` sends the request and reads until the first token (or the
end). Any failure until then raises, so the handler can try another key or
provider as if nothing had been sent to the caller. `UpstreamStream.events()`
then yields what was held back followed by the rest, and `aclose()` closes
the response, returning its connection to the pool or dropping it.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from byok.exceptions import ByokError, StreamInterruptedError
from byok.providers.types import TOKEN_KINDS, StreamEvent, Usage
from byok.gateway.upstream import aiter_body, map_transport_errors

if TYPE_CHECKING:
    from byok.gateway.config_cache import KeyConfig
    from byok.gateway.handler import BYOKHandler, Target
    from byok.providers.types import ChatRequest

__all__ = ["StreamDone", "StreamFailed", "UpstreamStream", "open_stream"]



@dataclass(frozen=True, kw_only=True, slots=True)
class StreamDone:
    """The stream's successful end: why it finished, what it used, who served it."""

    kind: str = "done"
    finish_reason: str
    raw_finish_reason: str | None
    usage: Usage
    provider: str
    model: str
    key_hint: str
    attempts: list[dict]
    latency_ms: float
    failover_ms: float
    ttft_ms: float | None
    request_id: str


@dataclass(frozen=True, kw_only=True, slots=True)
class StreamFailed:
    """The stream's failed end; `partial` is true when tokens had already been sent."""

    kind: str = "error"
    error: ByokError
    partial: bool
    request_id: str
    attempts: list[dict] = field(default_factory=list)


class UpstreamStream:
    """A provider stream that has produced its first token (or ended)."""

    def __init__(self, context: Any, response: Any, parser: Any, body: AsyncIterator[bytes], provider: str) -> None:
        self._context = context
        self._response = response
        self._parser = parser
        self._body = body
        self.provider = provider
        self.held: list[StreamEvent] = []
        self.ended = False
        self.saw_finish = False
        self.first_token_at: float | None = None
        self.model: str | None = None
        self._closed = False

    def _take(self, events: list[StreamEvent]) -> bool:
        """Hold events; true once a token arrived."""
        token = False
        for event in events:
            if event.kind == "finish":
                self.saw_finish = True
            elif event.kind == "meta" and event.model:
                self.model = event.model
            elif event.kind in TOKEN_KINDS:
                token = True
        self.held.extend(events)
        return token

    async def prime(self, clock) -> None:
        """Read until the first token or the end; raise on any failure before it."""
        async for chunk in self._body:
            if self._take(self._parser.feed(chunk)):
                self.first_token_at = clock()
                return
        self._end()

    def _end(self) -> None:
        self.ended = True
        with map_transport_errors(self.provider):
            self._take(self._parser.close())
        if not self.saw_finish and not self._parser.finished:
            raise StreamInterruptedError(f"{self.provider}'s stream ended before it finished.")

    async def events(self) -> AsyncIterator[StreamEvent]:
        held, self.held = self.held, []
        for event in held:
            yield event
        if self.ended:
            return
        async for chunk in self._body:
            events = self._parser.feed(chunk)
            for event in events:
                if event.kind == "finish":
                    self.saw_finish = True
                yield event
        self.ended = True
        self.held = []
        self._take(self._parser.close())
        for event in self.held:
            yield event
        if not self.saw_finish and not self._parser.finished:
            raise StreamInterruptedError(f"{self.provider}'s stream ended before it finished.")

    async def aclose(self) -> None:
        if not self._closed:
            self._closed = True
            await self._context.__aexit__(None, None, None)


async def open_stream(handler: BYOKHandler, target: Target, key: KeyConfig, secret: str, req: ChatRequest) -> UpstreamStream:
    provider = target.provider
    adapter = provider.adapter
    up = adapter.build_request(req, api_key=secret, base_url=provider.base_url or None)
    context = handler.clients.get().stream(up.method, up.url, headers=up.headers, json=up.json, timeout=provider.timeout)
    with map_transport_errors(provider.name):
        response = await context.__aenter__()
    stream = UpstreamStream(context, response, adapter.stream_parser(), aiter_body(response, provider.name), provider.name)
    try:
        if response.status_code >= 400:
            with map_transport_errors(provider.name):
                body = await response.aread()
            raise adapter.classify_error(response.status_code, response.headers, body)
        await handler.pool.note_headers(handler.state(), key, adapter.parse_rate_limits(response.headers), handler.wall())
        await stream.prime(handler.clock)
    except BaseException:
        await stream.aclose()  # drained or closed before any retry: no pooled connection leaks
        raise
    return stream



