"""`make serve`: start the ASGI server chosen by `BYOK_SERVER`, in `BYOK_WORKERS` processes.

    BYOK_SERVER=daphne|uvicorn|granian   (default daphne)
    BYOK_WORKERS=N                       (default 1; N > 1 needs REDIS_URL)
    HOST, PORT                           (default 127.0.0.1:8000)

Metrics (`GET /metrics`, byok.exporter): several workers count into one
exposition through prometheus_client's multiprocess mode, which keeps each
process's values in files under `PROMETHEUS_MULTIPROC_DIR`. With more than one
worker the launcher makes that directory (a temporary one unless the variable
names one), empties it of an earlier run's files before any worker starts, and
removes a temporary one when the workers have stopped.

One worker: the server replaces this process (`exec`), exactly as if it had
been started by hand. Several workers: this process binds the listening
socket once and starts N server processes that all accept on it (daphne and
uvicorn take it as an inherited file descriptor; granian shares its own
socket between the workers it starts), forwards SIGTERM / SIGINT to them, and
stops them all when one of them dies, so a supervisor restarts the whole
set. Several processes must share rate windows, cooldowns, quotas, budgets
and the channel layer, so without `REDIS_URL` more than one worker is refused
with a message saying so.

uvicorn runs with uvloop and httptools; granian with uvloop. Both are
optional: `BYOK_SERVER` names one that is not installed, the message says
which package to install.
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Mapping, MutableMapping
from dataclasses import dataclass

__all__ = ["SERVERS", "Plan", "ServeError", "main", "metrics_dir", "plan"]

APP = "byok_project.asgi:application"
# Connections the kernel may hold for a server that is busy (the listen queue). Twisted's default, which daphne's
# -b/-p use, is 50: a burst of clients overflows it while the event loop is busy, and the kernel then drops their
# SYNs or resets connections it completed with a SYN cookie ("Connection error." in a client).
BACKLOG = 2048
SERVERS = ("daphne", "uvicorn", "granian")
# What each server needs importable, and how to get it.
_NEEDS = {
    "daphne": ("daphne",),
    "uvicorn": ("uvicorn", "uvloop", "httptools", "websockets"),
    "granian": ("granian", "uvloop"),
}


class ServeError(Exception):
    """A setting that cannot be served; the message says what to change."""


@dataclass(frozen=True)
class Plan:
    server: str
    workers: int
    host: str
    port: int

    @property
    def shares_socket(self) -> bool:
        """True when this launcher binds the socket and hands it to every worker."""
        return self.workers > 1 and self.server != "granian"

    def command(self, fd: int | None = None) -> list[str]:
        """The server's command line: on `fd` when given, else on host:port."""
        py = sys.executable
        if self.server == "daphne":
            interface = self.host.strip("[]").replace(":", "\\:")  # a Twisted endpoint string escapes colons
            where = (
                ["--fd", str(fd)]
                if fd is not None
                else ["-e", f"tcp:port={self.port}:interface={interface}:backlog={BACKLOG}"]
            )
            if fd is not None and ":" in self.host:
                where = ["-e", f"fd:fileno={fd}:domain=INET6"]
            return [py, "-m", "daphne", *where, APP]
        if self.server == "uvicorn":
            where = ["--fd", str(fd)] if fd is not None else ["--host", self.host, "--port", str(self.port)]
            return [
                py,
                "-m",
                "uvicorn",
                *where,
                "--backlog",
                str(BACKLOG),
                "--loop",
                "uvloop",
                "--http",
                "httptools",
                "--ws",
                "websockets-sansio",
                "--lifespan",
                "auto",
                "--no-access-log",
                "--log-level",
                "warning",
                APP,
            ]
        return [
            py,
            "-m",
            "granian",
            "--interface",
            "asgi",
            "--host",
            self.host,
            "--port",
            str(self.port),
            "--workers",
            str(self.workers),
            "--backlog",
            str(BACKLOG),
            "--loop",
            "uvloop",
            "--ws",
            "--log-level",
            "warning",
            APP,
        ]


