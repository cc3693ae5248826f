"""Benchmark: time from a PUT of a full ``8:0 64:12 512:24`` result to its sky products being served.

SkyDriver runs as a whole process (``skydriver serve``, its own database, nothing launched: the only
cluster is capped at 0 running scans), pinned to one CPU core (its products process, a child, inherits
the pinning). The bench submits the simulated event of ``bench/products.py`` (``pandel_mpe``), then PUTs
that benchmark's result ``--repeat`` times as the scan's scanner server would (a scan-scoped system
token; each PUT is a new result version) and for each measures, from just before the PUT:

- ``ready_s``: until ``GET /scan/{id}/products`` names the new version (polled every 50 ms);
- ``served_s``: until ``GET .../products/skymap.multiorder.fits`` has answered with that version's ETag
  (the moment a user has the map).

The first PUT is the cold case: SkyDriver starts its products process then (spawn, imports of healpy,
astropy, mocpy, ...). The others are warm. The index's ``build_s`` is the build alone, in the child. On a
shared machine the wall times depend on the load; the CPU times of the two processes over the same
interval (``rest_cpu_s``: storing the result and the products, answering the polls; ``products_cpu_s``:
the products process and its helpers) depend on it less.
The bench also checks that the REST process never loaded healpy (its ``/proc/<pid>/maps``).

    nice -n 10 .venv/bin/python bench/products_rest.py --repeat 5

Needs FerretDB (``MONGODB_URI``, default 127.0.0.1:27017). Writes ``bench/results/products_rest.json``.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pymongo import MongoClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from products import DEFAULT_RESULT, EVENT_INDEX, NSIDES, SEED, make_result  # noqa: E402

from skydriver.auth import LocalKeyAuthenticator, Role  # noqa: E402

DEFAULT_OUT = REPO / "bench" / "results" / "products_rest.json"
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
POLL_S = 0.05
TIMEOUT_S = 300.0


def simulated_event() -> dict[str, Any]:
    """The event whose scan is `bench/products.py`'s result."""
    import math

    from skymap_scanner.simulation import simulate_events

    zenith = (math.radians(80.0), math.radians(180.0))
    event: dict[str, Any] = simulate_events(EVENT_INDEX + 1, SEED, zenith_range=zenith)[EVENT_INDEX]
    return event


def start_skydriver(tmp: Path, database: str) -> tuple[subprocess.Popen[str], str]:
    env = {
        **os.environ,
        "SKYDRIVER_PORT": "0",
        "MONGODB_URI": MONGODB_URI,
        "SKYDRIVER_MONGODB_DATABASE": database,
        "SKYDRIVER_STATE_DIR": str(tmp / "state"),
        "SKYDRIVER_AUTH_KEY_FILE": str(tmp / "key.pem"),
        "SKYDRIVER_MAX_RUNNING_SCANS_PER_CLUSTER": json.dumps({"local": 0}),
        "SKYDRIVER_LOG_LEVEL": "WARNING",
    }
    core = min(os.sched_getaffinity(0))
    proc = subprocess.Popen(
        [sys.executable, "-m", "skydriver", "serve"],
        env=env,
        stdout=subprocess.PIPE,
        text=True,
        preexec_fn=lambda: os.sched_setaffinity(0, {core}),
    )
    assert proc.stdout is not None
    line = proc.stdout.readline()
    if "listening on" not in line:
        proc.terminate()
        raise SystemExit(f"SkyDriver did not start: {line!r}")
    return proc, line.strip().rsplit(" ", 1)[1]


def loaded_healpy(pid: int) -> bool:
    return "healpy" in Path(f"/proc/{pid}/maps").read_text()


TICK_S = 1.0 / os.sysconf("SC_CLK_TCK")


