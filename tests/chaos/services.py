"""Private copies of everything a scan needs, on free ports with their own data: FerretDB, a RabbitMQ node,
and SkyDriver as a whole process (`python -m skydriver serve`). The chaos test kills and restarts them
freely, and the soak benchmark measures their memory, without touching the shared services of
`scripts/services.sh` (which other developers use at the same time).

The RabbitMQ node runs as the calling user from RabbitMQ's own start script (not the Debian wrapper, which
switches to the `rabbitmq` user), with its own node name, Erlang distribution port, Erlang cookie (a HOME
of its own), Mnesia and log directories; everything it listens on is bound to 127.0.0.1. It registers
with the machine's epmd, which the shared node already runs (or which it starts)."""

from __future__ import annotations

import asyncio
import os
import signal
import socket
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

import httpx

REPO = Path(__file__).resolve().parents[2]
FERRETDB_BINARY = REPO / ".state" / "bin" / "ferretdb"
RABBITMQ_SERVER = Path("/usr/lib/rabbitmq/bin/rabbitmq-server")
START_TIMEOUT_S = 120.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def port_open(port: int) -> bool:
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex(("127.0.0.1", port)) == 0


async def _until(check: Any, timeout_s: float, what: str, proc: subprocess.Popen[bytes]) -> None:
    """Poll `check()` (sync or async) until true; fail if the deadline passes or `proc` exited."""
    deadline = time.monotonic() + timeout_s
    while True:
        value = check()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if proc.poll() is not None:
            raise RuntimeError(f"{what}: the process exited with code {proc.returncode}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"{what}: not ready within {timeout_s:g}s")
        await asyncio.sleep(0.2)


def _spawn(
    argv: list[str], log: Path, env: dict[str, str] | None = None
) -> subprocess.Popen[bytes]:
    """Start a process in a session of its own (a SIGKILL of it leaves nothing else hit), output to `log`."""
    with log.open("ab") as out:
        return subprocess.Popen(
            argv, env=env, stdout=out, stderr=subprocess.STDOUT, start_new_session=True
        )


def _stop(proc: subprocess.Popen[bytes] | None, sig: int, timeout_s: float) -> None:
    """Signal a process we started and wait for it (its whole session is SIGKILLed if it does not exit)."""
    if proc is None or proc.poll() is not None:
        return
    proc.send_signal(sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


class FerretDB:
    """FerretDB (SQLite backend) on a free port with its own data directory; survives a SIGKILL."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "ferretdb"
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def uri(self) -> str:
        return f"mongodb://127.0.0.1:{self.port}"

    async def start(self) -> None:
        if not FERRETDB_BINARY.exists():
            raise RuntimeError(f"{FERRETDB_BINARY} is missing: run scripts/setup.sh first")
        (self.dir / "data").mkdir(parents=True, exist_ok=True)
        argv = [
            str(FERRETDB_BINARY),
            "--handler=sqlite",
            f"--sqlite-url=file:{self.dir / 'data'}/",
            f"--state-dir={self.dir}",
            f"--listen-addr=127.0.0.1:{self.port}",
            "--debug-addr=-",
            "--telemetry=disable",
            "--log-level=WARN",
        ]
        self.proc = _spawn(argv, self.dir / "ferretdb.log")
        await _until(lambda: port_open(self.port), START_TIMEOUT_S, "FerretDB", self.proc)

    def kill(self) -> None:
        _stop(self.proc, signal.SIGKILL, 30)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 30)


class RabbitMQ:
    """A RabbitMQ node of our own (AMQP, management API and Erlang distribution on free 127.0.0.1 ports);
    its vhosts, users and durable queues survive a restart (same node name and Mnesia directory)."""

    def __init__(self, workdir: Path) -> None:
        self.dir = workdir / "rabbitmq"
        self.port = free_port()
        self.management_port = free_port()
        self.dist_port = free_port()
        self.node = f"skydriver-chaos-{uuid.uuid4().hex[:8]}@localhost"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def address(self) -> str:
        return f"localhost:{self.port}"

    @property
    def management_url(self) -> str:
        return f"http://127.0.0.1:{self.management_port}"

    def _env(self) -> dict[str, str]:
        for sub in ("home", "mnesia", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        conf = self.dir / "rabbitmq.conf"
        conf.write_text(
            f"listeners.tcp.1 = 127.0.0.1:{self.port}\n"
            "management.tcp.ip = 127.0.0.1\n"
            f"management.tcp.port = {self.management_port}\n"
        )
        (self.dir / "enabled_plugins").write_text("[rabbitmq_management].\n")
        return {
            "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
            "HOME": str(self.dir / "home"),  # its own Erlang cookie
            "RABBITMQ_NODENAME": self.node,
            "RABBITMQ_NODE_IP_ADDRESS": "127.0.0.1",
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.dir / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.dir / "log"),
            "RABBITMQ_CONFIG_FILE": str(conf),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.dir / "enabled_plugins"),
            "ERL_EPMD_ADDRESS": "127.0.0.1",
            "RABBITMQ_SERVER_ADDITIONAL_ERL_ARGS": "-kernel inet_dist_use_interface {127,0,0,1}",
        }

    async def start(self) -> None:
        if not RABBITMQ_SERVER.exists():
            raise RuntimeError(f"{RABBITMQ_SERVER} is missing: run scripts/setup.sh first")
        self.proc = _spawn([str(RABBITMQ_SERVER)], self.dir / "server.log", self._env())
        await _until(lambda: port_open(self.port), START_TIMEOUT_S, "RabbitMQ", self.proc)
        await _until(self._management_up, START_TIMEOUT_S, "RabbitMQ management", self.proc)

    async def _management_up(self) -> bool:
        try:
            nodes = await self.get("/api/nodes")
        except httpx.HTTPError:
            return False
        return bool(nodes) and bool(nodes[0].get("running")) and "mem_used" in nodes[0]

    def stop(self) -> None:
        """A clean stop (its start script runs `rabbitmqctl stop` on SIGTERM)."""
        _stop(self.proc, signal.SIGTERM, 90)

    async def restart(self) -> None:
        await asyncio.to_thread(self.stop)
        await self.start()

    async def get(self, path: str) -> Any:
        """GET on the management API as the administrator (guest, allowed from 127.0.0.1)."""
        async with httpx.AsyncClient(
            base_url=self.management_url, auth=("guest", "guest"), timeout=30
        ) as client:
            resp = await client.get(path)
            resp.raise_for_status()
            return resp.json()

    async def memory_bytes(self) -> int:
        nodes = await self.get("/api/nodes")
        return int(nodes[0]["mem_used"])

    async def leftovers(self) -> dict[str, list[str]]:
        """Queues, vhosts and users beyond the node's own (`/`, `guest`)."""
        queues = await self.get("/api/queues?columns=vhost,name")
        vhosts = await self.get("/api/vhosts?columns=name")
        users = await self.get("/api/users")
        return {
            "queues": sorted(f"{q['vhost']}/{q['name']}" for q in queues),
            "vhosts": sorted(v["name"] for v in vhosts if v["name"] != "/"),
            "users": sorted(u["name"] for u in users if u["name"] != "guest"),
        }


class SkyDriverProcess:
    """`python -m skydriver serve` on a fixed port (scan instances keep the URL they were given, so a
    restarted SkyDriver takes the same one), against the given FerretDB and RabbitMQ."""

    def __init__(
        self,
        workdir: Path,
        mongodb_uri: str,
        broker: RabbitMQ,
        public_url: str = "",
        **settings: str,
    ) -> None:
        self.dir = workdir / "skydriver"
        self.dir.mkdir(parents=True, exist_ok=True)
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0
        self.env = {
            **{k: v for k, v in os.environ.items() if not k.startswith("SKYDRIVER_")},
            "SKYDRIVER_HOST": "127.0.0.1",
            "SKYDRIVER_PORT": str(self.port),
            "SKYDRIVER_PUBLIC_URL": public_url,
            "MONGODB_URI": mongodb_uri,
            "SKYDRIVER_MONGODB_DATABASE": "skydriver",
            "SKYDRIVER_STATE_DIR": str(self.dir / "state"),
            "SKYDRIVER_BROKER_ADDRESS": broker.address,
            "SKYDRIVER_BROKER_MANAGEMENT_URL": broker.management_url,
            "SKYDRIVER_LOG_LEVEL": "INFO",
            **settings,
        }

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def state_dir(self) -> Path:
        return self.dir / "state"

    async def start(self) -> None:
        argv = [sys.executable, "-m", "skydriver", "serve"]
        self.proc = _spawn(argv, self.dir / "skydriver.log", self.env)
        self.starts += 1
        await _until(self._healthy, START_TIMEOUT_S, "SkyDriver", self.proc)

    async def _healthy(self) -> bool:
        try:
            async with httpx.AsyncClient(timeout=5) as client:
                return (await client.get(f"{self.url}/healthz")).status_code == 200
        except httpx.HTTPError:
            return False

    def kill(self) -> None:
        """SIGKILL: its scan instances live on (they run in sessions of their own)."""
        _stop(self.proc, signal.SIGKILL, 30)

    def stop(self) -> None:
        _stop(self.proc, signal.SIGTERM, 60)

    def token(self, role: str = "user") -> str:
        out = subprocess.run(
            [sys.executable, "-m", "skydriver", "token", "issue", "--role", role, "--ttl", "86400"],
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return out.stdout.strip()

    def rss_bytes(self) -> int:
        """Resident memory of the SkyDriver process (VmRSS)."""
        assert self.proc is not None
        for line in Path(f"/proc/{self.proc.pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
        raise RuntimeError("no VmRSS")


def processes_mentioning(text: str) -> list[int]:
    """Live processes whose command line or environment contains `text` (the scans' state directory:
    scanner servers, client managers and workers all carry it)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit() or int(entry.name) == os.getpid():
            continue
        try:
            stat = (entry / "stat").read_text()
            if stat.rsplit(")", 1)[1].split()[0] == "Z":
                continue
            blob = (entry / "cmdline").read_bytes() + (entry / "environ").read_bytes()
        except OSError:
            continue
        if text.encode() in blob:
            found.append(int(entry.name))
    return found
