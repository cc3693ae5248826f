"""`client-manager`: start and keep one scan's workers."""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path

from skyscan_contract.settings import ManagerSettings

from .backends.base import WorkerBackend
from .backends.local import LocalBackend
from .manager import manage

BACKENDS = ("local", "k8s", "condor")


def build_backend(
    name: str, settings: ManagerSettings, scan_id: str, startup_json: Path, n_workers: int
) -> WorkerBackend:
    """The backend by short name (`--backend`, from CLIENT_MANAGER_BACKEND in a scan Job)."""
    if name == "k8s":
        from skyscan_contract.settings import K8sWorkerSettings

        from .backends.k8s import K8sBackend, load_k8s_apis

        batch, core = load_k8s_apis()
        return K8sBackend(
            K8sWorkerSettings(),
            scan_id,
            startup_json,
            batch_api=batch,
            core_api=core,
            replacements_per_worker=settings.max_replacements_per_worker,
            stop_grace_s=settings.stop_timeout_s,
        )
    if name == "condor":
        import htcondor2

        from skyscan_contract.settings import CondorWorkerSettings

        from .backends.condor import CondorBackend

        return CondorBackend(
            CondorWorkerSettings(),
            scan_id,
            startup_json,
            schedd=htcondor2.Schedd(),
            replacements_per_worker=settings.max_replacements_per_worker,
            stop_timeout_s=settings.stop_timeout_s,
        )
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
    backend = build_backend(
        args.backend, settings, args.scan_id, args.client_startup_json, args.n_workers
    )
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
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the worker objects this backend would create (from the same settings) and exit",
    )
    args = parser.parse_args(argv)
    settings = ManagerSettings()
    if args.dry_run:
        from .dry_run import render

        print(
            render(args.backend, args.scan_id, args.n_workers, args.client_startup_json, settings)
        )
        return 0
    logging.basicConfig(
        level=logging.WARNING, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    logging.getLogger("client_manager").setLevel(settings.log.upper())
    return asyncio.run(_run(args, settings))


if __name__ == "__main__":
    sys.exit(main())
