"""Benchmark: the web dashboard with 1,000 scans in the database and 50 concurrent viewers.

SkyDriver runs as its own process (`skydriver serve`) on a database of its own, filled with 1,000 scans
(manifests with progress reports, half of them with a final result; written directly, so no instance is
launched). Each of 50 viewers signs in with a one-time code (as `skydriver dashboard` makes), keeps the list's
event stream open (`GET /scans/events?summaries=true`, as the page does) and, for the duration, loads pages
one after another: the scan list (the HTML shell, then `GET /scans/summaries?limit=500`) or a scan page of
one of the 30 newest scans (the shell, `GET /scan/{id}/summary` and `GET /scan/{id}/result`). A page time is the shell plus its data,
fetched as the page's script does. The first read of the list and the first look at each watched scan (the
database reads that fill SkyDriver's caches) are timed before, one by one, and reported apart. Meanwhile a writer reports progress on 10 running scans every 0.5 s (as
scanner servers do), so every stream carries summaries; their delay (the manifest's write time to the
arrival at a viewer) is measured too. SkyDriver's CPU is read from /proc (user + system time of its process).

Run: `make up && nice -n 10 .venv/bin/python bench/dashboard.py` (results: bench/results/dashboard.json)."""

from __future__ import annotations

import asyncio
import json
import os
import platform
import random
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
from pymongo import AsyncMongoClient

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from skydriver.auth import LocalKeyAuthenticator, Role  # noqa: E402
from skydriver.dashboard.sessions import COOKIE  # noqa: E402
from skydriver.store.scans import _encode_manifest  # noqa: E402
from skyscan_contract.documents import InstanceRecord, InstanceState, Manifest  # noqa: E402

SCANS = int(os.environ.get("BENCH_SCANS", "1000"))
VIEWERS = int(os.environ.get("BENCH_VIEWERS", "50"))
DURATION_S = float(os.environ.get("BENCH_DURATION_S", "20"))
RUNNING = 10
#: scan pages are opened for the newest scans (the running ones and the latest finished): people on shift
#: look at the alert at hand, not at random old scans
WATCHED = 30
MONGODB_URI = os.environ.get("MONGODB_URI", "mongodb://127.0.0.1:27017")
OUT = REPO / "bench" / "results" / "dashboard.json"


def progress(done: int, total: int = 3072) -> dict[str, Any]:
    now = time.time()
    return {
        "summary": "bench",
        "epilogue": "",
        "tallies": {
            "nsides": {
                "8": {
                    "pixels": {
                        "done": min(done, 768),
                        "generated": 768,
                        "initial approximation total": 768,
                    }
                },
                "64": {
                    "pixels": {
                        "done": max(done - 768, 0),
                        "generated": 768 if done > 768 else 0,
                        "initial approximation total": 768,
                    }
                },
                "512": {"pixels": {"done": 0, "generated": 0, "initial approximation total": 1536}},
            }
        },
        "processing_stats": {
            "start": {
                "reco start (on first worker)": str(
                    time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now - 60))
                )
            },
            "rate": {
                "all recos": {
                    "wall time": {"end": time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(now))}
                }
            },
            "finished": done >= total,
        },
        "predictive_scanning_threshold": 1.0,
        "last_updated": time.strftime("%Y-%m-%d %H:%M:%S"),
    }


def result_doc(scan_id: str) -> dict[str, Any]:
    rows = [[p, random.uniform(0, 50), 0, 0, 0, 0, 0, 0] for p in range(768)]
    result = {
        "nside-8": {
            "columns": ["index", "llh", "E_in", "E_tot", "X", "Y", "Z", "T"],
            "data": rows,
            "metadata": {
                "nside": 8,
                "run_id": 138632,
                "event_id": 1,
                "event_type": "bench",
                "mjd": 60000.0,
                "is_real_event": False,
                "version": 1,
                "complete": True,
            },
        }
    }
    return {"scan_id": scan_id, "skyscan_result_json": json.dumps(result), "is_final": True}


