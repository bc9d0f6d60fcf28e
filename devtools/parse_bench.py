"""CPU cost of reading one stream chunk, per provider adapter, on recorded transcripts.

    .venv/bin/python -m devtools.parse_bench [--rounds 15] [--per-round 200]

Each adapter's stream parser is fed a real recorded stream (byok/tests/fixtures/corpus) event by
event, round after round, the adapters interleaved in one process; the median per-chunk time of
the rounds is printed. The target is at most 20 µs per chunk on the 2-core machine. This replaces
the wall-clock assertions that once sat in the adapter tests: timing belongs in a benchmark.
"""

from __future__ import annotations

import argparse
import json
import statistics
import time
from pathlib import Path

from byok.providers import get_adapter

CORPUS = Path(__file__).resolve().parent.parent / "byok" / "tests" / "fixtures" / "corpus"

# adapter kind -> (corpus case, event separator of its wire format)
CASES = {
    "openai": ("openai_stream_parallel_tool_calls", b"\n\n"),
    "anthropic": ("anthropic_stream_sdk_tool_use", b"\n\n"),
    "gemini": ("gemini_stream_thinking_summary", b"\r\n\r\n"),
}


def chunks(case: str, separator: bytes) -> list[bytes]:
    """The recorded stream of `case`, one network chunk per event."""
    sidecar = json.loads((CORPUS / f"{case}.json").read_text())
    body = (CORPUS / sidecar["body_file"]).read_bytes()
    return [c + separator for c in body.split(separator) if c]


def per_chunk_us(kind: str, pieces: list[bytes], per_round: int) -> float:
    """Microseconds per chunk over `per_round` whole streams through a fresh parser each."""
    adapter = get_adapter(kind)
    start = time.perf_counter()
    for _ in range(per_round):
        parser = adapter.stream_parser()
        for piece in pieces:
            parser.feed(piece)
    return (time.perf_counter() - start) / (per_round * len(pieces)) * 1e6


def main(argv: list[str] | None = None) -> None:
    args = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    args.add_argument("--rounds", type=int, default=15)
    args.add_argument("--per-round", type=int, default=200)
    opts = args.parse_args(argv)
    streams = {kind: chunks(case, sep) for kind, (case, sep) in CASES.items()}
    samples: dict[str, list[float]] = {kind: [] for kind in streams}
    for _ in range(opts.rounds):
        for kind, pieces in streams.items():
            samples[kind].append(per_chunk_us(kind, pieces, opts.per_round))
    for kind, values in samples.items():
        print(f"{kind:10} {statistics.median(values):7.1f} µs per chunk (median of {opts.rounds} rounds)")


if __name__ == "__main__":
    main()