def plan(env: Mapping[str, str] | None = None) -> Plan:
    """Read and check the settings; ServeError with a clear message when they cannot be served."""
    env = os.environ if env is None else env
    server = (env.get("BYOK_SERVER") or "daphne").strip().lower()
    if server not in SERVERS:
        raise ServeError(f"BYOK_SERVER={server!r} is not one of {', '.join(SERVERS)}.")
    raw = (env.get("BYOK_WORKERS") or "1").strip()
    try:
        workers = int(raw)
    except ValueError:
        raise ServeError(f"BYOK_WORKERS must be a whole number of processes, not {raw!r}.") from None
    if workers < 1:
        raise ServeError(f"BYOK_WORKERS must be at least 1, not {workers}.")
    if workers > 1 and not (env.get("REDIS_URL") or "").strip():
        raise ServeError(
            f"BYOK_WORKERS={workers} needs REDIS_URL: several processes must share rate limits, cooldowns, "
            "quotas, budgets and the websocket channel layer, which only Redis does. Set REDIS_URL "
            "(e.g. redis://127.0.0.1:6379/0) or use BYOK_WORKERS=1."
        )
    missing = [m for m in _NEEDS[server] if importlib.util.find_spec(m) is None]
    if missing:
        raise ServeError(f"BYOK_SERVER={server} needs {', '.join(missing)}: pip install -r requirements.txt.")
    host = (env.get("HOST") or "127.0.0.1").strip()
    raw_port = (env.get("PORT") or "8000").strip()
    try:
        port = int(raw_port)
    except ValueError:
        raise ServeError(f"PORT must be a number, not {raw_port!r}.") from None
    return Plan(server, workers, host, port)


def bind(host: str, port: int) -> socket.socket:
    """The one listening socket every worker accepts on."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host.strip("[]"), port))
    sock.listen(BACKLOG)
    sock.set_inheritable(True)
    return sock


def metrics_dir(p: Plan, env: MutableMapping[str, str] = os.environ) -> tuple[str | None, bool]:
    """Prepare `PROMETHEUS_MULTIPROC_DIR` for the workers: (the directory or None, whether it is temporary).

    Set in `env` (which the workers inherit) when several workers serve; emptied of `.db` files left by
    an earlier run either way, since their counts would be added to this run's.
    """
    path = (env.get("PROMETHEUS_MULTIPROC_DIR") or "").strip()
    made = False
    if not path and p.workers > 1:
        path, made = tempfile.mkdtemp(prefix="byok-metrics-"), True
        env["PROMETHEUS_MULTIPROC_DIR"] = path
    if not path:
        return None, False
    os.makedirs(path, exist_ok=True)
    for name in os.listdir(path):
        if name.endswith(".db"):
            os.remove(os.path.join(path, name))
    return path, made


def _mark_dead(pid: int) -> None:
    """Drop a stopped worker's live gauges (websockets, usage queue) from the multiprocess exposition."""
    if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(pid)


def _supervise(procs: list[subprocess.Popen]) -> int:
    """Wait for the workers; on a signal or the first one to exit, stop the rest. The exit status."""
    stopping: list[int] = []

    def forward(signum, _frame) -> None:
        stopping.append(signum)
        for p in procs:
            if p.poll() is None:
                p.send_signal(signum)

    signal.signal(signal.SIGTERM, forward)
    signal.signal(signal.SIGINT, forward)
    status = 0
    marked: set[int] = set()
    while any(p.poll() is None for p in procs):
        dead = [p for p in procs if p.poll() is not None]
        for p in dead:
            if p.pid not in marked:
                marked.add(p.pid)
                _mark_dead(p.pid)
        if dead and not stopping:
            status = dead[0].returncode or 1
            print(
                f"byok: worker {dead[0].pid} exited with status {dead[0].returncode}; stopping the others",
                file=sys.stderr,
                flush=True,
            )
            forward(signal.SIGTERM, None)
        time.sleep(0.2)
    return status


def main() -> int:
    try:
        p = plan()
    except ServeError as exc:
        print(f"byok: {exc}", file=sys.stderr)
        return 2
    print(
        f"byok: serving on http://{p.host}:{p.port}/ with {p.server}, {p.workers} worker(s)",
        file=sys.stderr,
        flush=True,
    )
    directory, temporary = metrics_dir(p)
    if not p.shares_socket and not temporary:
        os.execv(sys.executable, p.command())
    try:
        if not p.shares_socket:  # granian starts its workers itself: supervise it, then remove the directory
            return _supervise([subprocess.Popen(p.command())])
        sock = bind(p.host, p.port)
        fd = sock.fileno()
        procs = [subprocess.Popen(p.command(fd), pass_fds=(fd,)) for _ in range(p.workers)]
        sock.close()  # the workers hold it now
        return _supervise(procs)
    finally:
        if temporary and directory:
            shutil.rmtree(directory, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
