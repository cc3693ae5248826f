"""The client library and its `skydriver scan ...` commands install on their own: a physicist's venv gets
httpx and pydantic, not the service's kubernetes, htcondor, healpy or matplotlib — and the command works
against a running SkyDriver."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path

import httpx

from skydriver.app import SkyDriver
from tests.conftest import headers
from tests.helpers import scan_body

REPO = Path(__file__).resolve().parents[2]
SERVER_ONLY = (
    "kubernetes",
    "htcondor",
    "htcondor2",
    "healpy",
    "matplotlib",
    "tornado",
    "pymongo",
    "skydriver",
    "skymap_scanner",
    "client_manager",
)


def _install_client(root: Path) -> Path:
    """A fresh venv with only the client package (and the contract it is written against)."""
    for package in ("skyscan_contract", "skydriver_client"):  # build from copies: no egg-info here
        shutil.copytree(
            REPO / package, root / "src" / package, ignore=shutil.ignore_patterns("__pycache__")
        )
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=120)
    subprocess.run(
        [
            str(venv / "bin" / "pip"),
            "install",
            "--quiet",
            "--disable-pip-version-check",
            str(root / "src" / "skyscan_contract"),
            str(root / "src" / "skydriver_client"),
        ],
        check=True,
        timeout=600,
    )
    return venv


async def test_the_client_installs_alone_and_talks_to_skydriver(
    tmp_path: Path, api: httpx.AsyncClient, held_skydriver: SkyDriver
) -> None:
    venv = await asyncio.to_thread(_install_client, tmp_path)
    python = str(venv / "bin" / "python")
    probe = "import importlib.util as u, json, sys; print(json.dumps([m for m in sys.argv[1:] if u.find_spec(m)]))"
    found = await asyncio.to_thread(
        subprocess.run,
        [python, "-c", probe, *SERVER_ONLY],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        check=True,
    )
    assert json.loads(found.stdout) == []

    scan_id = (await api.post("/scan", json=scan_body())).json()["scan_id"]
    token = headers(held_skydriver)["Authorization"].removeprefix("Bearer ")
    argv = [str(venv / "bin" / "skydriver"), "scan", "status", scan_id]
    argv += ["--url", held_skydriver.settings.url, "--token", token, "--json"]
    done = await asyncio.to_thread(
        subprocess.run, argv, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 0, done.stderr
    status = json.loads(done.stdout)
    assert status["scan_state"].startswith("PENDING__")
    assert status["is_deleted"] is False

    missing = [str(venv / "bin" / "skydriver"), "scan", "status", "0" * 32]
    missing += ["--url", held_skydriver.settings.url, "--token", token]
    done = await asyncio.to_thread(
        subprocess.run, missing, cwd=tmp_path, capture_output=True, text=True, timeout=60
    )
    assert done.returncode == 3, done.stderr  # not found, as the CLI documents
