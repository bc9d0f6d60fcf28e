"""`x-byok-overhead-ms`: the time a request spent in byok, upstream time excluded.

byok's ASGI handler notes when a request arrived (`RECEIVED_AT` in its scope,
on the monotonic clock). A chat view passes the time spent so far to the
handler (`time_in_byok_ms`), which adds its own time less every upstream
attempt's and every backoff wait's (`Run.overhead_ms`): that figure is the
header of the answer and the usage record's `overhead_ms`. For a stream it is
the time up to the first token (the headers leave with it). Answers that never
reached a provider (refused, invalid, every other endpoint) get the whole time
since arrival, which is byok's alone, from the ASGI handler.
"""

from __future__ import annotations

import time

__all__ = ["HEADER", "RECEIVED_AT", "overhead_header", "time_in_byok_ms"]

HEADER = "x-byok-overhead-ms"
RECEIVED_AT = "byok.received_at"


def time_in_byok_ms(request) -> float:
    """Milliseconds since the request reached byok's ASGI handler (0 when it came another way)."""
    received = getattr(request, "scope", {}).get(RECEIVED_AT)
    return (time.monotonic() - received) * 1000 if received is not None else 0.0


def overhead_header(ms: float) -> str:
    return f"{max(0.0, ms):.2f}"
