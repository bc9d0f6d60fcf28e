"""`python -m devtools.bench [--quick]`: measure byok against the fake provider and write docs/benchmarks.md.

One run, in this order, every phase bounded in count and time (about 10 minutes in all):

1. baseline: a direct client to the fake provider (aiohttp and default httpx transports), c=1, 50, 200;
2. `BYOKHandler` in this process, on a temporary SQLite database;
3. `/v1/chat/completions` as `make serve` serves it (daphne, one process), each upstream transport, then the
   c=50 non-streaming load profiled with py-spy (where the server's CPU goes);
4. servers: uvicorn and granian in front of the same app, HTTP and 1,000 streaming websockets each;
5. workers: with Redis, one worker and `BYOK_WORKERS=2` on one socket;
6. the websocket: concurrent streaming sockets on one daphne process, ramped to 5,000.

Every figure of byok is read against the direct client's in the same run (added latency, × direct), so
anyone can compare without another gateway installed. Every server listens on 127.0.0.1 and is stopped
by its PID. A phase that cannot run (a server not installed, Redis down) is reported as not measured.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import sys
import tempfile
import time
import traceback
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
DEFAULT_REDIS = "redis://127.0.0.1:6379/0"
PHASES = ("baseline", "inprocess", "http", "servers", "workers", "ws")
OTHER_SERVERS = ("uvicorn", "granian")
SERVER_WS_SOCKETS = 500


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    p = argparse.ArgumentParser(prog="python -m devtools.bench", description=__doc__.splitlines()[0])
    p.add_argument(
        "--quick", action="store_true", help="fewer requests and shorter runs (~2-3 minutes); prints only unless --out"
    )
    p.add_argument(
        "--out",
        type=Path,
        default=None,
        help="where to write the report (default: docs/benchmarks.md, not with --quick)",
    )
    p.add_argument(
        "--transports", default="default,aiohttp", help="byok's upstream transports to measure (default: both)"
    )
    p.add_argument(
        "--redis-url",
        default=None,
        help=f"Redis for the shared-state figures (default: REDIS_URL or {DEFAULT_REDIS} if up)",
    )
    p.add_argument("--no-redis", action="store_true", help="skip the Redis figures (the workers phase)")
    p.add_argument(
        "--servers", default=",".join(OTHER_SERVERS), help="servers compared with daphne (default: uvicorn,granian)"
    )
    p.add_argument("--no-ws", action="store_true", help="skip the websocket ramp")
    p.add_argument("--ws-max", type=int, default=5000, help="most sockets the websocket ramp tries (default 5000)")
    p.add_argument("--no-profile", action="store_true", help="skip the py-spy profile of the gateway")
    p.add_argument(
        "--budget", type=float, default=None, help="seconds after which no new phase starts (default 560, quick 240)"
    )
    p.add_argument(
        "--only", default=",".join(PHASES), help=f"phases to run, comma-separated (default: all of {','.join(PHASES)})"
    )
    args = p.parse_args(argv)
    args.phases = {x.strip() for x in args.only.split(",") if x.strip()}
    unknown = args.phases - set(PHASES)
    if unknown:
        p.error(f"unknown phase(s) {', '.join(sorted(unknown))}: choose from {', '.join(PHASES)}")
    return args


def setup_django(tmp: Path) -> None:  # pragma: no cover - tests run inside pytest-django's own set-up
    """Django on a temporary SQLite database, in-memory state, for the in-process phase."""
    os.environ["DATABASE_URL"] = f"sqlite:///{tmp / 'inprocess.sqlite3'}"
    os.environ.pop("REDIS_URL", None)
    os.environ["BYOK_ALLOW_PRIVATE_BASE_URLS"] = "true"
    os.environ.setdefault("BYOK_LOCAL_SECRETS", "1")
    os.environ.setdefault("LOG_LEVEL", "WARNING")
    os.environ["DJANGO_SETTINGS_MODULE"] = "byok_project.settings"
    if str(ROOT) not in sys.path:
        sys.path.insert(0, str(ROOT))
    import django
    from django.core.management import call_command

    django.setup()
    call_command("migrate", verbosity=0, interactive=False)


def redis_url_for(args: argparse.Namespace, outer: str | None) -> str | None:
    if args.no_redis:
        return None
    url = args.redis_url or outer or DEFAULT_REDIS
    try:
        import redis

        with redis.Redis.from_url(url, socket_timeout=2) as client:
            client.ping()
    except Exception:
        return None
    return url


def ws_steps(limit: int) -> tuple[int, ...]:
    """The ramp: 1, 100, 500, 1000, 2500, 5000, then +2500 up to `limit` (and `limit` itself)."""
    steps = [s for s in (1, 100, 500, 1000, 2500, 5000) if s <= limit]
    top = 5000
    while top + 2500 <= limit:
        top += 2500
        steps.append(top)
    if limit not in steps and limit > 0:
        steps.append(limit)
    return tuple(sorted(set(steps)))


def main(argv: list[str] | None = None) -> int:  # pragma: no cover - the whole run; its phases are tested one by one
    args = parse_args(argv)
    outer_redis = os.environ.get("REDIS_URL")
    budget = args.budget or (240.0 if args.quick else 560.0)
    started = time.monotonic()
    tmp = Path(tempfile.mkdtemp(prefix="byok-bench-"))
    setup_django(tmp)

    from django.conf import settings

    from devtools.bench.http import Plan, baseline_targets, measure_openai, run_gateway
    from devtools.bench.inprocess import measure_inprocess
    from devtools.bench.load import Target, make_client, run_load, stream_once
    from devtools.bench.report import BenchData, ServerRun, render, write
    from devtools.bench.servers import profile_pid, start_fake_provider, start_gateway, summarize_profile
    from devtools.bench.setup import BENCH_KEY, MODEL, register_bench_providers
    from devtools.bench.stats import summarize
    from devtools.bench.websocket import ramp

    data = BenchData(started=datetime.now(UTC), mode="quick" if args.quick else "full")
    plan = Plan.quick() if args.quick else Plan()
    short = Plan.quick() if args.quick else Plan.short()
    transports = [t.strip() for t in args.transports.split(",") if t.strip()]
    serve_transport = settings.BYOK["HTTP_TRANSPORT"]  # what `make serve` uses
    if serve_transport in transports:  # measured (and profiled) first
        transports.remove(serve_transport)
        transports.insert(0, serve_transport)
    others = [x.strip() for x in args.servers.split(",") if x.strip()]
    redis_url = redis_url_for(args, outer_redis)
    ws_chunks, ws_delay_ms = (20, 250)
    ws_timeout = 90.0

    def phase(name: str, fn) -> None:
        if time.monotonic() - started > budget:
            data.notes.append(f"{name}: not measured (the run's {budget:.0f} s budget was used up).")
            return
        print(f"== {name}", flush=True)
        t0 = time.monotonic()
        try:
            fn()
        except Exception as exc:
            traceback.print_exc()
            data.notes.append(f"{name}: not measured ({type(exc).__name__}: {str(exc)[:300]}).")
        print(f"   {time.monotonic() - t0:.0f} s", flush=True)

    fake = start_fake_provider(tmp)
    try:
        register_bench_providers(fake.url, ws_chunks=ws_chunks, ws_delay_ms=ws_delay_ms)

        def baseline() -> None:
            for client in ("aiohttp", "httpx"):
                data.baseline[client] = asyncio.run(
                    measure_openai(
                        f"baseline, httpx {client} client",
                        baseline_targets(fake.url),
                        plan,
                        client=client,
                        server_pid=fake.proc.pid,
                    )
                )

        def inprocess() -> None:
            for t in transports:
                data.inprocess.append(
                    asyncio.run(
                        measure_inprocess(
                            fake.url,
                            t,
                            requests=100 if args.quick else 300,
                            streams=12 if args.quick else 30,
                            time_limit=20 if args.quick else 30,
                            warmup=3 if args.quick else 5,
                        )
                    )
                )

        def gateways() -> None:
            for i, t in enumerate(transports):
                data.gateways.append(
                    run_gateway(
                        tmp / f"gw-{t}",
                        fake.url,
                        plan if i == 0 else short,
                        transport=t,
                        redis_url=None,
                        profile_s=0.0 if args.no_profile or i else 8.0,
                    )
                )

        def direct_ws_seconds() -> float:
            direct_target = Target(
                f"{fake.url}/cfg/chunks={ws_chunks};delay_ms={ws_delay_ms}/v1/chat/completions",
                MODEL,
                {"Authorization": f"Bearer {BENCH_KEY}"},
            )

            async def direct() -> float:
                async with make_client("aiohttp") as client:
                    res = await run_load(
                        lambda: stream_once(client, direct_target), total=5, concurrency=5, time_limit=30
                    )
                return summarize(s.latency for s in res.ok).median

            if "direct_s" not in data.ws_setup:
                data.ws_setup.update(
                    chunks=ws_chunks, delay_ms=ws_delay_ms, transport=serve_transport, direct_s=asyncio.run(direct())
                )
            return data.ws_setup["direct_s"]  # type: ignore[return-value]

        def servers() -> None:
            for name in ["daphne", *others]:
                http = (
                    data.gateways[0]
                    if name == "daphne" and data.gateways
                    else run_gateway(
                        tmp / f"srv-{name}", fake.url, short, transport=serve_transport, redis_url=None, server=name
                    )
                )
                entry = ServerRun(name, http)
                data.servers.append(entry)
                gateway = start_gateway(
                    tmp / f"srv-ws-{name}",
                    fake.url,
                    transport=serve_transport,
                    redis_url=None,
                    ws_chunks=ws_chunks,
                    ws_delay_ms=ws_delay_ms,
                    server=name,
                )
                try:
                    entry.ws = asyncio.run(
                        ramp(
                            gateway.server.ws_url + "/ws/chat/",
                            gateway.server.admin_token,
                            steps=(SERVER_WS_SOCKETS,),
                            model=f"benchws/{MODEL}",
                            direct_s=direct_ws_seconds(),
                            chunks=ws_chunks,
                            server_pid=gateway.pid,
                            time_limit=60,
                            stream_timeout=ws_timeout,
                            singles=0,
                        )
                    )
                finally:
                    gateway.stop()

        def workers() -> None:
            for n in (1, 2):
                data.workers[n] = run_gateway(
                    tmp / f"workers-{n}", fake.url, short, transport=serve_transport, redis_url=redis_url, workers=n
                )

        def websocket() -> None:
            direct_s = direct_ws_seconds()
            gateway = start_gateway(
                tmp / "ws",
                fake.url,
                transport=serve_transport,
                redis_url=None,
                ws_chunks=ws_chunks,
                ws_delay_ms=ws_delay_ms,
            )
            spy: dict = {}
            out = tmp / "profile-ws.txt"

            def on_start(sockets: int) -> None:  # profile the 1,000-socket step while it streams
                if not args.no_profile and sockets == 1000:
                    spy["proc"] = profile_pid(gateway.pid, 8, out)

            try:
                data.ws = asyncio.run(
                    ramp(
                        gateway.server.ws_url + "/ws/chat/",
                        gateway.server.admin_token,
                        steps=ws_steps(min(args.ws_max, 1000) if args.quick else args.ws_max),
                        model=f"benchws/{MODEL}",
                        direct_s=direct_s,
                        chunks=ws_chunks,
                        server_pid=gateway.pid,
                        time_limit=90 if args.quick else 200,
                        stream_timeout=ws_timeout,
                        single_model=f"bench20p/{MODEL}",
                        singles=5 if args.quick else 10,
                        on_start=on_start,
                    )
                )
                if spy.get("proc") is not None:
                    spy["proc"].wait(timeout=30)
                    data.ws.profile = summarize_profile(out.read_text()) if out.exists() else None
            finally:
                gateway.stop()

        want = args.phases
        if want & {"baseline", "http", "servers", "workers"}:  # the gateway figures are read against it
            phase("baseline (direct to the fake provider)", baseline)
        if "inprocess" in want:
            phase("BYOKHandler in process", inprocess)
        if "http" in want:
            phase("HTTP gateway as make serve runs it (daphne)", gateways)
        if "servers" in want and others:
            phase(f"servers: daphne, {', '.join(others)}", servers)
        if "workers" in want and redis_url:
            phase(f"workers: 1 and 2 with Redis state ({redis_url})", workers)
        elif "workers" in want:
            data.notes.append(
                "workers: not measured (no Redis answered at REDIS_URL or 127.0.0.1:6379; BYOK_WORKERS > 1 needs it)."
            )
        if "ws" in want and not args.no_ws:
            phase("websocket ramp", websocket)
    finally:
        fake.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    data.seconds = time.monotonic() - started
    data.load = (data.load[0], os.getloadavg()[0])
    text = render(data)
    print(text)
    out = args.out or (None if args.quick else ROOT / "docs" / "benchmarks.md")
    if out is not None:
        write(out, text)
        print(f"written to {out}")
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