def cpu_s(pid: int) -> float:
    """User + system CPU of a live process [s] (0 if it is gone)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except FileNotFoundError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) * TICK_S  # utime, stime (fields 14, 15 of stat)


def children(pid: int) -> list[int]:
    out: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(FileNotFoundError):
            out += [int(c) for c in (task / "children").read_text().split()]
    return out


def cpu_split(pid: int) -> tuple[float, float]:
    """(CPU of the REST process, CPU of its children: the products process) [s]."""
    return cpu_s(pid), sum(cpu_s(c) for c in children(pid))


def measure_one(
    client: httpx.Client,
    system: dict[str, str],
    scan_id: str,
    result: dict[str, Any],
    version: int,
    pid: int,
) -> dict[str, Any]:
    body = {"skyscan_result": result, "is_final": False}
    rest0, products0 = cpu_split(pid)
    start = time.perf_counter()
    resp = client.put(f"/scan/{scan_id}/result", json=body, headers=system)
    resp.raise_for_status()
    put_s = time.perf_counter() - start
    deadline = start + TIMEOUT_S
    polls = 0
    while True:
        polls += 1
        index = client.get(f"/scan/{scan_id}/products").json()
        if index["version"] == version:
            break
        if index["state"] == "failed" or time.perf_counter() > deadline:
            raise SystemExit(f"products of version {version} not served: {index}")
        time.sleep(POLL_S)
    ready_s = time.perf_counter() - start
    fits = next(p for p in index["products"] if p["name"] == "skymap.multiorder.fits")
    resp = client.get(f"/scan/{scan_id}/products/skymap.multiorder.fits")
    resp.raise_for_status()
    assert resp.headers["Etag"] == fits["etag"]
    served_s = time.perf_counter() - start
    rest1, products1 = cpu_split(pid)
    return {
        "version": version,
        "put_s": put_s,
        "ready_s": ready_s,
        "served_s": served_s,
        "rest_cpu_s": rest1 - rest0,
        "products_cpu_s": products1 - products0,
        "polls": polls,
        "build_s": index["build_s"],
        "total_bytes": sum(p["size"] for p in index["products"]),
    }


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--repeat", type=int, default=5, help="PUTs (the first is cold)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="JSON output")
    args = parser.parse_args()
    if not DEFAULT_RESULT.exists():
        make_result(DEFAULT_RESULT)
    result = json.loads(DEFAULT_RESULT.read_text())
    database = f"bench_products_{uuid.uuid4().hex[:10]}"
    runs: list[dict[str, Any]] = []
    with tempfile.TemporaryDirectory() as tmp_dir:
        tmp = Path(tmp_dir)
        proc, url = start_skydriver(tmp, database)
        try:
            issuer = LocalKeyAuthenticator.from_key_file(tmp / "key.pem")
            user = {
                "Authorization": f"Bearer {issuer.issue_token(Role.USER, subject='bench', ttl_s=3600)}"
            }
            with httpx.Client(base_url=url, headers=user, timeout=60) as client:
                request = {
                    "docker_tag": "latest",
                    "reco_algo": "pandel_mpe",
                    "nsides": {n.split(":")[0]: int(n.split(":")[1]) for n in NSIDES.split()},
                    "real_or_simulated_event": "simulated",
                    "max_pixel_reco_time": 600,
                    "request_clusters": {"local": 1},
                    "event_i3live_json": simulated_event(),
                }
                resp = client.post("/scan", json=request)
                resp.raise_for_status()
                scan_id = resp.json()["scan_id"]
                token = issuer.issue_token(
                    Role.SYSTEM, subject="bench", ttl_s=3600, scan_id=scan_id
                )
                system = {"Authorization": f"Bearer {token}"}
                for version in range(1, args.repeat + 1):
                    runs.append(measure_one(client, system, scan_id, result, version, proc.pid))
                    print(
                        f"version {version}: served after {runs[-1]['served_s']:.2f} s "
                        f"(build {runs[-1]['build_s']:.2f} s)",
                        file=sys.stderr,
                    )
            rest_loaded_healpy = loaded_healpy(proc.pid)
        finally:
            proc.terminate()
            proc.wait(60)
            with MongoClient(MONGODB_URI) as mongo:
                mongo.drop_database(database)
    warm = runs[1:] or runs

    def median(key: str) -> float:
        return statistics.median(r[key] for r in warm)

    summary = {
        "cold_served_s": runs[0]["served_s"],
        "cold_cpu_s": runs[0]["rest_cpu_s"] + runs[0]["products_cpu_s"],
        "warm_served_s_median": median("served_s"),
        "warm_served_s_range": [min(r["served_s"] for r in warm), max(r["served_s"] for r in warm)],
        "warm_rest_cpu_s_median": median("rest_cpu_s"),
        "warm_products_cpu_s_median": median("products_cpu_s"),
        "warm_build_s_median": median("build_s"),
        "rest_process_loaded_healpy": rest_loaded_healpy,
    }
    provenance = {
        "command": "bench/products_rest.py " + " ".join(sys.argv[1:]),
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "python": platform.python_version(),
        "cpu": platform.processor() or platform.machine(),
        "load_average": os.getloadavg(),
        "skydriver_pinned_to_one_core": True,
        "result": str(DEFAULT_RESULT.relative_to(REPO)),
        "pixels_per_nside": {k: len(v["data"]) for k, v in result.items()},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(
        json.dumps({"provenance": provenance, "summary": summary, "runs": runs}, indent=1) + "\n"
    )
    lo, hi = summary["warm_served_s_range"]
    rows = [
        ("| PUT → products served | wall | CPU: REST process | CPU: products process |"),
        ("|---|---|---|---|"),
        (
            f"| first result (cold: starts the products process) | {runs[0]['served_s']:.2f} s | "
            f"{runs[0]['rest_cpu_s']:.2f} s | {runs[0]['products_cpu_s']:.2f} s |"
        ),
        (
            f"| later results, median of {len(warm)} (wall {lo:.2f}-{hi:.2f} s) | "
            f"{summary['warm_served_s_median']:.2f} s | {summary['warm_rest_cpu_s_median']:.2f} s | "
            f"{summary['warm_products_cpu_s_median']:.2f} s "
            f"(the build alone: {summary['warm_build_s_median']:.2f} s wall) |"
        ),
    ]
    print("\n".join(rows))
    print(f"\nREST process loaded healpy: {rest_loaded_healpy}; load {provenance['load_average']}")


if __name__ == "__main__":
    main()
