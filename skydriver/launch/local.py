"""The `local` launcher: the scanner server and the client manager as supervised local processes."""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from skyscan_contract.instance import InstanceSpec, Process, build_instance

from .base import Launcher, deployment

LOG = logging.getLogger(__name__)
STATE_VERSION = 1


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a zombie child still answers kill(0): reap it if it is ours
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


class LocalLauncher(Launcher):
    name = "local"

    def __init__(self, settings: Any, scan_id: str) -> None:
        super().__init__(settings, scan_id)
        self.dir = Path(settings.state_dir).resolve() / "scans" / scan_id
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pids: dict[str, int] = {}
        self._argv: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._stopping = False
        self.restarts = 0

    def _spawn(self, role: str, argv: list[str], env: dict[str, str]) -> None:
        self._argv[role] = (argv, env)
        log = (self.dir / f"{role}.log").open("ab")
        try:
            proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self._procs[role] = proc
        self._pids[role] = proc.pid
        LOG.info("scan %s: started %s (pid %d)", self.scan_id, role, proc.pid)

    def processes(self, spec: InstanceSpec, skydriver_token: str) -> dict[str, Process]:
        """What `start()` runs: the scanner server and the client manager, as the contract builds them
        for local processes (literal token and broker password; this instance's own directory)."""
        launch = build_instance(
            spec,
            deployment(
                self.settings,
                skydriver_token=skydriver_token,
                broker_auth=self.settings.broker_auth.get_secret_value(),
                startup_json=str(self.dir / "startup.json"),
                python=sys.executable,
            ),
        )
        return {"server": launch.server, "client-manager": launch.client_manager}

    async def start(self, spec: InstanceSpec, skydriver_token: str) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        for role, process in self.processes(spec, skydriver_token).items():
            self._spawn(role, list(process.argv), {**os.environ, **process.literal_env()})

    def _exit_code(self, role: str) -> int | None:
        proc = self._procs.get(role)
        if proc is not None:
            return proc.poll()
        pid = self._pids.get(role)
        if pid is None or not _alive(pid):
            return 0  # gone, status unknown (not our child after a restart)
        return None

    async def poll(self) -> int | None:
        """None while the instance lives. A scanner server that crashed (non-zero exit) is restarted,
        at most `instance_max_server_restarts` times: it resumes from the result SkyDriver holds."""
        server_code = self._exit_code("server")
        if (
            server_code not in (None, 0)
            and not self._stopping
            and "server" in self._argv
            and self.restarts < self.settings.instance_max_server_restarts
        ):
            self.restarts += 1
            LOG.warning(
                "scan %s: scanner server exited with %s; restart %d/%d",
                self.scan_id,
                server_code,
                self.restarts,
                self.settings.instance_max_server_restarts,
            )
            self._spawn("server", *self._argv["server"])
            return None
        codes = {role: self._exit_code(role) for role in ("server", "client-manager")}
        if any(c is None for c in codes.values()):
            return None
        return codes["server"] or 0

    async def stop(self, now: bool = False) -> None:
        self._stopping = True
        steps = [(signal.SIGKILL, 5.0)] if now else [(signal.SIGTERM, 15.0), (signal.SIGKILL, 5.0)]
        for sig, wait_s in steps:
            pending = [r for r in self._pids if self._exit_code(r) is None]
            if not pending:
                return
            for role in pending:
                try:
                    os.killpg(self._pids[role], sig)
                except ProcessLookupError:
                    pass
            deadline = asyncio.get_running_loop().time() + wait_s
            while asyncio.get_running_loop().time() < deadline:
                if all(self._exit_code(r) is not None for r in pending):
                    return
                await asyncio.sleep(0.1)

    def get_state(self) -> dict[str, Any]:
        return {
            "version": STATE_VERSION,
            "launcher": self.name,
            "pids": dict(self._pids),
            "dir": str(self.dir),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        self._pids = {k: int(v) for k, v in (state.get("pids") or {}).items()}

    @property
    def log_paths(self) -> dict[str, Path]:
        return {role: self.dir / f"{role}.log" for role in ("server", "client-manager")}
