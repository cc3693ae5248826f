"""Benchmark: angular accuracy and 90 % contour coverage of scans of simulated through-going tracks.

Simulates ``--events`` tracks with the toy simulator (`skymap_scanner.simulation`: energy log-uniform in
1 TeV-1 PeV, direction isotropic with zenith 80°-180°, i.e. the lower hemisphere plus the horizon, fixed
``--seed``), scans each with the real pixel-selection loop (`server.scan.run_scan`, predictive threshold 1.0,
default progression ``8:0 64:12 512:24``) and the real ``pandel_mpe`` reconstruction, and summarises every
result with `skymap_scanner.products`.

The broker is bypassed on purpose: an in-process transport hands each published pixel straight to the
reconstruction (built from the same JSON startup data a worker reads; tasks and results are round-tripped
through their JSON messages) and feeds the answers back to the loop in publication order, as one worker
would. This benchmark measures the physics; the broker/worker overhead is measured by ``bench/overhead.py``
and the full scan through RabbitMQ by ``bench/reco_speed.py``. ``--processes`` events are scanned in
parallel (one process per core, numpy single-threaded).

Per event: the best-fit error to the truth; 2ΔLLH(truth) = 2 (llh of the finest scanned pixel containing
the true direction − best llh), with `MultiOrderMap.values_at`; the area of the 90 % region at Wilks'
level (2ΔLLH ≤ 4.61, all tiles below the level, as `products.region`); whether the truth is inside.

Calibration: the calibrated 90 % level is the 90th percentile (numpy's linear interpolation) of 2ΔLLH(truth)
over the events. It is reported in-sample (level from all events, coverage on the same events: 90 % by
construction) and out-of-sample with a two-fold split (even event indices calibrate, odd ones evaluate, and
the other way round); the stored value (`products/calibration.py`) is the in-sample level of all events.

The level stored in `products/calibration.py` (``--stored-level``) is evaluated as well: run with another
``--seed`` (and ``--out`` elsewhere), that is an independent check of the stored calibration.

Run (30 min on this 2-core machine for 50 events, ~65 s of CPU per scan):

    nice -n 19 .venv/bin/python bench/accuracy.py --events 50 --seed 20240

The stored calibration and ``bench/results/accuracy.json`` come from ``--events 100 --seed 20240`` (50
events were too few: see `products/calibration.py`); ``--save-results DIR --reuse-saved`` keeps and reuses
scans, so that a larger run only scans the new events (event i of a seed does not depend on ``--events``).

Writes per-event numbers and the summary to ``bench/results/accuracy.json`` and prints a Markdown table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import asyncio  # noqa: E402
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
from collections import deque  # noqa: E402
from collections.abc import AsyncIterator, Sequence  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from skymap_scanner.physics.coordinates import dir_to_equa  # noqa: E402
from skymap_scanner.products import LEVEL_90, angular_distance_deg, summarize_result  # noqa: E402
from skymap_scanner.products.calibration import CALIBRATED_DELTA_LLH_90  # noqa: E402
from skymap_scanner.recos import Reconstruction, StartupData, get_reco  # noqa: E402
from skymap_scanner.server.progress import ProgressTracker  # noqa: E402
from skymap_scanner.server.result import build_result  # noqa: E402
from skymap_scanner.server.scan import (  # noqa: E402
    ClientsTimedOut,
    Reporter,
    run_scan,
    task_factory,
)
from skymap_scanner.server.sinks import ReportSink  # noqa: E402
from skymap_scanner.server.state import ScanState  # noqa: E402
from skymap_scanner.simulation import simulate_events  # noqa: E402
from skymap_scanner.startup import check_event_for_reco, make_startup_data  # noqa: E402
from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation  # noqa: E402
from skyscan_contract.nsides import NSideProgression  # noqa: E402

DEFAULT_NSIDES = "8:0 64:12 512:24"
DEFAULT_OUT = REPO / "bench" / "results" / "accuracy.json"
_SR_TO_DEG2 = (180.0 / math.pi) ** 2


# ------------------------------------------------------------------------------------------------
# the real scan loop, with the reconstruction called in-process


class InProcessTransport:
    """The `server.scan.Transport` of a single in-process worker: every published task is answered, in
    publication order, by calling the reconstruction directly (tasks and results go through their JSON
    messages, as through the broker). A raising reconstruction gives a failed result (NaN), as a worker
    reports a pixel that failed for good."""

    def __init__(self, reco: Reconstruction) -> None:
        self.reco = reco
        self.pending: deque[PixelTask] = deque()
        self.n_reconstructed = 0

    async def publish(self, tasks: list[PixelTask]) -> None:
        self.pending.extend(PixelTask.model_validate_json(t.model_dump_json()) for t in tasks)

    async def results(self) -> AsyncIterator[PixelResult]:
        while self.pending:
            task = self.pending.popleft()
            start = time.perf_counter()
            try:
                reco = self.reco.reconstruct(task)
                result = PixelResult(
                    reco_pixel_variation=reco,
                    runtime=time.perf_counter() - start,
                    sent_at=task.sent_at,
                    worker="in-process",
                )
            except Exception as e:
                nan = math.nan
                reco = RecoPixelVariation(
                    nside=task.nside,
                    pixel=task.pixel,
                    posvar=task.posvar,
                    **dict.fromkeys(("llh", "e_in", "e_tot", "x", "y", "z", "t", "energy"), nan),
                )
                result = PixelResult(
                    reco_pixel_variation=reco,
                    runtime=time.perf_counter() - start,
                    failed=True,
                    error=f"{type(e).__name__}: {e}",
                    worker="in-process",
                )
            self.n_reconstructed += 1
            yield PixelResult.model_validate_json(result.model_dump_json())
        raise ClientsTimedOut("the in-process transport has no task left")


def scan_in_process(
    event: dict[str, Any],
    reco_algo: str,
    nsides: str,
    *,
    scan_id: str,
    sinks: Sequence[ReportSink] = (),
    reco_config: dict[str, Any] | None = None,
) -> tuple[dict[str, Any], Reconstruction, InProcessTransport]:
    """Scan ``event`` like `server.main.run_server` does, minus the broker: same startup data, state,
    reporter (``sinks`` get every progress report and result) and send/collect loop. Returns the final
    SkyScanResult dict, the reconstruction object and the transport."""
    meta = check_event_for_reco(event, reco_algo)
    startup = make_startup_data(scan_id, reco_algo, event)
    if reco_config is not None:
        startup = startup.model_copy(update={"reco_config": reco_config})
    worker_startup = StartupData.model_validate_json(startup.model_dump_json())
    reco_cls = get_reco(reco_algo)
    reco = reco_cls(worker_startup)
    progression = NSideProgression.parse(nsides)
    state = ScanState(progression, reco_cls.n_posvar, 1.0)
    tracker = ProgressTracker(progression, reco_cls.n_posvar, 1.0, 1e9)
    scan_metadata: dict[str, object] = {
        "scan_id": scan_id,
        "nside_progression": progression.to_json_dict(),
        "position_variations": reco_cls.n_posvar,
    }
    reporter = Reporter(list(sinks), tracker, meta, scan_metadata, 1e9, 1e9)
    transport = InProcessTransport(reco)
    make_tasks = task_factory(
        scan_id, reco_algo, startup.realtime_format_version, state, startup.fallback_seed
    )

    async def drive() -> None:
        await reporter.send_progress(state, "The Skymap Scanner has started up.")
        await run_scan(state, transport, reporter, make_tasks, shuffle_seed=scan_id)
        await reporter.send_result(state, final=True)
        await reporter.send_progress(state, "The Skymap Scanner has finished.", urgent=True)

    asyncio.run(drive())
    return build_result(state.nsides_dict, meta, complete=True), reco, transport


# ------------------------------------------------------------------------------------------------
# one event


def truth_radec(event: dict[str, Any]) -> tuple[float, float]:
    """True (RA, Dec) in radians of a simulated event's muon (the direction it came from)."""
    truth = event["truth"]
    ra, dec = dir_to_equa(truth["zenith"], truth["azimuth"], event["mjd"])
    return float(ra), float(dec)


