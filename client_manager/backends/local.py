"""The `local` backend: workers as local processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path

from .base import WorkerBackend, WorkerStatus, Workforce

LOG = logging.getLogger(__name__)


class LocalBackend(WorkerBackend):
    name = "local"

    def __init__(
        self, startup_json: Path, log_dir: Path, max_replacements: int, stop_timeout_s: float
    ) -> None:
        self.startup_json = startup_json
        self.log_dir = log_dir
        self.max_replacements = max_replacements
        self.stop_timeout_s = stop_timeout_s
        self.workers: list[subprocess.Popen[bytes]] = []
        self.finished: list[int] = []  # exit codes of workers that ended
        self.errors: Counter[str] = Counter()
        self.replacements = 0
        self.n_requested = 0

    def worker_argv(self) -> list[str]:
        return [
            sys.executable,
            "-m",
            "skymap_scanner",
            "worker",
            "--client-startup-json",
            str(self.startup_json),
        ]

    def _spawn(self) -> None:
        index = len(self.workers) + len(self.finished)
        self.log_dir.mkdir(parents=True, exist_ok=True)
        log = (self.log_dir / f"worker-{index}.log").open("ab")
        try:
            proc = subprocess.Popen(
                self.worker_argv(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        finally:
            log.close()
        self.workers.append(proc)
        LOG.info("started worker %d (pid %d)", index, proc.pid)

    async def start(self, n_workers: int) -> None:
        self.n_requested += n_workers
        for _ in range(n_workers):
            self._spawn()

    async def add_workers(self, n: int) -> None:
        await self.start(n)

    async def poll(self) -> Workforce:
        alive: list[subprocess.Popen[bytes]] = []
        to_replace = 0
        for proc in self.workers:
            code = proc.poll()
            if code is None:
                alive.append(proc)
                continue
            self.finished.append(code)
            if code != 0:
                self.errors[f"worker exited with code {code}"] += 1
                if self.replacements < self.max_replacements:
                    to_replace += 1
                    self.replacements += 1
                    LOG.warning("worker pid %d died (code %d): replacing it", proc.pid, code)
                else:
                    LOG.error(
                        "worker pid %d died (code %d): replacement budget used up", proc.pid, code
                    )
        self.workers = alive
        for _ in range(to_replace):
            self._spawn()
        statuses: Counter[str] = Counter()
        statuses[WorkerStatus.RUNNING] = len(self.workers)
        statuses[WorkerStatus.FAILED] = sum(1 for c in self.finished if c != 0)
        statuses[WorkerStatus.GONE] = sum(1 for c in self.finished if c == 0)
        return Workforce(statuses=statuses, top_errors=self.errors, n_requested=self.n_requested)

    async def stop(self) -> None:
        for sig, wait_s in ((signal.SIGTERM, self.stop_timeout_s), (signal.SIGKILL, 5.0)):
            running = [p for p in self.workers if p.poll() is None]
            if not running:
                break
            for p in running:
                try:
                    os.killpg(p.pid, sig)
                except ProcessLookupError:
                    pass
            deadline = asyncio.get_running_loop().time() + wait_s
            while any(p.poll() is None for p in running):
                if asyncio.get_running_loop().time() > deadline:
                    break
                await asyncio.sleep(0.1)
        for p in self.workers:
            if p.poll() is not None:  # stopped by us, whatever its exit code: gone, not failed
                self.finished.append(0)
        self.workers = [p for p in self.workers if p.poll() is None]
