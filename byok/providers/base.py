"""The contract every provider adapter fulfils.

An adapter is a translator with no I/O: the handler asks it to build an
`UpstreamRequest`, sends it with its own httpx client, then hands back the
status, headers and body (or the body's bytes as they arrive) for the adapter
to read. Adapters never see the ORM, retries or key storage.

    adapter = get_adapter("anthropic")
    up = adapter.build_request(req, api_key=key, base_url=None)
    parser = adapter.stream_parser()
    for chunk in body_chunks:
        for event in parser.feed(chunk):
            ...
    for event in parser.close():
        ...
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from byok.exceptions import ProviderError
from byok.providers.types import ChatRequest, ChatResponse, RateLimitInfo, StreamEvent, UpstreamRequest

__all__ = ["ProviderAdapter", "StreamParser"]


class StreamParser:
    """Turns a provider's streamed body into `StreamEvent`s, fed bytes split anywhere.

    `feed()` returns the events completed by that chunk; `close()` returns what
    the end of the body completes. Either raises a `ProviderError` for an
    error inside the stream (or `MalformedResponseError` for unreadable data).
    `finished` is true once the provider's own end marker was seen.
    """

    finished: bool = False

    def feed(self, chunk: bytes) -> list[StreamEvent]:
        raise NotImplementedError("subclasses of StreamParser must provide a feed() method")

    def close(self) -> list[StreamEvent]:
        raise NotImplementedError("subclasses of StreamParser must provide a close() method")


class ProviderAdapter:
    """One wire format. Subclasses set the class attributes and implement the methods below."""

    kind: str = ""
    default_base_url: str = ""
    default_timeout: float = 60.0
    # Anthropic needs max_tokens on every request; others may leave it out.
    requires_max_tokens: bool = False
    default_max_tokens: int = 4096

    # Methods that subclasses must implement.

    def build_request(self, req: ChatRequest, *, api_key: str, base_url: str | None = None) -> UpstreamRequest:
        raise NotImplementedError("subclasses of ProviderAdapter must provide a build_request() method")

    def parse_response(self, body: bytes, *, status: int = 200) -> ChatResponse:
        raise NotImplementedError("subclasses of ProviderAdapter must provide a parse_response() method")

    def stream_parser(self) -> StreamParser:
        raise NotImplementedError("subclasses of ProviderAdapter must provide a stream_parser() method")

    def classify_error(self, status: int, headers: Mapping[str, str], body: bytes) -> ProviderError:
        raise NotImplementedError("subclasses of ProviderAdapter must provide a classify_error() method")

    def parse_rate_limits(self, headers: Mapping[str, str]) -> RateLimitInfo:
        raise NotImplementedError("subclasses of ProviderAdapter must provide a parse_rate_limits() method")

    def reads_image_url(self, url: str) -> bool:
        """Whether the provider fetches this image URL itself (else byok may inline it: gateway.images)."""
        return True

    # Shared helpers.

    def base_url(self, configured: str | None) -> str:
        return (configured or self.default_base_url).rstrip("/")

    @staticmethod
    def lower_headers(headers: Mapping[str, str] | Iterable[tuple[str, str]]) -> dict[str, str]:
        items = headers.items() if isinstance(headers, Mapping) else headers
        return {k.lower(): v for k, v in items}