def evaluate(event: dict[str, Any], result: dict[str, Any]) -> dict[str, Any]:
    """Best-fit error, 2ΔLLH at the truth, Wilks 90 % area and the area curve of one result."""
    summary = summarize_result(result)
    ra_t, dec_t = truth_radec(event)
    skymap = summary.skymap
    tile = int(skymap.tile_at(np.array([ra_t]), np.array([dec_t]))[0])
    delta2 = float(skymap.values_at(np.array([ra_t]), np.array([dec_t]))[0])
    order = np.argsort(skymap.delta2, kind="stable")  # NaN last
    return {
        "truth_ra_deg": math.degrees(ra_t),
        "truth_dec_deg": math.degrees(dec_t),
        "best_ra_deg": summary.ra_deg,
        "best_dec_deg": summary.dec_deg,
        "best_nside": summary.best_fit.nside,
        "error_deg": float(angular_distance_deg(summary.ra_rad, summary.dec_rad, ra_t, dec_t)),
        "delta2_truth": delta2,
        "truth_tile_nside": int(skymap.nside[tile]) if tile >= 0 else None,
        "area90_wilks_deg2": summary.area_90_deg2,
        "covered_wilks": bool(delta2 <= LEVEL_90),
        "n_pixels": {str(n): len(result[f"nside-{n}"]["data"]) for n in summary.nsides},
        # (2ΔLLH, tile area) sorted by 2ΔLLH: the area of any level, computed in the parent
        "_curve": (skymap.delta2[order], skymap.pixel_area_sr[order] * _SR_TO_DEG2),
    }


