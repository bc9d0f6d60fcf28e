"""Replaying recorded provider bodies through a real httpx client mocked by respx.

    sent, events = await replay_stream(adapter, req, body, pieces=pieces)

The request the adapter builds goes through httpx exactly as the handler sends
it, so tests can assert URL, headers and JSON body; the response body comes
back in the given pieces so the parser sees bytes split anywhere.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import httpx
import respx

from byok.providers.base import ProviderAdapter
from byok.providers.types import ChatRequest, ChatResponse, StreamEvent

CORPUS = Path(__file__).resolve().parent.parent / "fixtures" / "corpus"


def corpus_case(name: str) -> tuple[dict[str, Any], bytes]:
    """A corpus sidecar and its body bytes."""
    sidecar = json.loads((CORPUS / f"{name}.json").read_text())
    body = (CORPUS / sidecar["body_file"]).read_bytes()
    return sidecar, body


def split_at(body: bytes, cuts: Iterable[int]) -> list[bytes]:
    """`body` cut at the given byte offsets (sorted, deduplicated, in range)."""
    points = sorted({c for c in cuts if 0 < c < len(body)})
    return [body[a:b] for a, b in zip([0, *points], [*points, len(body)])]


class _Pieces(httpx.AsyncByteStream):
    def __init__(self, pieces: list[bytes]) -> None:
        self.pieces = pieces

    async def __aiter__(self):
        for piece in self.pieces:
            yield piece


async def replay_stream(
    adapter: ProviderAdapter,
    req: ChatRequest,
    body: bytes,
    *,
    api_key: str = "sk-test-0000000000000000000000",
    status: int = 200,
    headers: dict[str, str] | None = None,
    pieces: list[bytes] | None = None,
) -> tuple[httpx.Request, list[StreamEvent]]:
    """Send the adapter's streaming request to a respx mock and parse what comes back."""
    up = adapter.build_request(req, api_key=api_key)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.route(method=up.method, url=up.url).mock(
            return_value=httpx.Response(
                status,
                headers={"content-type": "text/event-stream", **(headers or {})},
                stream=_Pieces(pieces if pieces is not None else [body]),
            )
        )
        events: list[StreamEvent] = []
        async with httpx.AsyncClient() as client:
            async with client.stream(up.method, up.url, headers=up.headers, json=up.json) as resp:
                if resp.status_code >= 400:
                    raise adapter.classify_error(resp.status_code, resp.headers, await resp.aread())
                parser = adapter.stream_parser()
                async for chunk in resp.aiter_raw():
                    events.extend(parser.feed(chunk))
                events.extend(parser.close())
        return route.calls.last.request, events


async def replay_json(
    adapter: ProviderAdapter,
    req: ChatRequest,
    body: bytes,
    *,
    api_key: str = "sk-test-0000000000000000000000",
    status: int = 200,
    headers: dict[str, str] | None = None,
) -> tuple[httpx.Request, ChatResponse]:
    """Send the adapter's request to a respx mock and parse the full answer (or raise its error)."""
    up = adapter.build_request(req, api_key=api_key)
    with respx.mock(assert_all_called=True) as mock:
        route = mock.route(method=up.method, url=up.url).mock(
            return_value=httpx.Response(
                status, headers={"content-type": "application/json", **(headers or {})}, content=body
            )
        )
        async with httpx.AsyncClient() as client:
            resp = await client.request(up.method, up.url, headers=up.headers, json=up.json)
        sent = route.calls.last.request
        if resp.status_code >= 400:
            raise adapter.classify_error(resp.status_code, resp.headers, resp.content)
        return sent, adapter.parse_response(resp.content, status=resp.status_code)