async def fill(database: str) -> list[str]:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    db = client[database]
    ids, manifests, results = [], [], []
    now = time.time()
    for i in range(SCANS):
        scan_id = uuid.uuid4().hex
        ids.append(scan_id)
        running = i >= SCANS - RUNNING  # the newest ones
        manifest = Manifest(
            scan_id=scan_id,
            timestamp=now - 3600 * (SCANS - i) / 10,
            scanner_server_args=f"python -m skymap_scanner.server --reco-algo {'dummy' if i % 3 else 'pandel_mpe'} --nsides 8:0 64:12 512:24 --real-event",
            ewms_workflow_id=f"local-{scan_id}",
            classifiers={"pipeline": "bench", "i": i},
            i3_event_id=uuid.uuid4().hex,
            event_metadata={
                "run_id": 138632 + i,
                "event_id": 1000 + i,
                "event_type": "bench",
                "mjd": 60000.0 + i / 100,
                "is_real_event": False,
            },
            progress=progress(300 if running else 3072),
            # the running ones have no instance record: nothing to watch, poll or stop
            instance=None if running else InstanceRecord(state=InstanceState.ENDED, exit_code=0),
            last_updated=now,
            created_by="bench",
        )
        manifests.append(_encode_manifest(manifest))
        if not running and i % 2 == 0:
            results.append(result_doc(scan_id))
    await db["Manifests"].insert_many(manifests)
    await db["Results"].insert_many(results)
    await client.close()
    return ids


async def drop(database: str) -> None:
    client: AsyncMongoClient[dict[str, Any]] = AsyncMongoClient(MONGODB_URI)
    await client.drop_database(database)
    await client.close()


def cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


async def viewer(
    base: str,
    cookie: str,
    ids: list[str],
    stop_at: float,
    times: dict[str, list[float]],
    delays: list[float],
    seed: int,
) -> None:
    rng = random.Random(seed)
    async with httpx.AsyncClient(base_url=base, cookies={COOKIE: cookie}, timeout=60) as client:

        async def stream() -> None:
            async with client.stream("GET", "/scans/events?summaries=true") as resp:
                async for line in resp.aiter_lines():
                    if line.startswith("data: ") and '"progress"' in line:
                        row = json.loads(line[6:])
                        delays.append(time.time() - float(row["last_updated"]))

        task = asyncio.create_task(stream())
        try:
            while time.perf_counter() < stop_at:
                t0 = time.perf_counter()
                if rng.random() < 0.5:
                    kind = "list"
                    assert (await client.get("/dashboard")).status_code == 200
                    resp = await client.get("/scans/summaries?limit=500")
                    assert resp.status_code == 200 and len(resp.json()["scans"]) == min(500, SCANS)
                else:
                    kind = "scan"
                    scan_id = rng.choice(ids[-WATCHED:])
                    assert (await client.get(f"/dashboard/scan/{scan_id}")).status_code == 200
                    assert (await client.get(f"/scan/{scan_id}/summary")).status_code == 200
                    assert (
                        await client.get(f"/scan/{scan_id}/result?include_deleted=true")
                    ).status_code == 200
                times[kind].append(time.perf_counter() - t0)
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)


async def writer(
    base: str, token: str, ids: list[str], stop_at: float, patch_times: list[float]
) -> int:
    n = 0
    async with httpx.AsyncClient(
        base_url=base, headers={"Authorization": f"Bearer {token}"}, timeout=60
    ) as c:
        done = 300
        while time.perf_counter() < stop_at:
            done += 10
            for scan_id in ids[-RUNNING:]:
                t0 = time.perf_counter()
                resp = await c.patch(f"/scan/{scan_id}/manifest", json={"progress": progress(done)})
                assert resp.status_code == 200, resp.text
                patch_times.append(time.perf_counter() - t0)
                n += 1
            await asyncio.sleep(
                0.5
            )  # the scanners' report interval (load pacing, not synchronisation)
    return n


