"""`python -m devtools.fakeprovider --host 127.0.0.1 --port 0 [--config JSON]`

Prints `FAKEPROVIDER_LISTENING http://127.0.0.1:<port>` once ready, then
serves until SIGTERM or SIGINT.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import signal
import sys
from typing import Any

from devtools.fakeprovider.server import FakeProvider, check_loopback, start_server


def _parse(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m devtools.fakeprovider", description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="loopback address only (default 127.0.0.1)")
    parser.add_argument("--port", type=int, default=0, help="0 picks a free port (default)")
    parser.add_argument("--config", default="", help="start-up settings as JSON, e.g. '{\"chunks\": 20}'")
    parser.add_argument("--no-uvloop", action="store_true", help="use the default asyncio loop")
    return parser.parse_args(argv)


async def _serve(args: argparse.Namespace, config: dict[str, Any] | None) -> None:
    runner, url = await start_server(args.host, args.port, config)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    print(f"FAKEPROVIDER_LISTENING {url}", flush=True)
    try:
        await stop.wait()
    finally:
        await runner.cleanup()


def main(argv: list[str] | None = None) -> int:
    args = _parse(argv)
    try:
        check_loopback(args.host)
        config = json.loads(args.config) if args.config else None
        FakeProvider(config)  # validates the settings before anything listens
    except ValueError as exc:  # SettingError and JSONDecodeError are ValueErrors
        print(f"fakeprovider: {exc}", file=sys.stderr)
        return 2
    if not args.no_uvloop:
        try:
            import uvloop

            uvloop.install()
        except ImportError:
            pass
    asyncio.run(_serve(args, config))
    return 0


if __name__ == "__main__":
    sys.exit(main())
