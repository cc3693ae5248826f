"""Benchmark: how a scan scales with local workers. A fixed-cost reconstruction (`dummy` sleeping 0.2 s
on average per pixel, no CPU) over the 768 pixels of nside 8, at 1, 2, 4 and 8 workers, each a whole
`skymap-scanner scan` process. Efficiency = measured pixels/s ÷ ideal (workers / 0.2 s).

Run: `make up && .venv/bin/python bench/scaling.py` (about 5 minutes)."""

from __future__ import annotations

import os
from pathlib import Path

from whole_scan import timed_scan

REPO = Path(__file__).resolve().parents[1]
SLEEP_S = 0.2
PIXELS = 768


def scan(workers: int) -> float:
    env = {
        "SKYSCAN_DUMMY_SLEEP_S": str(SLEEP_S),
        "SKYSCAN_DUMMY_SEED": "1",
        "SKYSCAN_LOG": "WARNING",
    }
    wall, _ = timed_scan(REPO / "examples/demo_event.json", "dummy", ["8:0"], workers, env)
    return wall


def main() -> None:
    print(f"{PIXELS} pixels, dummy sleep {SLEEP_S} s (mean), {os.cpu_count()} cores")
    print("| workers | wall (s) | pixels/s | ideal pixels/s | efficiency |")
    print("|---|---|---|---|---|")
    for workers in (1, 2, 4, 8):
        wall = scan(workers)
        rate = PIXELS / wall
        ideal = workers / SLEEP_S
        print(
            f"| {workers} | {wall:.1f} | {rate:.2f} | {ideal:.1f} | {rate / ideal:.0%} |",
            flush=True,
        )


if __name__ == "__main__":
    main()
