"""Benchmark: angular accuracy and 90 % contour coverage of scans of simulated events.

By default the events come from the independent simulator (`skymap_scanner.simulation.independent`: muons
with stochastic losses, photons through the layered SPICE ice, no light model shared with the fit): energy
log-uniform in 1 TeV-10 PeV, direction isotropic, half through-going muons and half starting tracks (a
neutrino vertex with its hadronic cascade), at least 300 m of track in the instrumented volume.
``--simulator toy`` uses the old toy model (the fit's own Pandel pdf: a self-consistency check only).
Event ``i`` of ``--seed`` is simulated in the worker process from ``default_rng((seed, i))``.

Each event is scanned with the real pixel-selection loop (`server.scan.run_scan`, predictive threshold 1.0,
default progression ``8:0 64:12 512:24``) and the real reconstruction (``--reco-algo``, default
``pandel_mpe``), and summarised with `skymap_scanner.products`. The broker is bypassed on purpose: an
in-process transport hands each published pixel straight to the reconstruction (built from the same JSON
startup data a worker reads; tasks and results are round-tripped through their JSON messages) and feeds the
answers back to the loop in publication order, as one worker would. ``--processes`` events are scanned in
parallel (numpy single-threaded).

Per event: the best-fit error; 2ΔLLH(truth) = 2 (llh of the finest scanned pixel containing the true
direction - best llh); the best fit's charge proxy ``E_tot``; areas of the 90 % regions.

Calibration (`skymap_scanner/calibration.py`): the 90 % level is modelled as a function of ``E_tot``
(quantile regression of log 2ΔLLH(truth) on log10 E_tot). The summary reports coverage for the model fitted
on all these events (``in_sample``, the one to store), for a two-fold cross-validation (``crossval``: events
with even indices are covered by the model fitted on the odd ones and vice versa, so every event is checked
with a level it did not help calibrate), for the stored model (``stored``) and, with ``--calibration FILE``
(the JSON of another run, e.g. a different seed), for the model fitted there (``external``). Coverage and
errors are reported per true-energy band.

Run (one to a few minutes of CPU per event on this machine; 2 processes):

    nice -n 19 .venv/bin/python bench/accuracy.py --events 160 --seed 20250 --save-results bench-scans/

``--save-results DIR --reuse-saved`` keeps and reuses scans (event i of a seed does not depend on ``--events``).
Writes per-event numbers and the summary to ``--out`` and prints a Markdown table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import platform  # noqa: E402
import shlex  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
import traceback  # noqa: E402
from collections.abc import Sequence  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skymap_scanner.products.calibration import CALIBRATION_90, LevelModel  # noqa: E402
from skymap_scanner.recos import get_reco  # noqa: E402
from skymap_scanner.simulation import simulate_events  # noqa: E402
from skymap_scanner.simulation.independent import simulate_independent_events  # noqa: E402
from skymap_scanner.startup import make_startup_data  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent))
from accuracy_stats import evaluate, markdown, summarise  # noqa: E402
from inprocess import scan_in_process  # noqa: E402

DEFAULT_NSIDES = "8:0 64:12 512:24"
DEFAULT_OUT = REPO / "bench" / "results" / "accuracy.json"


# ------------------------------------------------------------------------------------------------
# one event


@dataclass(frozen=True)
class SimSpec:
    """What to simulate (event ``index`` of ``seed``)."""

    simulator: str
    seed: int
    energy_range_gev: tuple[float, float]
    zenith_range: tuple[float, float]
    starting_fraction: float
    min_length_m: float


def simulate(spec: SimSpec, index: int) -> dict[str, Any]:
    """Event ``index`` of the seed (the same whatever the number of events)."""
    if spec.simulator == "toy":
        return simulate_events(index + 1, spec.seed, spec.energy_range_gev, spec.zenith_range)[
            index
        ]
    return simulate_independent_events(
        1,
        spec.seed,
        spec.energy_range_gev,
        spec.zenith_range,
        starting_fraction=spec.starting_fraction,
        min_length_m=spec.min_length_m,
        first_event=index,
    )[0]


@dataclass(frozen=True)
class Job:
    index: int
    spec: SimSpec
    reco_algo: str
    nsides: str
    save_dir: Path | None
    reuse: bool
    reco_config: dict[str, Any] | None


def _hit_doms(event: dict[str, Any], reco_algo: str) -> int | None:
    hits = getattr(get_reco(reco_algo)(make_startup_data("count", reco_algo, event)), "hits", None)
    return None if hits is None else len(hits)


def run_one(job: Job) -> dict[str, Any]:
    """Simulate, scan and evaluate one event (runs in a pool process).

    With ``save_dir``, the event, its result and the scan's timing are written there; with ``reuse`` a
    result saved there before for the same event, progression, reco and reco config is evaluated instead.
    """
    wall0, cpu0 = time.perf_counter(), time.process_time()
    record: dict[str, Any] = {"index": job.index}
    try:
        stem = None if job.save_dir is None else job.save_dir / f"event{job.index:04d}"
        saved_event = None
        if stem is not None and job.reuse and Path(f"{stem}.event.json").exists():
            saved_event = json.loads(Path(f"{stem}.event.json").read_text())
        event = saved_event if saved_event is not None else simulate(job.spec, job.index)
        sim_cpu = time.process_time() - cpu0
        truth = event["truth"]
        record.update(
            {
                "run_id": event["run_id"],
                "event_id": event["event_id"],
                "mjd": event["mjd"],
                "energy_gev": truth["energy_gev"],
                "zenith_deg": math.degrees(truth["zenith"]),
                "azimuth_deg": math.degrees(truth["azimuth"]),
                "starting": bool(truth.get("starting", False)),
                "length_in_detector_m": truth.get("length_in_detector_m"),
                "n_pulses": len(event["pulses"]),
                "sim_cpu_s": sim_cpu,
            }
        )
        key = {"reco_algo": job.reco_algo, "nsides": job.nsides, "reco_config": job.reco_config}
        saved = None
        if job.reuse and stem is not None and Path(f"{stem}.timing.json").exists():
            timing = json.loads(Path(f"{stem}.timing.json").read_text())
            if {k: timing.get(k) for k in key} == key:
                saved = json.loads(Path(f"{stem}.result.json").read_text()), timing
        if saved is not None:
            result, timing = saved
            record["n_hit_doms"] = _hit_doms(event, job.reco_algo)
            record["reused"] = True
        else:
            scan_cpu0 = time.process_time()
            scan_wall0 = time.perf_counter()
            result, reco, transport = scan_in_process(
                event,
                job.reco_algo,
                job.nsides,
                scan_id=f"accuracy-{job.spec.seed}-{job.index}",
                reco_config=job.reco_config,
            )
            hits = getattr(reco, "hits", None)
            record["n_hit_doms"] = None if hits is None else len(hits)
            timing = {
                **key,
                "n_reconstructed": transport.n_reconstructed,
                "wall_s": time.perf_counter() - scan_wall0,
                "cpu_s": time.process_time() - scan_cpu0,
            }
            if stem is not None:
                Path(f"{stem}.result.json").write_text(json.dumps(result))
                Path(f"{stem}.event.json").write_text(json.dumps(event))
                Path(f"{stem}.timing.json").write_text(json.dumps(timing))
        record["n_reconstructed"] = timing["n_reconstructed"]
        record["wall_s"], record["cpu_s"] = timing["wall_s"], timing["cpu_s"]
        record.update(evaluate(event, result))
    except Exception as e:
        record["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        record.setdefault("energy_gev", math.nan)
        record["wall_s"] = time.perf_counter() - wall0
        record["cpu_s"] = time.process_time() - cpu0
    return record


# ------------------------------------------------------------------------------------------------
# the command


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def _parse_config(items: Sequence[str]) -> dict[str, Any] | None:
    if not items:
        return None
    out: dict[str, Any] = {}
    for item in items:
        key, _, value = item.partition("=")
        out[key] = json.loads(value)
    return out


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50, help="number of simulated events")
    parser.add_argument("--first-event", type=int, default=0, help="index of the first event")
    parser.add_argument("--seed", type=int, default=20250, help="simulation seed")
    parser.add_argument("--simulator", choices=("independent", "toy"), default="independent")
    parser.add_argument("--nsides", default=DEFAULT_NSIDES, help="nside progression")
    parser.add_argument("--reco-algo", default="pandel_mpe")
    parser.add_argument(
        "--reco-config",
        nargs="*",
        default=[],
        metavar="KEY=JSON",
        help="override the reconstruction's settings (reco_config), for studies",
    )
    parser.add_argument("--processes", type=int, default=2, help="events scanned in parallel")
    parser.add_argument("--emin-gev", type=float, default=None, help="default 1e3")
    parser.add_argument("--emax-gev", type=float, default=None, help="default 1e7 (toy: 1e6)")
    parser.add_argument("--zenith-min-deg", type=float, default=None, help="default 0 (toy: 80)")
    parser.add_argument("--zenith-max-deg", type=float, default=180.0)
    parser.add_argument("--starting-fraction", type=float, default=0.5)
    parser.add_argument("--min-length-m", type=float, default=300.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    parser.add_argument(
        "--calibration",
        type=Path,
        default=None,
        help="the JSON of another run: its in-sample level model is evaluated on these events",
    )
    parser.add_argument(
        "--save-results", type=Path, default=None, help="also write each event and result here"
    )
    parser.add_argument(
        "--reuse-saved",
        action="store_true",
        help="reuse events and results already in --save-results instead of rescanning them",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    toy = args.simulator == "toy"
    spec = SimSpec(
        simulator=args.simulator,
        seed=args.seed,
        energy_range_gev=(
            1e3 if args.emin_gev is None else args.emin_gev,
            (1e6 if toy else 1e7) if args.emax_gev is None else args.emax_gev,
        ),
        zenith_range=(
            math.radians(
                (80.0 if toy else 0.0) if args.zenith_min_deg is None else args.zenith_min_deg
            ),
            math.radians(args.zenith_max_deg),
        ),
        starting_fraction=args.starting_fraction,
        min_length_m=args.min_length_m,
    )
    if args.save_results is not None:
        args.save_results.mkdir(parents=True, exist_ok=True)
    config = _parse_config(args.reco_config)
    jobs = [
        Job(i, spec, args.reco_algo, args.nsides, args.save_results, args.reuse_saved, config)
        for i in range(args.first_event, args.first_event + args.events)
    ]
    external: LevelModel | None = None
    if args.calibration is not None:
        fitted = json.loads(args.calibration.read_text())["summary"]["level_models"]["in_sample"]
        external = LevelModel(**fitted)
    started = datetime.datetime.now(datetime.UTC)
    wall0 = time.perf_counter()
    records: list[dict[str, Any]] = []
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        for rec in pool.imap_unordered(run_one, jobs, chunksize=1):
            records.append(rec)
            if "error" in rec:
                msg = "FAILED " + rec["error"].splitlines()[0]
            else:
                msg = (
                    f"{'start' if rec['starting'] else 'thru '} error {rec['error_deg']:6.2f}° "
                    f"2ΔLLH(truth) {rec['delta2_truth']:7.2f} {rec['n_hit_doms']:4d} DOMs"
                )
            print(
                f"[{len(records):3d}/{len(jobs)}] event {rec['index']:4d} "
                f"E {rec['energy_gev'] / 1e3:9.1f} TeV {msg} ({rec['wall_s']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    wall = time.perf_counter() - wall0
    records.sort(key=lambda r: r["index"])
    argv_list = list(sys.argv[1:] if argv is None else argv)
    provenance = {
        "command": "nice -n 19 .venv/bin/python bench/accuracy.py " + shlex.join(argv_list),
        "date": started.isoformat(timespec="seconds"),
        "git_commit": _git_commit(),
        "simulator": args.simulator,
        "seed": args.seed,
        "events": args.events,
        "first_event": args.first_event,
        "energy_range_gev": list(spec.energy_range_gev),
        "zenith_range_deg": [math.degrees(z) for z in spec.zenith_range],
        "starting_fraction": spec.starting_fraction,
        "min_length_m": spec.min_length_m,
        "nsides": args.nsides,
        "reco_algo": args.reco_algo,
        "reco_config": config,
        "predictive_scanning_threshold": 1.0,
        "transport": "in-process (broker bypassed; see the module docstring)",
        "processes": args.processes,
        "wall_s": wall,
        "events_reused": sum(1 for r in records if r.get("reused")),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    models = {"stored": CALIBRATION_90, "external": external}
    summary = summarise(records, models)
    for r in records:
        r.pop("_curve", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"provenance": provenance, "summary": summary, "events": records}, indent=1)
        + "\n"
    )
    headline = "external" if external is not None else "crossval"
    print(
        markdown(summary, provenance, headline if headline in summary["coverage"] else "in_sample")
    )
    print(f"\nper-event numbers: {args.out}")


if __name__ == "__main__":
    main()
