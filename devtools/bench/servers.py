"""The processes a bench run starts (fake provider, byok), and what it reads from them (RSS, CPU, profiles).

Everything listens on 127.0.0.1 and is stopped by its PID; the start-up
helpers are the end-to-end tests' own (`byok.tests.live`), so the bench and
the tests run byok the same way.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import uuid
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

from byok.tests.live import LiveServer, drop_live_env, live_env, manage, start_fake_provider, start_served

__all__ = [
    "Gateway",
    "Profile",
    "cpu_seconds",
    "drop_live_env",
    "profile_pid",
    "read_memory",
    "start_fake_provider",
    "start_gateway",
    "summarize_profile",
    "tree_cpu_seconds",
    "tree_memory",
    "tree_pids",
]


def read_memory(pid: int) -> dict[str, float]:
    """VmRSS (now) and VmHWM (peak since start) of a process, in MiB; empty when it is gone."""
    out: dict[str, float] = {}
    try:
        text = Path(f"/proc/{pid}/status").read_text()
    except OSError:
        return out
    for name in ("VmRSS", "VmHWM"):
        match = re.search(rf"^{name}:\s+(\d+) kB", text, re.M)
        if match:
            out[name] = int(match.group(1)) / 1024
    return out


def cpu_seconds(pid: int) -> float | None:
    """CPU time (user + system, every thread) a process has used so far; None when it is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def tree_pids(pid: int) -> list[int]:
    """`pid` and every process below it (a launcher's workers, granian's worker)."""
    found, todo = [], [pid]
    while todo:
        current = todo.pop()
        found.append(current)
        try:
            for task in Path(f"/proc/{current}/task").iterdir():
                todo += [int(c) for c in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


def tree_cpu_seconds(pid: int) -> float | None:
    """CPU time used so far by `pid` and the processes below it; None when `pid` is gone."""
    own = cpu_seconds(pid)
    if own is None:
        return None
    return own + sum(cpu_seconds(p) or 0.0 for p in tree_pids(pid)[1:])


def tree_memory(pid: int) -> dict[str, float]:
    """The largest VmRSS and VmHWM of `pid`'s tree (per process: the figure per worker), and the sum of VmRSS."""
    reads = [m for m in (read_memory(p) for p in tree_pids(pid)) if m]
    if not reads:
        return {}
    return {
        "VmRSS": max(m.get("VmRSS", 0.0) for m in reads),
        "VmHWM": max(m.get("VmHWM", 0.0) for m in reads),
        "total_RSS": sum(m.get("VmRSS", 0.0) for m in reads),
        "processes": float(len(reads)),
    }


@dataclass
class Gateway:
    """byok served the way `make serve` serves it (a server, one or more workers), and its database."""

    server: LiveServer
    env: dict[str, str]
    transport: str
    redis: bool

    @property
    def pid(self) -> int:
        return self.server.proc.pid

    def stop(self) -> None:
        self.server.stop()
        drop_live_env(self.env)


def start_gateway(
    tmp: Path,
    fake_url: str,
    *,
    transport: str,
    redis_url: str | None,
    ws_chunks: int = 50,
    ws_delay_ms: int = 100,
    server: str = "daphne",
    workers: int = 1,
) -> Gateway:  # pragma: no cover - starts servers: `make bench` and its end-to-end cousins only
    """A fresh database with the bench providers, then byok (`python -m byok_project.serve`) on a free port."""
    tmp.mkdir(parents=True, exist_ok=True)
    env = live_env(tmp)
    env.pop("REDIS_URL", None)
    if redis_url:
        env["REDIS_URL"] = redis_url
        env["BYOK_STATE_PREFIX"] = f"byok-bench-{uuid.uuid4().hex[:8]}:"
    manage(
        env,
        "shell",
        "-c",
        f"from devtools.bench.setup import register_bench_providers; "
        f"register_bench_providers({fake_url!r}, ws_chunks={ws_chunks}, ws_delay_ms={ws_delay_ms})",
    )
    try:
        served = start_served(
            env,
            tmp,
            server=server,
            workers=workers,
            extra_env={"BYOK_HTTP_TRANSPORT": transport, "LOG_LEVEL": "WARNING"},
        )
    except BaseException:
        drop_live_env(env)
        raise
    return Gateway(served, env, transport, bool(redis_url))


@dataclass
class Profile:
    """Where a process spent its samples: by leaf function and by package, as percentages."""

    samples: int = 0
    leaves: list[tuple[str, float]] = field(default_factory=list)
    packages: list[tuple[str, float]] = field(default_factory=list)
    error: str = ""


_PACKAGES = (
    ("byok/", "byok"),
    ("byok_project/", "byok"),
    ("django/", "django"),
    ("rest_framework/", "djangorestframework"),
    ("daphne/", "daphne"),
    ("twisted/", "twisted"),
    ("autobahn/", "autobahn"),
    ("uvicorn/", "uvicorn"),
    ("granian/", "granian"),
    ("channels/", "channels"),
    ("asgiref/", "asgiref"),
    ("httpx_aiohttp/", "httpx-aiohttp"),
    ("httpx/", "httpx"),
    ("httpcore/", "httpcore"),
    ("aiohttp/", "aiohttp"),
    ("redis/", "redis"),
    ("asyncio/", "asyncio"),
    ("sqlite3/", "sqlite3"),
    ("psycopg/", "psycopg"),
    ("json/", "json"),
    ("logging/", "logging"),
    ("h11/", "h11"),
    ("anyio/", "anyio"),
    ("concurrent/futures/", "concurrent.futures"),
    ("threading.py", "threading"),
    ("selectors.py", "selectors"),
)


def _package(frame: str) -> str:
    for needle, name in _PACKAGES:
        if needle in frame:
            return name
    return "other"


def summarize_profile(collapsed: str, *, top: int = 12) -> Profile:
    """Summarize py-spy's raw (collapsed) output: `frame;frame;...;leaf count` per line.

    A sample counts once towards every package on its stack (inclusive) and
    once towards its leaf function (self time). Frames of no listed package
    (the interpreter's own, the standard library's rest) are left out of the
    package list.
    """
    leaves: Counter[str] = Counter()
    packages: Counter[str] = Counter()
    total = 0
    for line in collapsed.splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        n = int(count)
        total += n
        frames = [f for f in stack.split(";") if f]
        if not frames:
            continue
        leaves[_short(frames[-1])] += n
        for pkg in {_package(f) for f in frames[1:]}:
            packages[pkg] += n
    if not total:
        return Profile(error="no samples")
    pct = lambda c: round(100 * c / total, 1)  # noqa: E731
    packages.pop("other", None)
    return Profile(
        total,
        [(name, pct(c)) for name, c in leaves.most_common(top)],
        [(name, pct(c)) for name, c in packages.most_common(top)],
    )


def _short(frame: str) -> str:
    """`func (path/to/pkg/mod.py:12)` -> `func (pkg/mod.py)`."""
    match = re.match(r"(.*) \((.*?):\d+\)$", frame)
    if not match:
        return frame
    func, path = match.groups()
    parts = Path(path).parts
    return f"{func} ({'/'.join(parts[-2:])})"


def profile_pid(
    pid: int, seconds: float, out: Path
) -> subprocess.Popen | None:  # pragma: no cover - needs py-spy and ptrace
    """Start `py-spy record` on `pid` for `seconds`, writing collapsed stacks to `out`; None without py-spy."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    if not Path(spy).exists():
        return None
    return subprocess.Popen(
        [
            spy,
            "record",
            "--pid",
            str(pid),
            "--subprocesses",
            "--duration",
            str(max(1, int(seconds))),
            "--rate",
            "200",
            "--format",
            "raw",
            "--nonblocking",
            "--output",
            str(out),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
