"""Benchmark: reconstruction speed of ``pandel_mpe`` on one core, and the wall time of a full scan.

1. Picks a simulated through-going track with about ``--target-doms`` (300) hit DOMs after the hit cleaning
   (the first of a fixed sequence of seeds at 30-300 TeV whose cleaned DOM count is within 5 %).
2. One core (CPU affinity pinned, OMP/OPENBLAS/MKL threads = 1): reconstructs ``--pixels`` pixels spread
   evenly over the sky (nside-8 centres, the event's LineFit seed, as at a scan's first nside) through the
   worker's `PandelMPE.reconstruct`, and reports the CPU milliseconds per pixel and per pixel-variation. A
   pixel is one message with all 7 position variations of the original's splinempe fitted together, so
   ms per pixel-variation = ms per pixel / 7 (the original sends one message per variation). The same is
   reported for pixels near the true direction seeded from the fit of their nside-64 parent, like the
   bulk of a scan's pixels (its finer nsides).
3. Runs ``skymap-scanner scan EVENT --reco-algo pandel_mpe --nsides 8:0 64:12 512:24 --workers 2`` as a
   whole process (server, broker round trips, 2 real worker processes) and reports its wall time and the
   best-fit error. Needs RabbitMQ on localhost (``make up``).

Run: ``.venv/bin/python bench/reco_speed.py`` (about a minute). Targets: <= 10 ms per pixel-variation,
full scan < 2 minutes.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import healpy as hp  # noqa: E402
import numpy as np  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from whole_scan import scan_args, timed_scan  # noqa: E402

from skymap_scanner.physics.coordinates import dir_to_equa  # noqa: E402
from skymap_scanner.physics.trackfit import position_variations  # noqa: E402
from skymap_scanner.pixels import pixel_direction  # noqa: E402
from skymap_scanner.products import angular_distance_deg, summarize_result  # noqa: E402
from skymap_scanner.recos import StartupData, get_reco  # noqa: E402
from skymap_scanner.recos.pandel import PandelMPE  # noqa: E402
from skymap_scanner.simulation import simulate_event  # noqa: E402
from skymap_scanner.startup import make_startup_data  # noqa: E402
from skyscan_contract.messages import PixelTask, Seed  # noqa: E402

N_VARIATIONS = int(position_variations().shape[0])
NSIDES = ["8:0", "64:12", "512:24"]


def find_event(target: int, max_tries: int = 400) -> tuple[dict[str, Any], int, int]:
    """The first simulated track (seeds 0, 1, ...) with |cleaned hit DOMs - target| <= 5 %."""
    for seed in range(max_tries):
        rng = np.random.default_rng((4242, seed))
        energy = 10 ** rng.uniform(4.5, 5.5)
        zenith = math.acos(rng.uniform(-1.0, math.cos(math.radians(80.0))))
        event = simulate_event(
            rng,
            energy_gev=energy,
            zenith=zenith,
            azimuth=rng.uniform(0.0, 2.0 * math.pi),
            run_id=4242,
            event_id=seed + 1,
            mjd=rng.uniform(59000.0, 61000.0),
        )
        n = len(PandelMPE(make_startup_data("speed", "pandel_mpe", event)).hits)
        if abs(n - target) <= 0.05 * target:
            return event, n, seed
    raise RuntimeError(f"no simulated event with about {target} hit DOMs in {max_tries} tries")


def time_pixels(reco: Any, tasks: list[PixelTask], repeat: int) -> float:
    """Best-of-``repeat`` CPU seconds per pixel over ``tasks``."""
    best = math.inf
    for _ in range(repeat):
        start = time.process_time()
        for task in tasks:
            reco.reconstruct(task)
        best = min(best, time.process_time() - start)
    return best / len(tasks)


def task(nside: int, pixel: int, seed: Seed) -> PixelTask:
    ra, dec = pixel_direction(nside, pixel)
    return PixelTask(
        scan_id="speed",
        reco_algo="pandel_mpe",
        nside=nside,
        pixel=pixel,
        posvar=0,
        ra=ra,
        dec=dec,
        seed=seed,
    )


def single_core(event: dict[str, Any], n_pixels: int, repeat: int) -> dict[str, float]:
    startup = StartupData.model_validate_json(
        make_startup_data("speed", "pandel_mpe", event).model_dump_json()
    )
    reco = get_reco("pandel_mpe")(startup)
    fallback = startup.fallback_seed
    npix8 = hp.nside2npix(8)
    sky = [task(8, int(p), fallback) for p in np.linspace(0, npix8 - 1, min(n_pixels, npix8))]
    reco.reconstruct(sky[0])  # warm-up: the pdf normalisation table
    # near the truth: nside-512 pixels within 1.5 deg, seeded from the fit of their nside-64 parent
    truth = event["truth"]
    ra_t, dec_t = dir_to_equa(truth["zenith"], truth["azimuth"], event["mjd"])
    vec = hp.ang2vec(math.pi / 2 - float(dec_t), float(ra_t))
    fine = hp.query_disc(512, vec, math.radians(1.5))
    rng = np.random.default_rng(0)
    fine = np.sort(rng.choice(fine, size=min(n_pixels, fine.size), replace=False))
    parents: dict[int, Seed] = {}
    near = []
    for p in fine:
        theta, phi = hp.pix2ang(512, int(p))
        parent = int(hp.ang2pix(64, theta, phi))
        if parent not in parents:
            fit = reco.reconstruct(task(64, parent, fallback))
            parents[parent] = Seed(x=fit.x, y=fit.y, z=fit.z, t=fit.t)
        near.append(task(512, int(p), parents[parent]))
    s_sky = time_pixels(reco, sky, repeat)
    s_near = time_pixels(reco, near, repeat)
    return {
        "n_sky": len(sky),
        "n_near": len(near),
        "ms_per_pixel_sky": 1e3 * s_sky,
        "ms_per_variation_sky": 1e3 * s_sky / N_VARIATIONS,
        "ms_per_pixel_near": 1e3 * s_near,
        "ms_per_variation_near": 1e3 * s_near / N_VARIATIONS,
    }


def full_scan(event: dict[str, Any], workers: int) -> dict[str, Any]:
    with tempfile.TemporaryDirectory() as tmp:
        event_file = Path(tmp) / "event.json"
        event_file.write_text(json.dumps(event))
        load = os.getloadavg()[0]
        wall, result = timed_scan(
            event_file, "pandel_mpe", NSIDES, workers, {"SKYSCAN_LOG": "WARNING"}
        )
        command = " ".join(
            ["skymap-scanner scan", *scan_args(event_file, "pandel_mpe", NSIDES, workers)]
        )
    summary = summarize_result(result)
    truth = event["truth"]
    ra_t, dec_t = dir_to_equa(truth["zenith"], truth["azimuth"], event["mjd"])
    return {
        "wall_s": wall,
        "load_before": load,
        "n_pixels": sum(len(v["data"]) for v in result.values()),
        "error_deg": float(angular_distance_deg(summary.ra_rad, summary.dec_rad, ra_t, dec_t)),
        "area90_deg2": summary.area_90_deg2,
        "command": command,
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--target-doms", type=int, default=300)
    parser.add_argument("--pixels", type=int, default=300, help="pixels timed per set")
    parser.add_argument("--repeat", type=int, default=1, help="best of N timings")
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--skip-scan", action="store_true", help="only the single-core timing")
    args = parser.parse_args()

    event, n_doms, seed = find_event(args.target_doms)
    truth = event["truth"]
    print(
        f"event: simulated track (seed {seed}), {truth['energy_gev'] / 1e3:.0f} TeV, zenith "
        f"{math.degrees(truth['zenith']):.1f} deg, {n_doms} hit DOMs after cleaning, "
        f"{len(event['pulses'])} pulses"
    )
    affinity = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else None
    if affinity:
        os.sched_setaffinity(0, {min(affinity)})
    try:
        speed = single_core(event, args.pixels, args.repeat)
    finally:
        if affinity:
            os.sched_setaffinity(0, affinity)
    print(
        f"one core, {speed['n_sky']} pixels spread over the sky (LineFit seed): "
        f"{speed['ms_per_pixel_sky']:.1f} ms per pixel = "
        f"{speed['ms_per_variation_sky']:.2f} ms per pixel-variation ({N_VARIATIONS} per pixel)"
    )
    print(
        f"one core, {speed['n_near']} nside-512 pixels within 1.5 deg of the truth (parent seed): "
        f"{speed['ms_per_pixel_near']:.1f} ms per pixel = "
        f"{speed['ms_per_variation_near']:.2f} ms per pixel-variation"
    )
    if args.skip_scan:
        return
    scan = full_scan(event, args.workers)
    print(
        f"full scan `{scan['command']}` as a whole process: {scan['wall_s']:.1f} s wall "
        f"({scan['n_pixels']} pixels, best fit {scan['error_deg']:.2f} deg from the truth, "
        f"Wilks 90 % area {scan['area90_deg2']:.2f} deg²; load average before: "
        f"{scan['load_before']:.2f})"
    )


if __name__ == "__main__":
    main()
