"""`scripts/services.sh`: a port already taken gives a clear message, not a hang."""

from __future__ import annotations

import os
import socket
import subprocess
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]


def test_taken_port_is_reported(tmp_path: Path) -> None:
    state = tmp_path / "state"
    (state / "bin").mkdir(parents=True)
    (state / "bin" / "ferretdb").symlink_to((REPO / ".state" / "bin" / "ferretdb").resolve())
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", 0))
        squatter.listen()
        port = squatter.getsockname()[1]
        env = {**os.environ, "SERVICES_STATE_DIR": str(state), "FERRETDB_PORT": str(port)}
        proc = subprocess.run(
            ["bash", str(REPO / "scripts" / "services.sh"), "up"],
            env=env,
            capture_output=True,
            text=True,
            timeout=60,
        )
    assert proc.returncode != 0
    assert f"port {port} is already taken by another program" in proc.stderr
    assert "FERRETDB_PORT" in proc.stderr  # says how to fix it


def test_up_is_idempotent() -> None:
    proc = subprocess.run(
        ["bash", str(REPO / "scripts" / "services.sh"), "up"],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert "already running" in proc.stderr


def listening_addresses() -> dict[int, set[str]]:
    """Port -> the addresses it is listened on, for every TCP listener of this machine (/proc/net)."""
    out: dict[int, set[str]] = {}
    for table, family in (("tcp", socket.AF_INET), ("tcp6", socket.AF_INET6)):
        for line in Path(f"/proc/net/{table}").read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            if state != "0A":  # LISTEN
                continue
            addr_hex, port_hex = local.split(":")
            raw = bytes.fromhex(addr_hex)
            # /proc prints each 32-bit word in host (little-endian) order
            packed = b"".join(raw[i : i + 4][::-1] for i in range(0, len(raw), 4))
            out.setdefault(int(port_hex, 16), set()).add(socket.inet_ntop(family, packed))
    return out


def test_services_listen_on_the_loopback_only() -> None:
    """FerretDB has no authentication and RabbitMQ's guest is an administrator here: neither, nor the
    broker's management API, Erlang distribution port or epmd, may be reachable from another machine."""
    ports = {
        "FerretDB": int(os.environ.get("FERRETDB_PORT", "27017")),
        "RabbitMQ": int(os.environ.get("RABBITMQ_PORT", "5672")),
        "RabbitMQ management": int(os.environ.get("RABBITMQ_MANAGEMENT_PORT", "15672")),
        "Erlang distribution": int(os.environ.get("RABBITMQ_PORT", "5672")) + 20000,
        "epmd": 4369,
    }
    listening = listening_addresses()
    for name, port in ports.items():
        assert port in listening, f"{name} does not listen on {port}"
        assert listening[port] <= {"127.0.0.1", "::1"}, f"{name} listens on {listening[port]}"
