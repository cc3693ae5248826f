"""Speed of the per-pixel track fit on one core (toy event with ~300 hit DOMs).

Usage: python bench/reco_speed_core.py [--repeat N]

Prints milliseconds per position variation of ``fit_pixel`` (7 variations per pixel) for SPE and
MPE, for pixels near the true direction (as at the finer nsides of a scan) and for all-sky
pixels (as at the first nside).
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import math  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skymap_scanner.physics import pandel  # noqa: E402
from skymap_scanner.physics.constants import (  # noqa: E402
    C_VACUUM_M_PER_NS,
    N_GROUP,
    PANDEL_JITTER_NS,
    PANDEL_LAMBDA_M,
    THETA_CHERENKOV,
)
from skymap_scanner.physics.hits import HitSeries  # noqa: E402
from skymap_scanner.physics.linefit import linefit  # noqa: E402
from skymap_scanner.physics.trackfit import fit_pixel, position_variations  # noqa: E402


def unit(zen: float, azi: float) -> np.ndarray:
    return np.array([math.sin(zen) * math.cos(azi), math.sin(zen) * math.sin(azi), math.cos(zen)])


def toy_hits(zen: float, azi: float, vertex: np.ndarray, amp: float, seed: int) -> HitSeries:
    """IceCube-like toy: 125 m string grid, 60 DOMs/string, Gamma + jitter first-hit delays."""
    rng = np.random.default_rng(seed)
    xy = [
        (125.0 * (i + 0.5 * j), 125.0 * math.sqrt(3) / 2 * j)
        for i in range(-6, 7)
        for j in range(-6, 7)
        if math.hypot(125.0 * (i + 0.5 * j), 125.0 * math.sqrt(3) / 2 * j) < 600.0
    ]
    xy_a = np.array(xy)
    pos = np.column_stack(
        [
            np.repeat(xy_a[:, 0], 60),
            np.repeat(xy_a[:, 1], 60),
            np.tile(np.linspace(-500, 500, 60), len(xy_a)),
        ]
    )
    string = np.repeat(np.arange(len(xy_a)), 60)
    om = np.tile(np.arange(60), len(xy_a))
    p = -unit(zen, azi)
    rel = pos - vertex
    d_t = rel @ p
    perp = rel - np.outer(d_t, p)
    d = np.linalg.norm(perp, axis=1)
    sin_c, cos_c = math.sin(THETA_CHERENKOV), math.cos(THETA_CHERENKOV)
    cos_eta = sin_c * perp[:, 2] / np.maximum(d, 1e-9) + cos_c * p[2]
    xi = pandel.effective_distance(d, cos_eta) / PANDEL_LAMBDA_M
    t_geo = (d_t + d * (N_GROUP / sin_c - cos_c / sin_c)) / C_VACUUM_M_PER_NS
    n_ph = rng.poisson(amp * np.exp(-d / 60.0) / (1.0 + d / 20.0))
    hit = np.flatnonzero(n_ph > 0)
    first = np.array(
        [
            np.min(
                rng.gamma(xi[i], 1 / pandel.PANDEL_RHO_PER_NS, n_ph[i])
                + rng.normal(0, PANDEL_JITTER_NS, n_ph[i])
            )
            for i in hit
        ]
    )
    return HitSeries.from_pulses(
        string[hit], om[hit], t_geo[hit] + first, n_ph[hit].astype(float), pos[hit]
    )


def bench(hits: HitSeries, dirs: list[tuple[float, float]], mpe: bool, repeat: int) -> float:
    lf = linefit(hits)
    n_var = int(position_variations().shape[0])
    best = math.inf
    for _ in range(repeat):
        t0 = time.perf_counter()
        for zen, azi in dirs:
            fit_pixel(hits, zen, azi, lf.pos, lf.time, mpe=mpe)
        best = min(best, time.perf_counter() - t0)
    return best * 1e3 / (len(dirs) * n_var)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    if hasattr(os, "sched_setaffinity"):
        os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    zen, azi = 0.7, 1.0
    hits = toy_hits(zen, azi, np.array([30.0, -20.0, 10.0]), 25.0, 1)
    rng = np.random.default_rng(0)
    near = [(zen + rng.normal(0, 0.03), azi + rng.normal(0, 0.04)) for _ in range(20)]
    sky = [
        (math.acos(c), a)
        for c, a in zip(rng.uniform(-1, 1, 20), rng.uniform(0, 2 * math.pi, 20), strict=True)
    ]
    fit_pixel(hits, zen, azi, hits.cog(), 0.0, mpe=True)  # warm-up (builds the pdf table)
    print(f"toy event: {len(hits)} hit DOMs, {hits.total_charge:.0f} PE; 7 variations per pixel")
    for mpe in (False, True):
        name = "MPE" if mpe else "SPE"
        ms_near = bench(hits, near, mpe, args.repeat)
        ms_sky = bench(hits, sky, mpe, args.repeat)
        print(f"{name}: {ms_near:6.2f} ms/variation near truth, {ms_sky:6.2f} ms/variation all-sky")


if __name__ == "__main__":
    main()
