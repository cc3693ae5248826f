"""`client-manager`: start and keep one scan's workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from .backends.base import WorkerBackend
from .backends.local import LocalBackend
from .manager import manage
from .settings import ManagerSettings

BACKENDS = ("local",)


def build_backend(
    name: str, settings: ManagerSettings, startup_json: Path, n_workers: int
) -> WorkerBackend:
    if name == "local":
        return LocalBackend(
            startup_json,
            startup_json.parent / "workers",
            settings.max_replacements_per_worker * n_workers,
            settings.stop_timeout_s,
        )
    raise ValueError(f"unknown backend {name!r} (available: {', '.join(BACKENDS)})")


async def _run(args: argparse.Namespace, settings: ManagerSettings) -> int:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    backend = build_backend(args.backend, settings, args.client_startup_json, args.n_workers)
    return await manage(
        settings,
        args.scan_id,
        backend,
        args.n_workers,
        args.client_startup_json,
        args.poll_interval,
        stop,
    )


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="client-manager", description=__doc__)
    parser.add_argument("--scan-id", required=True)
    parser.add_argument("--backend", choices=BACKENDS, default="local")
    parser.add_argument("--n-workers", type=int, required=True)
    parser.add_argument("--client-startup-json", type=Path, required=True)
    parser.add_argument("--poll-interval", type=float, default=5.0)
    args = parser.parse_args(argv)
    settings = ManagerSettings()
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("client_manager").setLevel(settings.log.upper())
    return asyncio.run(_run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
