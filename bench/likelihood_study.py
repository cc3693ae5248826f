"""Development tool: how far from the truth is the likelihood's own minimum, for a given set of options?

For each event (JSON files of simulated events), the pixel fit of ``pandel_mpe`` (with ``--config`` settings,
``SKYSCAN_PANDEL_*`` names without the prefix) is minimised over the direction with Nelder-Mead, starting at
the true direction (tangent-plane offsets, 0.5° initial simplex; each fit seeded from the best fit so far, as
a scan seeds finer pixels from their parents). Reported per event: the angle between that local minimum and
the truth, and 2ΔLLH(truth) = 2 (llh(truth) - llh(minimum)). It is ~30x cheaper than a scan and measures the
likelihood's bias, not the scan's search (a wrong far minimum is invisible here): use it to compare options,
and ``bench/accuracy.py`` for the real numbers.

    nice -n 19 .venv/bin/python bench/likelihood_study.py EVENT.json ... --config ice=bulk max_photons=20
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import multiprocessing  # noqa: E402
import sys  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

import numpy as np  # noqa: E402
from scipy import optimize  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from skymap_scanner.recos.pandel import PandelMPE  # noqa: E402
from skymap_scanner.startup import make_startup_data  # noqa: E402
from skyscan_contract.messages import Seed  # noqa: E402


def _from(zen: float, azi: float) -> np.ndarray:
    return np.array([math.sin(zen) * math.cos(azi), math.sin(zen) * math.sin(azi), math.cos(zen)])


def study(job: tuple[Path, dict[str, Any]]) -> dict[str, Any]:
    path, config = job
    event = json.loads(path.read_text())
    cpu0 = time.process_time()
    startup = make_startup_data("study", "pandel_mpe", event)
    startup = startup.model_copy(update={"reco_config": {**startup.reco_config, **config}})
    reco = PandelMPE(startup)
    truth = event["truth"]
    u0 = _from(truth["zenith"], truth["azimuth"])
    helper = np.array([0.0, 0.0, 1.0]) if abs(u0[2]) < 0.9 else np.array([1.0, 0.0, 0.0])
    t1 = np.cross(u0, helper)
    t1 /= np.linalg.norm(t1)
    t2 = np.cross(u0, t1)
    seed = [startup.fallback_seed]
    cache: dict[tuple[float, float], float] = {}

    def llh(delta: np.ndarray) -> float:
        key = (round(float(delta[0]), 9), round(float(delta[1]), 9))
        if key in cache:
            return cache[key]
        v = u0 + delta[0] * t1 + delta[1] * t2
        v /= np.linalg.norm(v)
        zen = math.acos(max(-1.0, min(1.0, float(v[2]))))
        azi = math.atan2(float(v[1]), float(v[0]))
        fit = reco.fit_direction(zen, azi, seed[0])
        if not cache or fit.llh < min(cache.values()):
            seed[0] = Seed(x=fit.x, y=fit.y, z=fit.z, t=fit.t)
        cache[key] = fit.llh
        return fit.llh

    llh_truth = llh(np.zeros(2))
    step = math.radians(0.5)
    res = optimize.minimize(
        llh,
        np.zeros(2),
        method="Nelder-Mead",
        options={
            "initial_simplex": np.array([[0.0, 0.0], [step, 0.0], [0.0, step]]),
            "xatol": math.radians(0.005),
            "fatol": 0.01,
            "maxfev": 80,
        },
    )
    best = float(res.fun)
    return {
        "file": f"{path.parent.name}/{path.name}",
        "energy_gev": truth["energy_gev"],
        "starting": bool(truth.get("starting", False)),
        "chosen_starting": reco.options.starting,
        "n_doms": len(reco.hits),
        "local_error_deg": math.degrees(float(np.hypot(*res.x))),
        "delta2_truth": 2.0 * (llh_truth - best),
        "n_fits": len(cache),
        "cpu_s": time.process_time() - cpu0,
    }


def summary(rows: list[dict[str, Any]]) -> str:
    def stats(sel: list[dict[str, Any]]) -> str:
        if not sel:
            return "n 0"
        e = np.array([r["local_error_deg"] for r in sel])
        d = np.array([r["delta2_truth"] for r in sel])
        return (
            f"n {len(sel):3d}  median {np.median(e):5.2f}°  68% {np.quantile(e, 0.68):5.2f}°  "
            f"90% {np.quantile(e, 0.9):5.2f}°  >2° {np.mean(e > 2):4.0%}  "
            f"median 2ΔLLH(truth) {np.median(d):6.2f}"
        )

    lines = [
        "all       " + stats(rows),
        "through   " + stats([r for r in rows if not r["starting"]]),
        "starting  " + stats([r for r in rows if r["starting"]]),
    ]
    for lo, hi in ((1e3, 1e4), (1e4, 1e5), (1e5, 1e6), (1e6, 1e7)):
        lines.append(f"{lo:7.0e}+ " + stats([r for r in rows if lo <= r["energy_gev"] < hi]))
    chosen = [r for r in rows if r["chosen_starting"] != r["starting"]]
    lines.append(f"hypothesis wrong for {len(chosen)} of {len(rows)} events")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("events", nargs="+", type=Path)
    parser.add_argument("--config", nargs="*", default=[], metavar="KEY=JSON")
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
    config = {}
    for item in args.config:
        key, _, value = item.partition("=")
        try:
            config[key] = json.loads(value)
        except json.JSONDecodeError:
            config[key] = value
    jobs = [(p, config) for p in args.events]
    rows = []
    with multiprocessing.get_context("fork").Pool(args.processes) as pool:
        for row in pool.imap_unordered(study, jobs):
            rows.append(row)
            print(
                f"{row['file']}: E {row['energy_gev'] / 1e3:8.1f} TeV "
                f"{'start' if row['starting'] else 'thru '} ({'S' if row['chosen_starting'] else 'T'}) "
                f"{row['n_doms']:4d} DOMs local error {row['local_error_deg']:6.2f}° "
                f"2ΔLLH {row['delta2_truth']:7.2f} ({row['cpu_s']:.0f} s)",
                file=sys.stderr,
                flush=True,
            )
    rows.sort(key=lambda r: r["file"])
    print(f"config {config}")
    print(summary(rows))
    if args.out is not None:
        args.out.write_text(json.dumps({"config": config, "rows": rows}, indent=1))


if __name__ == "__main__":
    main()
