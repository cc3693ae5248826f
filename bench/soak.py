"""Soak benchmark: scans submitted continuously for `--minutes` to SkyDriver as a whole process.

SkyDriver (`python -m skydriver serve`) runs against a FerretDB and a RabbitMQ node of the benchmark's own
(tests/chaos/services.py: free ports, own data, so that the broker's memory is this run's alone), with
`SKYDRIVER_MAX_RUNNING_SCANS` sized for the machine. The submitter keeps `--pending` scans submitted and
not yet finished (the backlog holds those beyond the running cap) until the time is up, then waits for
all of them. Each scan is the seeded `dummy` on a small progression with its own scanner server, client
manager and workers.

Reported: throughput (scans completed per minute), submit latency (`POST /scan`, median and p99),
SkyDriver's RSS and RabbitMQ's `mem_used` (management API /api/nodes) at start (after the first
`--warmup-scans` scans), every minute and at the end, checked against a stated bound on growth, and
what is left after every scan ended: queues, per-scan vhosts and users, scan processes (must be 0).

Run: `nice -n 19 .venv/bin/python bench/soak.py --minutes 10` (writes bench/results/soak.json)."""

from __future__ import annotations

import argparse
import asyncio
import datetime
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from tests.chaos.services import (  # noqa: E402
    FerretDB,
    RabbitMQ,
    SkyDriverProcess,
    processes_mentioning,
)
from tests.helpers import scan_body  # noqa: E402

#: growth allowed between the start sample (after warm-up) and the end (all scans over), in bytes
RSS_GROWTH_BOUND = 50_000_000
BROKER_GROWTH_BOUND = 50_000_000


def p99(values: list[float]) -> float:
    return statistics.quantiles(values, n=100, method="inclusive")[98] if len(values) > 1 else 0.0


class Soak:
    def __init__(self, args: argparse.Namespace, rest: httpx.AsyncClient) -> None:
        self.args = args
        self.rest = rest
        self.pending: dict[str, float] = {}  # scan id -> submitted at
        self.submit_latency_s: list[float] = []
        self.scan_wall_s: list[float] = []
        self.completed_in_window = 0
        self.seq = 0

    async def submit(self) -> None:
        self.seq += 1
        body = scan_body(
            nsides={k: int(v) for k, v in (n.split(":") for n in self.args.nsides.split())},
            request_clusters={"local": self.args.workers},
            scanner_server_env={
                "SKYSCAN_DUMMY_SLEEP_S": self.args.dummy_sleep_s,
                "SKYSCAN_DUMMY_SEED": self.seq,
                "SKYSCAN_LOG": "WARNING",
            },
        )
        t0 = time.perf_counter()
        resp = await self.rest.post("/scan", json=body)
        self.submit_latency_s.append(time.perf_counter() - t0)
        resp.raise_for_status()
        self.pending[resp.json()["scan_id"]] = time.monotonic()

    async def poll(self, window_open: bool) -> None:
        for scan_id, submitted in list(self.pending.items()):
            status = (await self.rest.get(f"/scan/{scan_id}/status")).json()
            if status["scan_state"].startswith("ABORTED"):
                raise RuntimeError(f"scan {scan_id} aborted: {status}")
            if status["scan_complete"]:
                del self.pending[scan_id]
                self.scan_wall_s.append(time.monotonic() - submitted)
                self.completed_in_window += window_open


async def sample(sky: SkyDriverProcess, broker: RabbitMQ, since: float) -> dict[str, Any]:
    return {
        "t_s": round(time.monotonic() - since, 1),
        "skydriver_rss_bytes": sky.rss_bytes(),
        "rabbitmq_mem_used_bytes": await broker.memory_bytes(),
    }