def area_at(curve: tuple[np.ndarray, np.ndarray], level: float) -> float:
    """Area (deg²) of all tiles with 2ΔLLH ≤ level (as `products.contours.region`)."""
    delta2, area = curve
    return float(area[delta2 <= level].sum())


def _hit_doms(event: dict[str, Any], reco_algo: str) -> int | None:
    hits = getattr(get_reco(reco_algo)(make_startup_data("count", reco_algo, event)), "hits", None)
    return None if hits is None else len(hits)


def run_one(job: tuple[int, dict[str, Any], str, str, str, Path | None, bool]) -> dict[str, Any]:
    """Scan and evaluate one event (runs in a pool process).

    With ``save_dir``, the event, its result and the scan's timing are written there; with ``reuse`` a
    result saved there before for the same event, progression and reco is evaluated instead of rescanned
    (the timing then comes from its saved file).
    """
    index, event, reco_algo, nsides, scan_prefix, save_dir, reuse = job
    wall0, cpu0 = time.perf_counter(), time.process_time()
    truth = event["truth"]
    record: dict[str, Any] = {
        "index": index,
        "run_id": event["run_id"],
        "event_id": event["event_id"],
        "mjd": event["mjd"],
        "energy_gev": truth["energy_gev"],
        "zenith_deg": math.degrees(truth["zenith"]),
        "azimuth_deg": math.degrees(truth["azimuth"]),
        "n_pulses": len(event["pulses"]),
    }
    stem = None if save_dir is None else save_dir / f"event{index:03d}"
    try:
        saved = None
        if reuse and stem is not None and Path(f"{stem}.timing.json").exists():
            timing = json.loads(Path(f"{stem}.timing.json").read_text())
            same = json.loads(Path(f"{stem}.event.json").read_text()) == event
            if same and (timing["reco_algo"], timing["nsides"]) == (reco_algo, nsides):
                saved = json.loads(Path(f"{stem}.result.json").read_text()), timing
        if saved is not None:
            result, timing = saved
            record["n_hit_doms"] = _hit_doms(event, reco_algo)
            record["n_reconstructed"] = timing["n_reconstructed"]
            record["reused"] = True
        else:
            result, reco, transport = scan_in_process(
                event, reco_algo, nsides, scan_id=f"{scan_prefix}-{index}"
            )
            hits = getattr(reco, "hits", None)
            record["n_hit_doms"] = None if hits is None else len(hits)
            record["n_reconstructed"] = transport.n_reconstructed
            timing = {
                "reco_algo": reco_algo,
                "nsides": nsides,
                "n_reconstructed": transport.n_reconstructed,
                "wall_s": time.perf_counter() - wall0,
                "cpu_s": time.process_time() - cpu0,
            }
            if stem is not None:
                Path(f"{stem}.result.json").write_text(json.dumps(result))
                Path(f"{stem}.event.json").write_text(json.dumps(event))
                Path(f"{stem}.timing.json").write_text(json.dumps(timing))
        record.update(evaluate(event, result))
        record["wall_s"], record["cpu_s"] = timing["wall_s"], timing["cpu_s"]
    except Exception as e:
        record["error"] = f"{type(e).__name__}: {e}\n{traceback.format_exc(limit=5)}"
        record["wall_s"] = time.perf_counter() - wall0
        record["cpu_s"] = time.process_time() - cpu0
    return record


