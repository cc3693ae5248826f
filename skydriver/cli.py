"""`skydriver`: run the service (`skydriver serve`)."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys

from pydantic import ValidationError

from .app import start
from .settings import Settings

LOG = logging.getLogger("skydriver")


async def serve(settings: Settings) -> None:
    sky = await start(settings)
    print(f"SkyDriver listening on {sky.settings.url}", flush=True)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    await stop.wait()
    LOG.info("shutting down")
    await sky.stop(stop_instances=False)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="skydriver", description="SkyDriver skymap-scan service")
    sub = parser.add_subparsers(dest="command", required=True)
    p = sub.add_parser("serve", help="run the REST service with its backlog runner and launcher")
    p.add_argument("--port", type=int, help="override SKYDRIVER_PORT")
    args = parser.parse_args(argv)
    try:
        settings = Settings()
    except ValidationError as e:
        print(f"skydriver: invalid settings: {e}", file=sys.stderr)
        return 2
    if args.port is not None:
        settings = settings.model_copy(update={"port": args.port})
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("skydriver").setLevel(settings.log_level.upper())
    if args.command == "serve":
        try:
            asyncio.run(serve(settings))
        except (OSError, ValueError) as e:
            print(f"skydriver: {e}", file=sys.stderr)
            return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
