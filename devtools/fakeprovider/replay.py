"""Replaying a recorded provider body from the shared corpus (setting `replay=<case>`).

The body goes out byte for byte with the sidecar's status and headers, cut in
pieces of `chunk_size` bytes, or, when that is 0, of 1..64 random bytes drawn
from `seed` (default: the case name), so cuts land inside multi-byte UTF-8
characters and between CR and LF. `delay_ms` paces the pieces. Faults do not
apply to replays: the corpus has its own error cases.
"""

from __future__ import annotations

import asyncio
import functools
import json
import random
from pathlib import Path
from typing import Any

from aiohttp import web

from devtools.fakeprovider.recorder import Recorder
from devtools.fakeprovider.settings import Settings

__all__ = ["CORPUS", "load_case", "send_replay"]

CORPUS = Path(__file__).resolve().parents[2] / "byok" / "tests" / "fixtures" / "corpus"
_MAX_PIECES = 1_000_000


@functools.lru_cache(maxsize=1)
def _index() -> dict[str, dict[str, Any]]:
    try:
        return {row["case"]: row for row in json.loads((CORPUS / "_index.json").read_text())}
    except (OSError, ValueError):
        return {}


@functools.lru_cache(maxsize=64)
def load_case(name: str) -> tuple[int, tuple[tuple[str, str], ...], bytes] | None:
    """(status, headers, body) of a corpus case; None for a name not in the index (no path games)."""
    row = _index().get(name)
    if row is None:
        return None
    sidecar = json.loads((CORPUS / f"{name}.json").read_text())
    body = (CORPUS / row["body_file"]).read_bytes()
    headers = dict(sidecar.get("response_headers") or {})
    if not any(h.lower() == "content-type" for h in headers):
        headers["content-type"] = "text/event-stream" if row["body_file"].endswith(".sse") else "application/json"
    return int(sidecar.get("http_status") or row.get("http_status") or 200), tuple(headers.items()), body


def _cuts(body: bytes, s: Settings, name: str) -> list[bytes]:
    if s.chunk_size > 0:
        size = max(s.chunk_size, len(body) // _MAX_PIECES + 1)
        return [body[i : i + size] for i in range(0, len(body), size)]
    rng = random.Random(s.seed or name)
    pieces: list[bytes] = []
    i = 0
    while i < len(body) and len(pieces) < _MAX_PIECES:
        n = rng.randint(1, 64)
        pieces.append(body[i : i + n])
        i += n
    if i < len(body):
        pieces.append(body[i:])
    return pieces


async def send_replay(request: web.Request, s: Settings, rec: dict[str, Any], recorder: Recorder) -> web.StreamResponse:
    case = load_case(s.replay)
    if case is None:
        recorder.finish(rec, "rejected", 400)
        known = ", ".join(sorted(_index()))
        raise web.HTTPBadRequest(
            text=json.dumps({"error": {"message": f"fakeprovider: unknown replay case {s.replay!r}; known: {known}"}}),
            content_type="application/json",
        )
    status, headers, body = case
    resp = web.StreamResponse(status=status, headers=dict(headers))
    recorder.open_streams += 1
    try:
        await resp.prepare(request)
        if s.first_delay_ms:
            await asyncio.sleep(s.first_delay_ms / 1000)
        for i, piece in enumerate(_cuts(body, s, s.replay)):
            if s.delay_ms and i:
                await asyncio.sleep(s.delay_ms / 1000)
            await resp.write(piece)
            rec["chunks_sent"] += 1
        await resp.write_eof()
        recorder.finish(rec, "completed", status)
        return resp
    except (ConnectionResetError, asyncio.CancelledError) as exc:
        recorder.finish(rec, "cancelled", status)
        if isinstance(exc, asyncio.CancelledError):
            raise
        return resp
    finally:
        recorder.open_streams -= 1
