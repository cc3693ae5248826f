"""The `local` launcher: the scanner server and the client manager as supervised local processes.

- Each process gets exactly what `build_instance()` gives it, plus a few variables a program needs to run at
  all (`PASSTHROUGH_ENV`): nothing else of SkyDriver's environment (no database URI, no secrets).
- A process is known by its pid AND its start time (field 22 of `/proc/<pid>/stat`), so that after a
  restart, or once pids wrapped around, SkyDriver never signals a process that is not the scan's.
- What was started is also written to `<state dir>/scans/<id>/instance.json` at once: a SkyDriver that
  dies between starting an instance and recording it finds it there, and a second `start()` for the
  same scan adopts the running instance instead of starting another one (a launch is idempotent).
- How the scanner server was started (argv and environment, with the scan's credentials) is kept in
  `server.launch.json`, readable by SkyDriver's user only: a server that crashes is restarted (and
  resumes) also after SkyDriver itself was restarted.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

from skyscan_contract.instance import InstanceSpec, Process, build_instance

from .base import InstanceCredentials, Launcher, deployment

LOG = logging.getLogger(__name__)
STATE_VERSION = 2
STATE_FILE = "instance.json"
SERVER_LAUNCH_FILE = "server.launch.json"
SERVER_EXIT_FILE = "server.exit"
#: the exit code of a server that is gone without writing its exit file (SIGKILL, OOM): a crash
KILLED = 137
ROLES = ("server", "client-manager")
#: what local instance processes take from SkyDriver's own environment
PASSTHROUGH_ENV = (
    "PATH",
    "HOME",
    "LANG",
    "LC_ALL",
    "LC_CTYPE",
    "TZ",
    "TMPDIR",
    "PYTHONPATH",
    "VIRTUAL_ENV",
    "SSL_CERT_FILE",
    "SSL_CERT_DIR",
)


def process_start_time(pid: int) -> int | None:
    """When a process started (clock ticks since boot), or None if there is no such process."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # the command name (field 2) is in parentheses and may hold spaces: split after its last ')'
    fields = stat[stat.rindex(")") + 2 :].split()
    return int(fields[19])  # field 22 of the whole line


