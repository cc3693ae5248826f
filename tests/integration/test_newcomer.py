"""The newcomer's traps of the new-user trial (shared/reviews/new-user-trial-2026-12.md), each as a test: one
state directory whatever the current directory, 403s that say why, one-line errors that name the fix instead
of tracebacks, `--json` before the command, and why an instance failed in its status."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import subprocess
import sys
from pathlib import Path
from typing import Any

import httpx
import jwt
import pytest

from skydriver.app import SkyDriver
from skydriver.launch.local import last_error_line
from skydriver_client._cli import main as client_main
from skyscan_contract.errors import Forbidden
from skyscan_contract.instance import InstanceSpec
from tests.conftest import MONGODB_URI, headers, running_skydriver
from tests.doubles import HeldLauncher
from tests.helpers import scan_body, wait_for

SKYDRIVER = [sys.executable, "-m", "skydriver"]


def run_skydriver(
    *argv: str, cwd: Path, env: dict[str, str], timeout_s: float = 60
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [*SKYDRIVER, *argv],
        cwd=cwd,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )


def one_line_error(proc: subprocess.CompletedProcess[str]) -> str:
    """The process failed with one `skydriver: ...` line at the end of stderr (after any log lines) and no
    traceback; returns that line."""
    assert proc.returncode != 0, proc
    lines = proc.stderr.strip().splitlines()
    assert "Traceback" not in proc.stderr and lines[-1].startswith("skydriver: "), proc.stderr
    assert not any(line.startswith("skydriver: ") for line in lines[:-1]), proc.stderr
    return lines[-1]


# -- one state directory ---------------------------------------------------------------------------------
def test_tokens_issued_anywhere_use_the_one_signing_key(tmp_path: Path) -> None:
    """`skydriver token issue` in two directories signs with the same key, kept in the state directory
    ($XDG_STATE_HOME/skydriver), and leaves nothing in the current directory."""
    env = {"XDG_STATE_HOME": str(tmp_path / "state")}
    kids = []
    for name in ("a", "b"):
        cwd = tmp_path / name
        cwd.mkdir()
        proc = run_skydriver("token", "issue", "--role", "user", cwd=cwd, env=env)
        assert proc.returncode == 0, proc.stderr
        kids.append(jwt.get_unverified_header(proc.stdout.strip())["kid"])
        assert list(cwd.iterdir()) == []
    assert kids[0] == kids[1]
    assert (tmp_path / "state" / "skydriver" / "auth" / "signing-key.pem").is_file()
    moved = {"SKYDRIVER_STATE_DIR": str(tmp_path / "elsewhere")}  # configurable
    proc = run_skydriver("token", "issue", cwd=tmp_path / "a", env=moved)
    assert proc.returncode == 0, proc.stderr
    assert (tmp_path / "elsewhere" / "auth" / "signing-key.pem").is_file()
    assert jwt.get_unverified_header(proc.stdout.strip())["kid"] != kids[0]


# -- 403s that say why ---------------------------------------------------------------------------------
async def test_a_refusal_says_which_of_the_reasons_applies(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    """no token / malformed / bad signature / expired / wrong role / wrong scan; never the token itself;
    and the command line says what to do about it."""
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    from skydriver.auth import LocalKeyAuthenticator, Role

    issuer = skydriver.token_issuer
    assert issuer is not None
    scan_id = (await _post(skydriver, scan_body()))["scan_id"]
    stranger = LocalKeyAuthenticator(Ed25519PrivateKey.generate()).issue_token(
        Role.USER, subject="x", ttl_s=60
    )
    claims = jwt.decode(
        issuer.issue_token(Role.USER, subject="late", ttl_s=60),
        options={"verify_signature": False},
    )
    claims["exp"] = claims["iat"] - 60
    expired = jwt.encode(
        claims, issuer._private_key, algorithm="EdDSA", headers={"kid": issuer.key_id}
    )
    system = issuer.issue_token(Role.SYSTEM, subject="s", ttl_s=60)
    other_scan = issuer.issue_token(Role.SYSTEM, subject="s", ttl_s=60, scan_id=scan_id)
    cases: list[tuple[dict[str, str], str, str]] = [
        ({}, "GET", "authentication failed: no token"),
        ({"Authorization": "Bearer abc.def"}, "GET", "authentication failed: malformed token"),
        ({"Authorization": f"Bearer {stranger}"}, "GET", "authentication failed: bad signature"),
        ({"Authorization": f"Bearer {expired}"}, "GET", "authentication failed: expired token"),
        ({"Authorization": f"Bearer {system}"}, "DELETE", "authorization failed: wrong role"),
    ]
    async with httpx.AsyncClient(base_url=skydriver.settings.url) as anon:
        for header, method, want in cases:
            resp = await anon.request(method, f"/scan/{scan_id}", headers=header)
            assert (resp.status_code, resp.json()["error"]) == (403, want)
            assert all(t not in resp.text for t in (stranger, expired, system))
        # a scan instance's token on another scan's route
        other = (await _post(skydriver, scan_body()))["scan_id"]
        resp = await anon.get(
            f"/scan/{other}/manifest", headers={"Authorization": f"Bearer {other_scan}"}
        )
        assert resp.json()["error"] == "authorization failed: wrong scan"
    # the command line: the reason, then what to do, in its own words
    url = skydriver.settings.url
    code = await asyncio.to_thread(
        client_main, ["--url", url, "--token", stranger, "scan", "status", scan_id]
    )
    err = capsys.readouterr().err
    assert code == 4
    assert "authentication failed: bad signature" in err
    assert "skydriver token issue" in err and "SKYDRIVER_STATE_DIR" in err
    with pytest.raises(Forbidden) as info:  # the library raises it with its own hint
        from skydriver_client import Client

        await asyncio.to_thread(lambda: Client(url, token=expired).status(scan_id))
    assert info.value.message == "authentication failed: expired token"
    assert "issue a new token" in "".join(info.value.__notes__)


async def _post(sky: SkyDriver, body: dict[str, Any]) -> dict[str, Any]:
    async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as api:
        resp = await api.post("/scan", json=body)
        assert resp.status_code == 200, resp.text
        return dict(resp.json())


# -- one-line errors that name the fix --------------------------------------------------------------------
def test_serve_with_bad_settings_names_the_variable(tmp_path: Path) -> None:
    env = {"SKYDRIVER_STATE_DIR": str(tmp_path)}
    line = one_line_error(
        run_skydriver("serve", cwd=tmp_path, env={**env, "SKYDRIVER_PORT": "abc"})
    )
    assert "SKYDRIVER_PORT='abc'" in line and "integer" in line
    line = one_line_error(
        run_skydriver("serve", cwd=tmp_path, env={**env, "SKYDRIVER_CLUSTERS": "local"})
    )
    assert "SKYDRIVER_CLUSTERS" in line and "JSON" in line
    line = one_line_error(
        run_skydriver("serve", cwd=tmp_path, env={**env, "SKYDRIVER_AUTH_MODE": "ldap"})
    )
    assert "SKYDRIVER_AUTH_MODE='ldap'" in line


def test_serve_without_a_database_says_to_start_it(tmp_path: Path) -> None:
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        closed = s.getsockname()[1]
    env = {
        "SKYDRIVER_STATE_DIR": str(tmp_path),
        "SKYDRIVER_PORT": "0",
        "MONGODB_URI": f"mongodb://someone:hunter2@127.0.0.1:{closed}",
    }
    line = one_line_error(run_skydriver("serve", cwd=tmp_path, env=env))
    assert "make up" in line and "MONGODB_URI" in line and f":{closed}" in line
    assert "hunter2" not in line


def test_serve_on_a_taken_port_names_the_port(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        env = {
            "SKYDRIVER_STATE_DIR": str(tmp_path),
            "SKYDRIVER_HOST": "127.0.0.1",
            "SKYDRIVER_PORT": str(port),
            "MONGODB_URI": MONGODB_URI,
        }
        line = one_line_error(run_skydriver("serve", cwd=tmp_path, env=env))
    assert f"port {port}" in line and "--port" in line


# -- the command line as the README writes it ---------------------------------------------------------------
async def test_json_goes_before_the_command_too(
    skydriver: SkyDriver, capsys: pytest.CaptureFixture[str]
) -> None:
    scan_id = (await _post(skydriver, scan_body()))["scan_id"]
    token = headers(skydriver)["Authorization"].removeprefix("Bearer ")
    argv = ["--json", "--url", skydriver.settings.url, "--token", token]
    from skydriver.cli import main

    assert await asyncio.to_thread(main, [*argv, "scan", "status", scan_id]) == 0
    assert "scan_state" in json.loads(capsys.readouterr().out)
    # hints name commands and flags, not the library's methods and arguments
    assert await asyncio.to_thread(main, [*argv[1:], "scan", "result", scan_id]) == 3
    assert f"skydriver scan wait {scan_id}" in capsys.readouterr().err


# -- why an instance failed -------------------------------------------------------------------------------
class CrashedLauncher(HeldLauncher):
    """An instance whose scanner server exits with 2 at once, saying why in its log."""

    name = "crashed"

    async def start(self, spec: InstanceSpec, credentials: Any) -> None:
        pass

    async def poll(self) -> int | None:
        return 2

    def exit_reason(self) -> str | None:
        return "skymap-scanner: error: the broker at 127.0.0.1:5999 refused the connection"


async def test_a_failed_instance_says_why_in_status_events_and_the_cli(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    async with running_skydriver(tmp_path, {"crashed": CrashedLauncher}, launcher="crashed") as sky:
        scan_id = (await _post(sky, scan_body()))["scan_id"]
        async with httpx.AsyncClient(base_url=sky.settings.url, headers=headers(sky)) as api:

            async def ended() -> dict[str, Any] | None:
                status = (await api.get(f"/scan/{scan_id}/status")).json()
                instance = status.get("instance") or {}
                return status if instance.get("state") == "ended" else None

            status = await wait_for(ended, 30, "the instance to be recorded ended")
            assert status["instance"]["exit_code"] == 2
            assert "refused the connection" in status["instance"]["reason"]
            events = await _events(api, scan_id)  # the stream ends after its scan's "failed"
            assert events[-1][0] == "failed"
            assert "ended with 2: skymap-scanner: error" in events[-1][1]["reason"]
        token = headers(sky)["Authorization"].removeprefix("Bearer ")
        argv = ["--url", sky.settings.url, "--token", token, "scan", "status", scan_id]
        assert await asyncio.to_thread(client_main, argv) == 0
        assert "instance:  ended (exit 2): skymap-scanner: error" in capsys.readouterr().out


async def _events(api: httpx.AsyncClient, scan_id: str) -> list[tuple[str, dict[str, Any]]]:
    """(type, data) of a scan's events, from its event stream, which ends after the scan's last event."""
    events: list[tuple[str, dict[str, Any]]] = []
    async with api.stream("GET", f"/scan/{scan_id}/events") as resp:
        kind = ""
        async for line in resp.aiter_lines():
            if line.startswith("event:"):
                kind = line.removeprefix("event:").strip()
            elif line.startswith("data:"):
                events.append((kind, json.loads(line.removeprefix("data:"))))
    return events


def test_last_error_line_of_a_log(tmp_path: Path) -> None:
    log = tmp_path / "server.log"
    assert last_error_line(log) is None
    log.write_text(
        "INFO " + "x" * 100_000 + "\n"  # a huge early line: only the end of the log is read
        "2026-12-01 INFO starting\n"
        "Traceback (most recent call last):\n"
        '  File "x.py", line 1\n'
        "ConnectionError: amqp://skyscan:s3cret@127.0.0.1:5672/x: connection failed "
        + "y"
        * 500
        + "\n"
        "2026-12-01 INFO cleaning up\n"
    )
    line = last_error_line(log)
    assert line is not None and line.startswith("ConnectionError: amqp://skyscan:***@127.0.0.1")
    assert "s3cret" not in line and len(line) == 300
    log.write_text("only an info line\n")
    assert last_error_line(log) == "only an info line"
