"""Benchmark: time to make every alert product of one full ``8:0 64:12 512:24`` result, as a process.

Each repetition starts a fresh Python process pinned to one CPU core (``os.sched_setaffinity``, numpy
single-threaded) that reads the result, imports what it needs (astropy, healpy, mocpy, shapely, ...),
runs ``skymap_scanner.products.alert.build_products`` and writes the files: the wall time of the whole
process is the number (target: under 2 s), with its CPU time (user + system), which a busy machine
inflates less. The child also reports the in-process time of
``build_products`` alone (imports excluded) and the product sizes.

The result: ``--result FILE`` (repeatable), or by default a physics scan of a simulated track made
once and cached in ``.state/bench/products-result.json``: the toy simulator (seed 20240, event 3: a
382 TeV upgoing track), ``pandel_mpe``, the real pixel-selection loop in-process (``bench/accuracy.py``'s
``scan_in_process``; about a minute of CPU).

    nice -n 19 .venv/bin/python bench/products.py --repeat 5
    .venv/bin/python bench/products.py --result out/run*.json   # e.g. a dummy scan's result

Writes ``bench/results/products.json`` and prints a Markdown table.
"""

from __future__ import annotations

import os

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS", "NUMEXPR_NUM_THREADS"):
    os.environ[_var] = "1"

import argparse  # noqa: E402
import datetime  # noqa: E402
import json  # noqa: E402
import math  # noqa: E402
import platform  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import sys  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402
from pathlib import Path  # noqa: E402
from typing import Any  # noqa: E402

REPO = Path(__file__).resolve().parents[1]
DEFAULT_RESULT = REPO / ".state" / "bench" / "products-result.json"
DEFAULT_OUT = REPO / "bench" / "results" / "products.json"
NSIDES = "8:0 64:12 512:24"
SEED, EVENT_INDEX = 20240, 3


def child(result_path: Path, out_dir: Path) -> None:
    """One measured process: read, build, write; print the in-process numbers as JSON."""
    os.sched_setaffinity(0, {min(os.sched_getaffinity(0))})
    t0 = time.perf_counter()
    sys.path.insert(0, str(REPO))
    from skymap_scanner.products.alert import build_products
    from skymap_scanner.products.info import ScanInfo

    t_import = time.perf_counter()
    result = json.loads(result_path.read_text())
    t_read = time.perf_counter()
    products = build_products(result, scan=ScanInfo(scan_id="bench", reco_algo="pandel_mpe"))
    t_build = time.perf_counter()
    for p in products.values():
        (out_dir / p.name).write_bytes(p.data)
    print(
        json.dumps(
            {
                "import_s": t_import - t0,
                "read_s": t_read - t_import,
                "build_s": t_build - t_read,
                "write_s": time.perf_counter() - t_build,
                "sizes": {p.name: len(p.data) for p in products.values()},
            }
        )
    )


def make_result(path: Path) -> None:
    """Scan the simulated event in-process (see the module docstring) and save the result."""
    sys.path.insert(0, str(REPO / "bench"))
    sys.path.insert(0, str(REPO))
    from accuracy import scan_in_process  # type: ignore[import-not-found]

    from skymap_scanner.simulation import simulate_events

    zenith = (math.radians(80.0), math.radians(180.0))  # as bench/accuracy.py
    event = simulate_events(EVENT_INDEX + 1, SEED, zenith_range=zenith)[EVENT_INDEX]
    print(f"scanning simulated event {EVENT_INDEX} of seed {SEED} ({NSIDES}) ...", file=sys.stderr)
    result, _, _ = scan_in_process(
        event, "pandel_mpe", NSIDES, scan_id=f"accuracy-{SEED}-{EVENT_INDEX}"
    )
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(result))


def measure(result_path: Path, repeat: int) -> dict[str, Any]:
    runs: list[dict[str, Any]] = []
    for _ in range(repeat):
        with tempfile.TemporaryDirectory() as out:
            argv = [sys.executable, __file__, "--child", str(result_path), out]
            cpu0 = resource.getrusage(resource.RUSAGE_CHILDREN)
            start = time.perf_counter()
            done = subprocess.run(argv, check=True, capture_output=True, text=True)
            wall = time.perf_counter() - start
            cpu1 = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (cpu1.ru_utime - cpu0.ru_utime) + (cpu1.ru_stime - cpu0.ru_stime)
        runs.append(
            {
                "process_wall_s": wall,
                "process_cpu_s": cpu,
                **json.loads(done.stdout.splitlines()[-1]),
            }
        )
    result = json.loads(result_path.read_text())
    return {
        "result": str(result_path),
        "pixels_per_nside": {k: len(v["data"]) for k, v in result.items()},
        "process_wall_s": [r["process_wall_s"] for r in runs],
        "process_cpu_s": [r["process_cpu_s"] for r in runs],
        "build_s": [r["build_s"] for r in runs],
        "import_s": [r["import_s"] for r in runs],
        "median_process_wall_s": statistics.median(r["process_wall_s"] for r in runs),
        "median_process_cpu_s": statistics.median(r["process_cpu_s"] for r in runs),
        "median_build_s": statistics.median(r["build_s"] for r in runs),
        "sizes": runs[-1]["sizes"],
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--result", type=Path, action="append", help="result file(s) to time")
    parser.add_argument("--repeat", type=int, default=5, help="processes per result")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    parser.add_argument("--child", nargs=2, type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child(*args.child)
        return
    results = args.result
    if not results:
        if not DEFAULT_RESULT.exists():
            make_result(DEFAULT_RESULT)
        results = [DEFAULT_RESULT]
    rows = [measure(path, args.repeat) for path in results]
    provenance = {
        "command": "bench/products.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "pinned_to_one_core": True,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps({"provenance": provenance, "runs": rows}, indent=1) + "\n")
    print(
        "| result | pixels | process wall (median, min-max) | process CPU (median) "
        "| build_products alone (median) |"
    )
    print("|---|---|---|---|---|")
    for r in rows:
        walls = r["process_wall_s"]
        print(
            f"| {Path(r['result']).name} | {sum(r['pixels_per_nside'].values())} | "
            f"{r['median_process_wall_s']:.2f} s ({min(walls):.2f}-{max(walls):.2f}) | "
            f"{r['median_process_cpu_s']:.2f} s | {r['median_build_s']:.2f} s |"
        )
    print(f"\nload average during the run: {provenance['load_average']}; details: {args.out}")


if __name__ == "__main__":
    main()