def _alive(pid: int, start_time: int | None) -> bool:
    """Whether `pid` is still the process that started at `start_time` (and not a zombie)."""
    if start_time is None or process_start_time(pid) != start_time:
        return False
    try:  # a zombie child still has its /proc entry: reap it if it is ours
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
        self._start_times: dict[str, int | None] = {}
        self._argv: dict[str, tuple[list[str], dict[str, str]]] = {}
        self._stopping = False
        self.restarts = 0

    def processes(self, spec: InstanceSpec, credentials: InstanceCredentials) -> dict[str, Process]:
        """What `start()` runs: the scanner server and the client manager, as the contract builds them
        for local processes (literal token and broker password; this instance's own directory)."""
        launch = build_instance(
            spec,
            deployment(
                self.settings,
                skydriver_token=credentials.skydriver_token,
                broker_address=credentials.broker.address,
                broker_auth=credentials.broker.password,
                startup_json=str(self.dir / "startup.json"),
                python=sys.executable,
                server_exit_code_file=str(self.dir / SERVER_EXIT_FILE),
            ),
        )
        return {"server": launch.server, "client-manager": launch.client_manager}

    def _spawn(self, role: str, argv: list[str], env: dict[str, str]) -> None:
        self._argv[role] = (argv, env)
        if role == "server":
            self._save_server_launch(argv, env)
            (self.dir / SERVER_EXIT_FILE).unlink(missing_ok=True)
        log = (self.dir / f"{role}.log").open("ab")
        try:
            proc = subprocess.Popen(
                argv, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
            )
        finally:
            log.close()
        self._procs[role] = proc
        self._pids[role] = proc.pid
        self._start_times[role] = process_start_time(proc.pid)
        self._save_state()
        LOG.info("scan %s: started %s (pid %d)", self.scan_id, role, proc.pid)

    def _save_server_launch(self, argv: list[str], env: dict[str, str]) -> None:
        path = self.dir / SERVER_LAUNCH_FILE
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w") as f:
            json.dump({"argv": argv, "env": env}, f)

    def _load_server_launch(self) -> None:
        path = self.dir / SERVER_LAUNCH_FILE
        if "server" in self._argv or not path.exists():
            return
        try:
            launch = json.loads(path.read_text())
            self._argv["server"] = (list(launch["argv"]), dict(launch["env"]))
        except (OSError, ValueError, KeyError) as e:
            LOG.warning("scan %s: unreadable %s (%s): no restarts", self.scan_id, path, e)

    def _save_state(self) -> None:
        tmp = self.dir / f".{STATE_FILE}.tmp"
        tmp.write_text(json.dumps(self.get_state()))
        tmp.replace(self.dir / STATE_FILE)

    async def start(self, spec: InstanceSpec, credentials: InstanceCredentials) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        self._load_state_file()
        if any(self._exit_code(role) is None for role in self._pids):
            LOG.warning("scan %s: its instance is already running; adopted", self.scan_id)
            return
        base = {k: v for k, v in os.environ.items() if k in PASSTHROUGH_ENV}
        for role, process in self.processes(spec, credentials).items():
            self._spawn(role, list(process.argv), {**base, **process.literal_env()})

    def _exit_code(self, role: str) -> int | None:
        proc = self._procs.get(role)
        if proc is not None:
            return proc.poll()
        pid = self._pids.get(role)
        if pid is not None and _alive(pid, self._start_times.get(role)):
            return None
        if role == "server" and pid is not None:  # not our child (after a restart): its exit file
            try:
                return int((self.dir / SERVER_EXIT_FILE).read_text())
            except (OSError, ValueError):
                return KILLED
        return 0  # gone, status unknown

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
        codes = {role: self._exit_code(role) for role in ROLES}
        if any(c is None for c in codes.values()):
            return None
        return codes["server"] or 0

    async def stop(self, now: bool = False) -> None:
        """SIGTERM, then SIGKILL, to the process groups of this instance's verified processes only."""
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
            "start_times": dict(self._start_times),
            "restarts": self.restarts,
            "dir": str(self.dir),
        }

    def load_state(self, state: dict[str, Any]) -> None:
        """From the manifest's record; what `start()` wrote to the instance's state file wins where the
        record has no pids (SkyDriver died before recording them). Pids without a start time (state
        version 1) cannot be verified and are treated as gone: never signalled."""
        if state.get("version", STATE_VERSION) != STATE_VERSION:
            LOG.warning(
                "scan %s: launcher state version %r has no start times; its pids are not trusted",
                self.scan_id,
                state.get("version"),
            )
        self._apply(state)
        if not self._pids:
            self._load_state_file()
        self._load_server_launch()

    def _apply(self, state: dict[str, Any]) -> None:
        self._pids = {k: int(v) for k, v in (state.get("pids") or {}).items()}
        times = state.get("start_times") or {}
        self._start_times = {k: (int(t) if t is not None else None) for k, t in times.items()}
        self.restarts = int(state.get("restarts") or 0)

    def _load_state_file(self) -> None:
        path = self.dir / STATE_FILE
        if self._pids or not path.exists():
            return
        try:
            state = json.loads(path.read_text())
        except (OSError, ValueError) as e:
            LOG.warning("scan %s: unreadable %s (%s); ignored", self.scan_id, path, e)
            return
        if state.get("version") == STATE_VERSION:
            self._apply(state)

    def exit_reason(self) -> str | None:
        return last_error_line(self.dir / "server.log")

    @property
    def log_paths(self) -> dict[str, Path]:
        return {role: self.dir / f"{role}.log" for role in ROLES}


#: how much of a log's end is searched for its last error
LOG_TAIL_BYTES = 16384
MAX_REASON_CHARS = 300
_ERROR_LINE = re.compile(r"error|exception|failed|traceback", re.IGNORECASE)
_CREDENTIALS = re.compile(r"(//[^:/@\s]*:)[^@/\s]*@")


def last_error_line(log: Path) -> str | None:
    """The last line of `log` that reports an error (else its last line), bounded and with any
    `scheme://user:password@` password masked; None if the log is missing or empty."""
    try:
        with log.open("rb") as f:
            f.seek(max(0, f.seek(0, os.SEEK_END) - LOG_TAIL_BYTES))
            tail = f.read().decode("utf-8", "replace")
    except OSError:
        return None
    lines = [line.strip() for line in tail.splitlines() if line.strip()]
    if not lines:
        return None
    errors = [
        line
        for line in lines
        if _ERROR_LINE.search(line) and line != "Traceback (most recent call last):"
    ]
    line = (errors or lines)[-1]
    return _CREDENTIALS.sub(r"\1***@", line)[:MAX_REASON_CHARS]
