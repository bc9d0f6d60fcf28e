"""Numbers from timings: percentiles, summaries, and one request's measurement (`Sample`).

    s = summarize([0.0012, 0.0011, 0.0013])    # seconds in
    s.median_ms, s.p99_ms                      # milliseconds out

Percentiles use linear interpolation between the closest ranks, the same
rule as `statistics.quantiles(..., method="inclusive")`, so a p99 of few
samples is not just the maximum.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field

__all__ = ["Sample", "Summary", "added", "percentile", "per_chunk", "ratio", "summarize"]


@dataclass(slots=True)
class Sample:
    """One request as the client saw it. Times are seconds from the request's start."""

    ok: bool
    latency: float  # until the answer was complete (or failed)
    ttft: float | None = None  # first content token (streams)
    last: float | None = None  # last content token (streams)
    chunks: int = 0  # content chunks received
    status: int = 0
    error: str = ""
    cpu: float | None = None  # CPU seconds of the event loop's thread spent on it (in-process figures)

    @property
    def chunk_interval(self) -> float | None:
        """Mean time between content chunks of this stream, from the first to the last."""
        if self.ttft is None or self.last is None or self.chunks < 2:
            return None
        return (self.last - self.ttft) / (self.chunks - 1)


def percentile(values: Sequence[float], q: float) -> float:
    """The q-th percentile (0..100) of `values`, interpolated between closest ranks."""
    if not values:
        return math.nan
    if not 0 <= q <= 100:
        raise ValueError(f"percentile must be within 0..100, not {q}")
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low = math.floor(pos)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


@dataclass(frozen=True, slots=True)
class Summary:
    """Count, median, p99, mean and extremes of a list of durations in seconds."""

    n: int
    median: float
    p99: float
    mean: float
    low: float
    high: float

    @property
    def median_ms(self) -> float:
        return self.median * 1000

    @property
    def p99_ms(self) -> float:
        return self.p99 * 1000

    def to_dict(self) -> dict[str, float]:
        return {
            "n": self.n,
            "median_ms": self.median_ms,
            "p99_ms": self.p99_ms,
            "mean_ms": self.mean * 1000,
            "min_ms": self.low * 1000,
            "max_ms": self.high * 1000,
        }


EMPTY = Summary(0, math.nan, math.nan, math.nan, math.nan, math.nan)


def summarize(values: Iterable[float | None]) -> Summary:
    """Summary of the values that are not None (an empty one when none are)."""
    data = [v for v in values if v is not None]
    if not data:
        return EMPTY
    return Summary(len(data), percentile(data, 50), percentile(data, 99), sum(data) / len(data), min(data), max(data))


def added(measured: float, baseline: float) -> float:
    """What the gateway added on top of the baseline (may be slightly negative within noise)."""
    return measured - baseline


def ratio(measured: float, baseline: float) -> float:
    """measured / baseline; NaN when the baseline is zero or unknown."""
    if not baseline or math.isnan(baseline) or math.isnan(measured):
        return math.nan
    return measured / baseline


def per_chunk(samples: Iterable[Sample]) -> Summary:
    """Summary of the streams' mean inter-chunk intervals."""
    return summarize(s.chunk_interval for s in samples if s.ok)


@dataclass(slots=True)
class LoadResult:
    """A load run: every sample, the wall time it took, and how it ended."""

    samples: list[Sample] = field(default_factory=list)
    wall: float = 0.0
    stopped_by_time: bool = False

    @property
    def ok(self) -> list[Sample]:
        return [s for s in self.samples if s.ok]

    @property
    def errors(self) -> int:
        return sum(1 for s in self.samples if not s.ok)

    @property
    def throughput(self) -> float:
        """Successful requests per second of wall time."""
        return len(self.ok) / self.wall if self.wall > 0 else math.nan

    def latency(self) -> Summary:
        return summarize(s.latency for s in self.ok)

    def ttft(self) -> Summary:
        return summarize(s.ttft for s in self.ok)

    def chunk(self) -> Summary:
        return per_chunk(self.samples)

    def error_kinds(self) -> dict[str, int]:
        kinds: dict[str, int] = {}
        for s in self.samples:
            if not s.ok:
                kinds[s.error or str(s.status)] = kinds.get(s.error or str(s.status), 0) + 1
        return kinds


__all__ += ["EMPTY", "LoadResult"]