# ------------------------------------------------------------------------------------------------
# statistics


def quantile90(values: Sequence[float] | np.ndarray) -> float:
    return float(np.quantile(np.asarray(values, dtype=np.float64), 0.9))


def coverage(delta2: Sequence[float] | np.ndarray, level: float) -> float:
    d = np.asarray(delta2, dtype=np.float64)
    return float(np.mean(d <= level)) if d.size else math.nan


def summarise(records: list[dict[str, Any]], stored_level: float | None) -> dict[str, Any]:
    """Medians, coverages and the calibrated level; adds per-event calibrated areas and flags.

    ``stored_level`` (the level in `products/calibration.py`, measured on other events or these) is
    evaluated too: on events of another seed it is an independent check of the stored calibration.
    """
    ok = [r for r in records if "error" not in r]
    err = np.array([r["error_deg"] for r in ok])
    d2 = np.array([r["delta2_truth"] for r in ok])
    level = quantile90(d2)
    folds: dict[str, Any] = {}
    out_of_sample_covered = 0
    for name, calib_parity in (("even_calibrates", 0), ("odd_calibrates", 1)):
        calib = [r["delta2_truth"] for r in ok if r["index"] % 2 == calib_parity]
        evalu = [r for r in ok if r["index"] % 2 != calib_parity]
        lvl = quantile90(calib)
        covered = [r["delta2_truth"] <= lvl for r in evalu]
        out_of_sample_covered += sum(covered)
        for r in evalu:
            r["covered_out_of_sample"] = bool(r["delta2_truth"] <= lvl)
            r["area90_out_of_sample_deg2"] = area_at(r["_curve"], lvl)
        folds[name] = {
            "n_calibrate": len(calib),
            "n_evaluate": len(evalu),
            "level": lvl,
            "coverage": float(np.mean(covered)) if covered else math.nan,
            "median_area90_deg2": float(np.median([r["area90_out_of_sample_deg2"] for r in evalu])),
        }
    for r in ok:
        r["covered_calibrated"] = bool(r["delta2_truth"] <= level)
        r["area90_calibrated_deg2"] = area_at(r["_curve"], level)
    stored: dict[str, Any] | None = None
    if stored_level is not None:
        for r in ok:
            r["covered_stored_level"] = bool(r["delta2_truth"] <= stored_level)
            r["area90_stored_level_deg2"] = area_at(r["_curve"], stored_level)
        stored = {
            "level": stored_level,
            "coverage": coverage(d2, stored_level),
            "median_area90_deg2": float(np.median([r["area90_stored_level_deg2"] for r in ok])),
        }
    energy_bins = {}
    for lo, hi in ((1e3, 1e4), (1e4, 1e5), (1e5, 1e6)):
        sel = [r for r in ok if lo <= r["energy_gev"] < hi]
        energy_bins[f"{lo / 1e3:g}-{hi / 1e3:g} TeV"] = {
            "n": len(sel),
            "median_error_deg": float(np.median([r["error_deg"] for r in sel]))
            if sel
            else math.nan,
            "coverage_wilks": coverage([r["delta2_truth"] for r in sel], LEVEL_90),
            "coverage_calibrated": coverage([r["delta2_truth"] for r in sel], level),
            "median_area90_calibrated_deg2": float(
                np.median([r["area90_calibrated_deg2"] for r in sel])
            )
            if sel
            else math.nan,
        }
    return {
        "n_events": len(records),
        "n_failed_events": len(records) - len(ok),
        "median_error_deg": float(np.median(err)),
        "error_68_deg": float(np.quantile(err, 0.68)),
        "error_90_deg": float(np.quantile(err, 0.9)),
        "fraction_error_le_1deg": float(np.mean(err <= 1.0)),
        "wilks_level": LEVEL_90,
        "coverage_wilks": coverage(d2, LEVEL_90),
        "median_area90_wilks_deg2": float(np.median([r["area90_wilks_deg2"] for r in ok])),
        "calibrated_level": level,
        "coverage_calibrated_in_sample": coverage(d2, level),
        "median_area90_calibrated_deg2": float(
            np.median([r["area90_calibrated_deg2"] for r in ok])
        ),
        "coverage_calibrated_out_of_sample": out_of_sample_covered / len(ok),
        "median_area90_out_of_sample_deg2": float(
            np.median([r["area90_out_of_sample_deg2"] for r in ok])
        ),
        "folds": folds,
        "stored_calibrated_level": stored,
        "median_delta2_truth": float(np.median(d2)),
        "by_energy": energy_bins,
        "median_hit_doms": float(np.median([r["n_hit_doms"] for r in ok])),
        "mean_scan_cpu_s": float(np.mean([r["cpu_s"] for r in ok])),
        "mean_pixels_per_scan": float(np.mean([r["n_reconstructed"] for r in ok])),
    }


