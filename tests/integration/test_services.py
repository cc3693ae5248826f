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