async def run(args: argparse.Namespace, workdir: Path) -> dict[str, Any]:
    ferretdb, rabbitmq = FerretDB(workdir), RabbitMQ(workdir)
    await asyncio.gather(ferretdb.start(), rabbitmq.start())
    sky = SkyDriverProcess(
        workdir,
        ferretdb.uri,
        rabbitmq,
        SKYDRIVER_MAX_RUNNING_SCANS=str(args.max_running),
        SKYDRIVER_BACKLOG_RUNNER_SHORT_DELAY_S="1",
        SKYDRIVER_INSTANCE_POLL_INTERVAL_S="1",
        SKYDRIVER_SCANNER_PROGRESS_INTERVAL_S="2",
        SKYDRIVER_SCANNER_RESULT_INTERVAL_S="2",
        SKYDRIVER_CLIENT_MANAGER_POLL_INTERVAL_S="1",
        SKYDRIVER_LOG_LEVEL="WARNING",
    )
    try:
        await sky.start()
        token = await asyncio.to_thread(sky.token)
        async with httpx.AsyncClient(
            base_url=sky.url, timeout=60, headers={"Authorization": f"Bearer {token}"}
        ) as rest:
            soak = Soak(args, rest)
            t0 = time.monotonic()
            samples = [await sample(sky, rabbitmq, t0) | {"what": "idle"}]
            start_sample: dict[str, Any] | None = None
            window_start = time.monotonic()
            window_end = window_start + args.minutes * 60
            next_sample = window_start + 60
            while time.monotonic() < window_end:
                while len(soak.pending) < args.pending:
                    await soak.submit()
                await asyncio.sleep(1)
                await soak.poll(window_open=True)
                if start_sample is None and len(soak.scan_wall_s) >= args.warmup_scans:
                    start_sample = await sample(sky, rabbitmq, t0) | {"what": "start"}
                    samples.append(start_sample)
                if time.monotonic() >= next_sample:
                    samples.append(await sample(sky, rabbitmq, t0) | {"what": "minute"})
                    next_sample += 60
            window_s = time.monotonic() - window_start
            drain_deadline = time.monotonic() + 600
            while soak.pending:
                if time.monotonic() > drain_deadline:
                    raise RuntimeError(f"scans did not finish: {sorted(soak.pending)}")
                await asyncio.sleep(1)
                await soak.poll(window_open=False)

            deadline = time.monotonic() + 120
            scans_dir = str(sky.state_dir.resolve() / "scans")
            while True:  # the instance watcher removes what the scans had on the broker
                left = {"processes": processes_mentioning(scans_dir), **await rabbitmq.leftovers()}
                if not any(left.values()) or time.monotonic() > deadline:
                    break
                await asyncio.sleep(1)
            end = await sample(sky, rabbitmq, t0) | {"what": "end"}
            samples.append(end)
            start = start_sample or samples[0]
    finally:
        sky.stop()
        rabbitmq.stop()
        ferretdb.stop()

    rss_growth = end["skydriver_rss_bytes"] - start["skydriver_rss_bytes"]
    broker_growth = end["rabbitmq_mem_used_bytes"] - start["rabbitmq_mem_used_bytes"]
    completed = len(soak.scan_wall_s)
    return {
        "provenance": {
            "command": "bench/soak.py " + " ".join(sys.argv[1:]),
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "python": platform.python_version(),
            "cpus": os.cpu_count(),
            "load_average_at_end": list(os.getloadavg()),
        },
        "settings": {
            "minutes": args.minutes,
            "nsides": args.nsides,
            "workers_per_scan": args.workers,
            "dummy_sleep_s": args.dummy_sleep_s,
            "max_running_scans": args.max_running,
            "pending": args.pending,
        },
        "scans_submitted": soak.seq,
        "scans_completed": completed,
        "throughput_scans_per_min": round(soak.completed_in_window / (window_s / 60), 2),
        "scan_wall_s": {
            "median": round(statistics.median(soak.scan_wall_s), 1),
            "p99": round(p99(soak.scan_wall_s), 1),
        },
        "submit_latency_ms": {
            "median": round(statistics.median(soak.submit_latency_s) * 1000, 1),
            "p99": round(p99(soak.submit_latency_s) * 1000, 1),
            "max": round(max(soak.submit_latency_s) * 1000, 1),
        },
        "memory": {
            "samples": samples,
            "skydriver_rss_growth_bytes": rss_growth,
            "rabbitmq_mem_used_growth_bytes": broker_growth,
            "bound_bytes": {"skydriver_rss": RSS_GROWTH_BOUND, "rabbitmq": BROKER_GROWTH_BOUND},
            "within_bound": rss_growth <= RSS_GROWTH_BOUND and broker_growth <= BROKER_GROWTH_BOUND,
        },
        "leftovers": left,
    }


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--minutes", type=float, default=10.0, help="how long scans are submitted")
    p.add_argument("--max-running", type=int, default=2, help="SKYDRIVER_MAX_RUNNING_SCANS")
    p.add_argument("--pending", type=int, default=4, help="scans submitted and not yet finished")
    p.add_argument("--workers", type=int, default=1, help="local workers per scan")
    p.add_argument("--nsides", default="1:0 2:12", help="nside progression of every scan")
    p.add_argument("--dummy-sleep-s", type=float, default=0.05, help="SKYSCAN_DUMMY_SLEEP_S")
    p.add_argument("--warmup-scans", type=int, default=2, help="scans before the start sample")
    p.add_argument("--output", type=Path, default=REPO / "bench" / "results" / "soak.json")
    args = p.parse_args()
    with tempfile.TemporaryDirectory(prefix="skydriver-soak-") as tmp:
        report = asyncio.run(run(args, Path(tmp)))
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=2) + "\n")
    summary = {k: v for k, v in report.items() if k not in ("memory", "provenance")}
    mem = report["memory"]
    print(json.dumps(summary, indent=2))
    print(
        f"SkyDriver RSS growth {mem['skydriver_rss_growth_bytes'] / 1e6:+.1f} MB, RabbitMQ mem_used "
        f"growth {mem['rabbitmq_mem_used_growth_bytes'] / 1e6:+.1f} MB (bound "
        f"{RSS_GROWTH_BOUND / 1e6:.0f} MB each): {'ok' if mem['within_bound'] else 'EXCEEDED'}"
    )
    ok = mem["within_bound"] and not any(report["leftovers"].values())
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