def markdown(summary: dict[str, Any], provenance: dict[str, Any]) -> str:
    s = summary
    f = s["folds"]
    lines = [
        f"Simulated tracks: {s['n_events']} (seed {provenance['seed']}), "
        f"{provenance['energy_range_gev'][0]:g}-{provenance['energy_range_gev'][1]:g} GeV, "
        f"zenith {provenance['zenith_range_deg'][0]:g}°-{provenance['zenith_range_deg'][1]:g}°; "
        f"`{provenance['reco_algo']}`, `{provenance['nsides']}`; "
        f"wall time {provenance['wall_s'] / 60:.1f} min on {provenance['processes']} processes"
        + (
            f" ({provenance['events_reused']} scans reused from a previous run; the scans' summed "
            f"wall time is {provenance['sum_scan_wall_s'] / 60:.0f} min)"
            if provenance.get("events_reused")
            else ""
        )
        + " "
        f"({s['mean_scan_cpu_s']:.0f} s CPU and {s['mean_pixels_per_scan']:.0f} pixels per scan, "
        f"median {s['median_hit_doms']:.0f} hit DOMs after cleaning).",
        "",
        "| quantity | value |",
        "|---|---|",
        f"| median angular error | {s['median_error_deg']:.2f}° |",
        f"| 68 % / 90 % quantile of the error | {s['error_68_deg']:.2f}° / {s['error_90_deg']:.2f}° |",
        f"| events with error ≤ 1° | {100 * s['fraction_error_le_1deg']:.0f} % |",
        f"| coverage of the 90 % region, Wilks (2ΔLLH ≤ {s['wilks_level']}) | "
        f"{100 * s['coverage_wilks']:.0f} % |",
        f"| calibrated 90 % level (90th percentile of 2ΔLLH(truth)) | {s['calibrated_level']:.2f} |",
        f"| coverage, calibrated, in-sample | {100 * s['coverage_calibrated_in_sample']:.0f} % |",
        f"| coverage, calibrated, out-of-sample (2-fold: "
        f"{100 * f['even_calibrates']['coverage']:.0f} % / {100 * f['odd_calibrates']['coverage']:.0f} %, "
        f"levels {f['even_calibrates']['level']:.2f} / {f['odd_calibrates']['level']:.2f}) | "
        f"{100 * s['coverage_calibrated_out_of_sample']:.0f} % |",
        f"| median 90 % area, Wilks | {s['median_area90_wilks_deg2']:.2f} deg² |",
        f"| median 90 % area, calibrated | {s['median_area90_calibrated_deg2']:.2f} deg² |",
    ]
    st = s["stored_calibrated_level"]
    if st is not None:
        lines += [
            f"| coverage at the stored calibrated level {st['level']:.2f} "
            f"(`products/calibration.py`) | {100 * st['coverage']:.0f} % |",
            f"| median 90 % area at the stored level | {st['median_area90_deg2']:.2f} deg² |",
        ]
    lines += [
        "",
        "| energy | events | median error | coverage Wilks | coverage calibrated | "
        "median calibrated 90 % area |",
        "|---|---|---|---|---|---|",
    ]
    for name, b in s["by_energy"].items():
        lines.append(
            f"| {name} | {b['n']} | {b['median_error_deg']:.2f}° | "
            f"{100 * b['coverage_wilks']:.0f} % | {100 * b['coverage_calibrated']:.0f} % | "
            f"{b['median_area90_calibrated_deg2']:.2f} deg² |"
        )
    return "\n".join(lines)


