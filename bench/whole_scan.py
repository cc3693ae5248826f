"""Runs `skymap-scanner scan` as a whole process, the way the benchmarks time a scan."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

COMMAND = [sys.executable, "-m", "skymap_scanner", "scan"]


def scan_args(event_file: Path, reco_algo: str, nsides: list[str], workers: int) -> list[str]:
    """The arguments after `skymap-scanner scan` (without --output-dir)."""
    return [
        str(event_file),
        "--reco-algo",
        reco_algo,
        "--nsides",
        *nsides,
        "--workers",
        str(workers),
    ]


def timed_scan(
    event_file: Path, reco_algo: str, nsides: list[str], workers: int, env: dict[str, str]
) -> tuple[float, dict[str, Any]]:
    """(wall seconds of the whole process, the final result JSON); `env` is added to os.environ."""
    with tempfile.TemporaryDirectory() as out:
        args = [*COMMAND, *scan_args(event_file, reco_algo, nsides, workers), "--output-dir", out]
        start = time.perf_counter()
        subprocess.run(args, env={**os.environ, **env}, check=True, stdout=subprocess.DEVNULL)
        wall = time.perf_counter() - start
        return wall, json.loads(next(Path(out).glob("run*.json")).read_text())
