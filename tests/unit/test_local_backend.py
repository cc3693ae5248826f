"""The local worker backend counts what it stops as gone, and only what died on its own as failed."""

from __future__ import annotations

import sys
from pathlib import Path

from client_manager.backends.base import WorkerStatus
from client_manager.backends.local import LocalBackend

#: exits 3 on SIGTERM, as a worker interrupted mid-pixel may
WAITS = "import signal, sys, time; signal.signal(signal.SIGTERM, lambda *a: sys.exit(3)); time.sleep(60)"


class Scripted(LocalBackend):
    def __init__(self, tmp_path: Path, code: str) -> None:
        super().__init__(tmp_path / "startup.json", tmp_path, max_replacements=0, stop_timeout_s=10)
        self.code = code

    def worker_argv(self) -> list[str]:
        return [sys.executable, "-c", self.code]


async def test_workers_stopped_at_the_end_are_gone_not_failed(tmp_path: Path) -> None:
    backend = Scripted(tmp_path, WAITS)
    await backend.start(2)
    assert (await backend.poll()).statuses[WorkerStatus.RUNNING] == 2
    await backend.stop()
    workforce = await backend.poll()
    assert workforce.statuses[WorkerStatus.GONE] == 2
    assert workforce.statuses[WorkerStatus.FAILED] == 0
    assert not workforce.top_errors


async def test_a_worker_that_dies_on_its_own_is_failed(tmp_path: Path) -> None:
    backend = Scripted(tmp_path, "import sys; sys.exit(1)")
    await backend.start(1)
    backend.workers[0].wait(30)
    workforce = await backend.poll()
    assert workforce.statuses[WorkerStatus.FAILED] == 1
    assert workforce.top_errors == {"worker exited with code 1": 1}


def test_a_stopped_client_manager_does_not_wait_for_a_server_that_never_starts(
    tmp_path: Path,
) -> None:
    """The scan was deleted before its server wrote the startup data (the server then never does): the
    launcher's SIGTERM ends the client manager at once, not after its startup timeout (before, it
    waited out SIGTERM until SIGKILL, which a SkyDriver stopping meanwhile never sent)."""
    import os
    import signal
    import subprocess
    import time

    proc = subprocess.Popen(
        [sys.executable, "-m", "client_manager", "--scan-id", "s", "--backend", "local",
         "--n-workers", "1", "--client-startup-json", str(tmp_path / "never.json")],
        env={**os.environ, "CLIENT_MANAGER_STARTUP_TIMEOUT_S": "600"},
        stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert proc.stderr is not None
    deadline = time.monotonic() + 60
    while not _has_signal_handler(proc.pid) and time.monotonic() < deadline:
        time.sleep(0.05)
    proc.send_signal(signal.SIGTERM)
    assert proc.wait(10) == 0, proc.stderr.read()[-2000:]
    assert not (tmp_path / "workers").exists()  # no worker was started


def _has_signal_handler(pid: int) -> bool:
    """Whether the process catches SIGTERM yet (its asyncio handler is installed)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("SigCgt:"):
            return bool(int(line.split()[1], 16) & (1 << (15 - 1)))
    return False