def _git_commit() -> str:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        )
        return out.stdout.strip()
    except (OSError, subprocess.CalledProcessError):
        return "unknown"


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--events", type=int, default=50, help="number of simulated tracks")
    parser.add_argument("--seed", type=int, default=20240, help="simulation seed")
    parser.add_argument("--nsides", default=DEFAULT_NSIDES, help="nside progression")
    parser.add_argument("--reco-algo", default="pandel_mpe")
    parser.add_argument("--processes", type=int, default=2, help="events scanned in parallel")
    parser.add_argument("--emin-gev", type=float, default=1e3)
    parser.add_argument("--emax-gev", type=float, default=1e6)
    parser.add_argument("--zenith-min-deg", type=float, default=80.0)
    parser.add_argument("--zenith-max-deg", type=float, default=180.0)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    parser.add_argument(
        "--stored-level",
        type=float,
        default=CALIBRATED_DELTA_LLH_90,
        help="a calibrated 2ΔLLH level to evaluate too (default: products/calibration.py's)",
    )
    parser.add_argument(
        "--no-stored-level", action="store_true", help="do not evaluate a stored level"
    )
    parser.add_argument(
        "--save-results", type=Path, default=None, help="also write each event and result here"
    )
    parser.add_argument(
        "--reuse-saved",
        action="store_true",
        help="evaluate results already in --save-results (same event, nsides, reco) instead of "
        "rescanning them",
    )
    args = parser.parse_args(argv)

    events = simulate_events(
        args.events,
        args.seed,
        energy_range_gev=(args.emin_gev, args.emax_gev),
        zenith_range=(math.radians(args.zenith_min_deg), math.radians(args.zenith_max_deg)),
    )
    prefix = f"accuracy-{args.seed}"
    if args.save_results is not None:
        args.save_results.mkdir(parents=True, exist_ok=True)
    jobs = [
        (i, ev, args.reco_algo, args.nsides, prefix, args.save_results, args.reuse_saved)
        for i, ev in enumerate(events)
    ]
    jobs.sort(key=lambda j: -len(j[1]["pulses"]))  # the longest scans first: less idle tail
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
                    f"error {rec['error_deg']:6.2f}° 2ΔLLH(truth) {rec['delta2_truth']:7.2f} "
                    f"A90 {rec['area90_wilks_deg2']:6.2f} deg² {rec['n_hit_doms']:4d} DOMs"
                )
            print(
                f"[{len(records):3d}/{len(jobs)}] event {rec['index']:3d} "
                f"E {rec['energy_gev'] / 1e3:8.1f} TeV zen {rec['zenith_deg']:6.1f}° {msg} "
                f"({rec['wall_s']:.0f} s)",
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
        "seed": args.seed,
        "events": args.events,
        "nsides": args.nsides,
        "reco_algo": args.reco_algo,
        "predictive_scanning_threshold": 1.0,
        "energy_range_gev": [args.emin_gev, args.emax_gev],
        "zenith_range_deg": [args.zenith_min_deg, args.zenith_max_deg],
        "simulation": "skymap_scanner.simulation.simulate_events (toy model), noise 500 Hz",
        "transport": "in-process (broker bypassed; see the module docstring)",
        "processes": args.processes,
        "wall_s": wall,
        "events_reused": sum(1 for r in records if r.get("reused")),
        "sum_scan_wall_s": sum(r["wall_s"] for r in records),
        "python": platform.python_version(),
        "numpy": np.__version__,
    }
    summary = summarise(records, None if args.no_stored_level else args.stored_level)
    for r in records:
        r.pop("_curve", None)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"provenance": provenance, "summary": summary, "events": records}, indent=1)
        + "\n"
    )
    print(markdown(summary, provenance))
    print(f"\nper-event numbers: {args.out}")


if __name__ == "__main__":
    main()
