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

from .base import InstanceSpec, Launcher

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

    def _env(self, spec: InstanceSpec) -> dict[str, str]:
        s = self.settings
        env = dict(os.environ)
        env.update(
            {
                "SKYSCAN_SKYDRIVER_ADDRESS": s.url,
                "SKYSCAN_SKYDRIVER_SCAN_ID": self.scan_id,
                "SKYSCAN_SKYDRIVER_AUTH": spec.skydriver_token,
                "SKYSCAN_BROKER_TYPE": s.broker_type,
                "SKYSCAN_BROKER_ADDRESS": s.broker_address,
                "SKYSCAN_BROKER_AUTH": s.broker_auth.get_secret_value(),
                "SKYSCAN_KILL_SWITCH_CHECK_INTERVAL": str(s.scanner_kill_switch_check_interval_s),
                "SKYSCAN_PIXEL_TIMEOUT_S": str(spec.max_pixel_reco_time),
            }
        )
        if s.scanner_progress_interval_s is not None:
            env["SKYSCAN_PROGRESS_INTERVAL_SEC"] = str(s.scanner_progress_interval_s)
        if s.scanner_result_interval_s is not None:
            env["SKYSCAN_RESULT_INTERVAL_SEC"] = str(s.scanner_result_interval_s)
        return env

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

    async def start(self, spec: InstanceSpec) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        startup = self.dir / "startup.json"
        env = self._env(spec)
        server_env = {**env, **spec.scanner_server_env}
        self._spawn(
            "server",
            [
                sys.executable,
                "-m",
                "skymap_scanner",
                "server",
                *spec.server_args(),
                "--client-startup-json",
                str(startup),
            ],
            server_env,
        )
        self._spawn(
            "client-manager",
            [
                sys.executable,
                "-m",
                "client_manager",
                "--scan-id",
                self.scan_id,
                "--backend",
                "local",
                "--n-workers",
                str(spec.n_workers),
                "--client-startup-json",
                str(startup),
                "--poll-interval",
                str(self.settings.client_manager_poll_interval_s),
            ],
            env,
        )

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