def pct(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return (
        ordered[min(len(ordered) - 1, round(p / 100 * (len(ordered) - 1)))]
        if ordered
        else float("nan")
    )


async def main() -> None:
    database = f"bench_dashboard_{uuid.uuid4().hex[:8]}"
    state = Path(tempfile.mkdtemp(prefix="bench-dashboard-"))
    key_file = state / "signing-key.pem"
    issuer = LocalKeyAuthenticator.from_key_file(key_file)
    print(f"filling {database} with {SCANS} scans", flush=True)
    ids = await fill(database)
    env = {
        **os.environ,
        "SKYDRIVER_PORT": "0",
        "SKYDRIVER_MONGODB_DATABASE": database,
        "SKYDRIVER_STATE_DIR": str(state / "state"),
        "SKYDRIVER_AUTH_KEY_FILE": str(key_file),
        "SKYDRIVER_LOG_LEVEL": "WARNING",
        "SKYDRIVER_LAUNCHER": "local",
    }
    proc = subprocess.Popen(  # noqa: ASYNC220  (started once, before the measurement)
        [sys.executable, "-m", "skydriver", "serve"], env=env, stdout=subprocess.PIPE, text=True
    )
    try:
        assert proc.stdout is not None
        line = proc.stdout.readline()
        assert "listening on" in line, line
        base = line.strip().rsplit(" ", 1)[1]
        cookies = []
        async with httpx.AsyncClient(base_url=base, timeout=60) as c:
            for i in range(VIEWERS):
                code = issuer.issue_signin_code(Role.USER, subject=f"viewer-{i}", ttl_s=120)
                resp = await c.post("/dashboard/session", json={"code": code})
                cookies.append(resp.cookies[COOKIE])
            warm = issuer.issue_signin_code(Role.USER, subject="warm-up", ttl_s=120)
            resp = await c.post("/dashboard/session", json={"code": warm})
            t0 = time.perf_counter()
            await c.get("/scans/summaries?limit=500", cookies={COOKIE: resp.cookies[COOKIE]})
            first_list_s = time.perf_counter() - t0  # the one full read of the list
            # the first look at each watched scan reads its manifest and result from the database;
            # timed here, one after another, and reported apart from the steady state measured below
            cold: list[float] = []
            for scan_id in ids[-WATCHED:]:
                t0 = time.perf_counter()
                for path in (
                    f"/dashboard/scan/{scan_id}",
                    f"/scan/{scan_id}/summary",
                    f"/scan/{scan_id}/result",
                ):
                    r = await c.get(path, cookies={COOKIE: resp.cookies[COOKIE]})
                    assert r.status_code == 200, (path, r.status_code)
                cold.append(time.perf_counter() - t0)
        times: dict[str, list[float]] = {"list": [], "scan": []}
        delays: list[float] = []
        patch_times: list[float] = []
        cpu0, wall0 = cpu_seconds(proc.pid), time.perf_counter()
        client0 = time.process_time()
        stop_at = wall0 + DURATION_S
        token = issuer.issue_token(Role.SYSTEM, subject="bench-writer", ttl_s=3600)
        results = await asyncio.gather(
            writer(base, token, ids, stop_at, patch_times),
            *(viewer(base, cookies[i], ids, stop_at, times, delays, i) for i in range(VIEWERS)),
        )
        wall = time.perf_counter() - wall0
        cpu = cpu_seconds(proc.pid) - cpu0
        client_cpu = time.process_time() - client0
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        await drop(database)
    every = times["list"] + times["scan"]
    report = {
        "scans": SCANS,
        "viewers": VIEWERS,
        "duration_s": round(wall, 1),
        "pages": {k: len(v) for k, v in times.items()},
        "pages_per_s": round(len(every) / wall, 1),
        "page_time_ms": {
            k: {"p50": round(1000 * statistics.median(v), 1), "p99": round(1000 * pct(v, 99), 1)}
            for k, v in {**times, "all": every}.items()
            if v
        },
        "first_list_read_s": round(first_list_s, 2),
        "first_scan_page_ms": {
            "p50": round(1000 * statistics.median(cold), 1),
            "max": round(1000 * max(cold), 1),
        },
        "progress_reports": results[0],
        "progress_report_ms": {
            "p50": round(1000 * statistics.median(patch_times), 1),
            "p99": round(1000 * pct(patch_times, 99), 1),
        }
        if patch_times
        else None,
        "summaries_received": len(delays),
        "summary_delay_ms": {
            "p50": round(1000 * statistics.median(delays), 1),
            "p99": round(1000 * pct(delays, 99), 1),
        }
        if delays
        else None,
        "skydriver_cpu_s": round(cpu, 2),
        "skydriver_cpu_cores": round(cpu / wall, 2),
        # the viewers (httpx, JSON decoding) share the machine: their process's CPU, for comparison
        "viewers_process_cpu_cores": round(client_cpu / wall, 2),
        "machine": {
            "cpus": os.cpu_count(),
            "load_avg_1min_at_end": os.getloadavg()[0],
            "python": platform.python_version(),
        },
        "command": "nice -n 10 .venv/bin/python bench/dashboard.py",
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(report, indent=2) + "\n")
    print(json.dumps(report, indent=2))


if __name__ == "__main__":
    asyncio.run(main())
