"""`python -m devtools.bench.metering`: what counting and logging one request costs byok.

`BYOKHandler._finish` calls `Meter.finished()` once per chat request (every
dialect): the Prometheus instruments (`byok.metrics.observe_request`) and the
per-request log line. This measures that call alone, on the CPU clock of this
thread, in the two modes a server runs in: one process (values in memory) and
several workers (`PROMETHEUS_MULTIPROC_DIR`: values in memory-mapped files),
each with the log line written (to /dev/null) and without it. The HTTP figures
of `make bench` carry it too, but on a shared machine their noise is larger
than this cost, which is why it is measured apart.

    python -m devtools.bench.metering [--n 20000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _measure(n: int, log: bool) -> float:  # pragma: no cover - runs in a child process
    """Microseconds of CPU per `Meter.finished()` call, median of 5 rounds of `n` calls."""
    import logging
    import statistics

    import django

    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "byok_project.settings")
    os.environ.setdefault("BYOK_LOCAL_SECRETS", "1")
    django.setup()
    from byok.gateway.failover import Attempt
    from byok.gateway.meter import Meter
    from byok.gateway.usage import UsageEntry, now_utc

    request_log = logging.getLogger("byok.request")
    request_log.propagate = False
    request_log.handlers = [logging.StreamHandler(open(os.devnull, "w"))]  # lives as long as the run
    request_log.setLevel(logging.INFO if log else logging.WARNING)
    meter = Meter()
    entry = UsageEntry("r" * 32, now_utc(), 1, "openai", False, model="gpt-4o-mini", provider_name="openai")
    entry.tokens_in, entry.tokens_out, entry.latency_ms, entry.ttft_ms, entry.overhead_ms = 12, 20, 410.0, 120.0, 0.8
    attempts = [Attempt("openai", "sk-…abcd", 200, None, 409.0)]
    rounds = []
    for _ in range(5):
        started = time.thread_time()
        for _ in range(n):
            meter.finished(entry, attempts, None)
        rounds.append((time.thread_time() - started) / n * 1e6)
    return statistics.median(rounds)


def run(n: int = 20000) -> dict[str, float]:
    """{mode: µs per request} for one process and several, with and without the log line."""
    results = {}
    for mode in ("one process", "several workers"):
        for log in (False, True):
            env = {k: v for k, v in os.environ.items() if k != "PROMETHEUS_MULTIPROC_DIR"}
            with tempfile.TemporaryDirectory(prefix="byok-bench-metrics-") as directory:
                if mode == "several workers":
                    env["PROMETHEUS_MULTIPROC_DIR"] = directory
                code = f"from devtools.bench.metering import _measure; print(_measure({n}, {log}))"
                out = subprocess.run(
                    [sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True, check=True
                )
            results[f"{mode}, {'metrics + log line' if log else 'metrics only'}"] = float(out.stdout.split()[-1])
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m devtools.bench.metering", description=__doc__.splitlines()[0])
    parser.add_argument("--n", type=int, default=20000, help="calls per round (5 rounds, the median is reported)")
    parser.add_argument("--json", action="store_true", help="print JSON")
    args = parser.parse_args(argv)
    results = run(args.n)
    if args.json:
        print(json.dumps(results))
    else:
        print("| mode | CPU per request (µs) |\n| --- | --- |")
        for mode, us in results.items():
            print(f"| {mode} | {us:.1f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
