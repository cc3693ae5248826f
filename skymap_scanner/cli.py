"""`skymap-scanner`: the scanner server, the worker, and a whole local scan in one command."""

from __future__ import annotations

import argparse
import asyncio
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from pydantic import ValidationError

from skyscan_contract.nsides import DEFAULT_NSIDES, InvalidNsides, NSideProgression
from skyscan_contract.settings import ServerSettings, WorkerSettings

from .events import InvalidEvent
from .recos import RECOS, StartupData, UnknownReco
from .startup import check_event_for_reco, make_startup_data, write_startup_data

if TYPE_CHECKING:
    from .server.main import ScanRequest

LOG = logging.getLogger("skymap_scanner")


def setup_logging(level: str, third_party: str) -> None:
    logging.basicConfig(
        level=third_party.upper(),
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("skymap_scanner").setLevel(level.upper())


def _threshold(value: str) -> float:
    f = float(value)
    if not 0.1 < f <= 1.0:
        raise argparse.ArgumentTypeError(f"must be in (0.1, 1.0], got {f}")
    return f


def _add_scan_args(p: argparse.ArgumentParser) -> None:
    p.add_argument("--reco-algo", required=True, choices=sorted(RECOS))
    p.add_argument(
        "--nsides", nargs="+", default=DEFAULT_NSIDES.argv(), help=f"default: {DEFAULT_NSIDES}"
    )
    p.add_argument("--predictive-scanning-threshold", type=_threshold, default=1.0)
    kind = p.add_mutually_exclusive_group()
    kind.add_argument("--real-event", action="store_true")
    kind.add_argument("--simulated-event", action="store_true")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="skymap-scanner", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser(
        "server", help="run one scan's server (launched by SkyDriver, or stand-alone)"
    )
    _add_scan_args(p)
    p.add_argument("--event-file", type=Path, help="event JSON (when not fetched from SkyDriver)")
    p.add_argument("-o", "--output-dir", type=Path, help="also write results/manifest here")
    p.add_argument("-c", "--cache-dir", type=Path, help="accepted for compatibility; unused")
    p.add_argument("--client-startup-json", type=Path, required=True)
    p.add_argument(
        "--exit-code-file",
        type=Path,
        help="write the exit code here on any exit but SIGKILL (a missing file means killed)",
    )

    p = sub.add_parser("worker", help="reconstruct pixels of one scan until idle")
    p.add_argument("--client-startup-json", type=Path, required=True)

    p = sub.add_parser("scan", help="a complete scan on this machine: server + N local workers")
    p.add_argument("event_file", type=Path)
    _add_scan_args(p)
    p.add_argument("--workers", type=int, default=max(1, os.cpu_count() or 1))
    p.add_argument("--output-dir", type=Path, required=True)
    p = sub.add_parser(
        "simulate", help="write simulated pulse-event/1 muon tracks (a fast toy model)"
    )
    p.add_argument("--n-events", type=int, required=True)
    p.add_argument("--seed", type=int, required=True)
    p.add_argument("--output-dir", type=Path, required=True)
    p.add_argument(
        "--energy-range-gev", type=float, nargs=2, default=(1e3, 1e6), metavar=("MIN", "MAX")
    )
    p.add_argument(
        "--zenith-range-deg", type=float, nargs=2, default=(0.0, 180.0), metavar=("MIN", "MAX")
    )
    p.add_argument("--noise-rate-hz", type=float, default=500.0)

    p = sub.add_parser("summarize", help="best fit, areas, plots and alert products of results")
    p.add_argument("result", type=Path, nargs="+")
    p.add_argument("--plot", type=Path, metavar="DIR", help="write PNG plots here")
    p.add_argument(
        "--truth", type=Path, metavar="EVENT", help="a simulated event: report the error"
    )
    p.add_argument(
        "--products", type=Path, metavar="DIR", help="write the alert products (FITS, ...) here"
    )
    p.add_argument("--convention", choices=("calibrated", "wilks"), default="calibrated")
    p.add_argument("--smoothing-deg", type=float, default=None, help="Gaussian sigma [deg]")
    return parser


def _simulate(args: argparse.Namespace) -> int:
    import math

    from .simulation import simulate_events, write_events

    zmin, zmax = (math.radians(v) for v in args.zenith_range_deg)
    events = simulate_events(
        args.n_events,
        args.seed,
        energy_range_gev=tuple(args.energy_range_gev),
        zenith_range=(zmin, zmax),
        noise_rate_hz=args.noise_rate_hz,
    )
    for path in write_events(events, args.output_dir):
        print(path)
    return 0


def _summarize(args: argparse.Namespace) -> int:
    from .products.calibration import CALIBRATED_DELTA_LLH_90
    from .products.summarize_cli import summarize_files

    truth = None
    if args.truth is not None:
        truth = truth_radec(json.loads(args.truth.read_text()))
    return summarize_files(
        args.result,
        plot_dir=args.plot,
        products_dir=args.products,
        truth=truth,
        calibrated_delta_llh_90=CALIBRATED_DELTA_LLH_90,
        convention=args.convention,
        smoothing_deg=args.smoothing_deg,
    )


def truth_radec(event: dict[str, Any]) -> tuple[float, float]:
    """The (RA, Dec) of a simulated event's true direction."""
    from .physics.coordinates import dir_to_equa

    truth = event.get("truth")
    if not isinstance(truth, dict):
        raise InvalidEvent("truth", "the event has no truth (only simulated events do)")
    ra, dec = dir_to_equa(truth["zenith"], truth["azimuth"], event["mjd"])
    return float(ra), float(dec)


def _wait_for_file(path: Path, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear within {timeout_s:g}s")
        time.sleep(0.05)


def _start_local_workers(n: int, startup_path: Path) -> list[subprocess.Popen[bytes]]:
    argv = [
        sys.executable,
        "-m",
        "skymap_scanner",
        "worker",
        "--client-startup-json",
        str(startup_path),
    ]
    return [subprocess.Popen(argv) for _ in range(n)]


def _stop_local_workers(workers: list[subprocess.Popen[bytes]]) -> None:
    for w in workers:
        if w.poll() is None:
            w.send_signal(signal.SIGTERM)
    for w in workers:
        try:
            w.wait(10)
        except subprocess.TimeoutExpired:
            w.kill()


async def _scan_locally(args: argparse.Namespace, settings: ServerSettings) -> int:
    out: Path = args.output_dir
    event = json.loads(args.event_file.read_bytes())
    meta = check_event_for_reco(event, args.reco_algo)
    scan_id = settings.skydriver_scan_id or f"local{time.time_ns():x}"
    settings = settings.model_copy(update={"skydriver_scan_id": scan_id})
    startup_path = out / ".startup.json"
    # workers start at once, while the server imports (they only need the startup data)
    write_startup_data(make_startup_data(scan_id, args.reco_algo, event), startup_path)
    workers = _start_local_workers(args.workers, startup_path)
    LOG.info("started %d local workers", len(workers))

    from .server.main import cleanup_queues, run_server
    from .server.result import result_filename

    request = _scan_request(args, event_file=args.event_file, output_dir=out)
    server = asyncio.create_task(run_server(settings, request))
    try:
        while not server.done():
            await asyncio.wait({server}, timeout=0.5)
            if all(w.poll() is not None for w in workers) and not server.done():
                server.cancel()
                codes = [w.returncode for w in workers]
                raise RuntimeError(
                    f"all {len(workers)} workers exited (codes {codes}); scan stopped"
                )
        summary = server.result()
    finally:
        _stop_local_workers(workers)
        await cleanup_queues(settings, scan_id)
        startup_path.unlink(missing_ok=True)
    print(f"result: {out / result_filename(meta, args.nsides.nsides)}")
    print(f"manifest: {out / 'scan-manifest.json'}")
    print("pixels per nside: " + ", ".join(f"{n}: {c}" for n, c in summary["nsides"].items()))
    if summary["failed"]:
        print(f"failed pixels: {summary['failed']}")
    return 0


def _scan_request(args: argparse.Namespace, **paths: Path | None) -> ScanRequest:
    """The server's request from the scan options (`_add_scan_args`) and the given paths."""
    from .server.main import ScanRequest

    return ScanRequest(
        reco_algo=args.reco_algo,
        progression=args.nsides,
        real_event=not args.simulated_event,
        predictive_scanning_threshold=args.predictive_scanning_threshold,
        **paths,
    )


class StoppedBySignal(Exception):
    """SIGTERM/SIGINT: the launcher stops the scan (deleted), or the cluster evicts the pod."""


async def _serve(settings: ServerSettings, request: ScanRequest) -> None:
    """Run the server. The scan's queues are deleted only when the scan is over: after its final result,
    when it was deleted in SkyDriver, or on SIGTERM/SIGINT (the launcher stops a deleted scan; the pixels
    still waiting in the queues go with them). A crash (any other exception: a lost SkyDriver, workers
    that stopped sending, a bug) keeps them: the restarted server resumes from the partial result, the
    workers are still consuming, and the unacknowledged results come back to it."""
    from .server.main import cleanup_queues, run_server
    from .server.scan import ScanAborted

    task = asyncio.current_task()
    assert task is not None
    signalled: list[int] = []

    def on_signal(sig: int) -> None:
        signalled.append(sig)
        task.cancel()

    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, on_signal, sig)
    over = False
    try:
        await run_server(settings, request)
        over = True
    except ScanAborted:
        over = True
        raise
    except asyncio.CancelledError:
        if not signalled:
            raise
        task.uncancel()
        over = True
        raise StoppedBySignal(f"stopped by {signal.Signals(signalled[0]).name}") from None
    finally:
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.remove_signal_handler(sig)
        if over:
            await cleanup_queues(settings, settings.skydriver_scan_id)
        else:
            LOG.error("the server failed; the scan's queues are kept for its restart")


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    exit_code_file: Path | None = getattr(args, "exit_code_file", None)
    code = 1  # an exception that escapes
    try:
        code = _run(parser, args)
        return code
    finally:
        if exit_code_file is not None:  # every exit but SIGKILL: a supervisor can tell a crash
            exit_code_file.write_text(f"{code}\n")


def _run(parser: argparse.ArgumentParser, args: argparse.Namespace) -> int:
    if hasattr(args, "nsides"):
        try:
            args.nsides = NSideProgression.parse(args.nsides)
        except InvalidNsides as e:
            parser.error(str(e))
    try:
        if args.command == "simulate":
            return _simulate(args)
        if args.command == "summarize":
            return _summarize(args)
        if args.command == "worker":
            from .worker.loop import run_worker  # workers never import the server (nor healpy)

            wsettings = WorkerSettings()
            setup_logging(wsettings.log, wsettings.log_third_party)
            startup = StartupData.model_validate_json(args.client_startup_json.read_text())
            asyncio.run(run_worker(wsettings, startup))
            return 0
        settings = ServerSettings()
        setup_logging(settings.log, settings.log_third_party)
        if args.command == "scan":
            return asyncio.run(_scan_locally(args, settings))
        if not settings.skydriver_scan_id:
            settings = settings.model_copy(update={"skydriver_scan_id": f"local{time.time_ns():x}"})
        request = _scan_request(
            args,
            event_file=args.event_file,
            output_dir=args.output_dir,
            client_startup_json=args.client_startup_json,
        )
        from .server.scan import ClientsTimedOut, ScanAborted

        try:
            asyncio.run(_serve(settings, request))
        except ScanAborted as e:
            LOG.warning("%s", e)
            return 0  # the scan ended by request: nothing to restart
        except ClientsTimedOut as e:
            LOG.error("%s", e)
            return 3
        except StoppedBySignal as e:
            LOG.warning("%s; the scan's queues are deleted", e)
            return 143  # 128 + SIGTERM, as if killed: a supervisor that did not ask may restart it
        return 0
    except (InvalidEvent, InvalidNsides, UnknownReco, ValidationError, OSError, RuntimeError) as e:
        LOG.error("%s", e)
        print(f"skymap-scanner: error: {e}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
