"""`skydriver dry-run SCAN_ID`: what the k8s launcher and worker backends would create for a stored scan,
printed without a cluster."""

from __future__ import annotations

import asyncio
import contextlib
import io

import httpx
import yaml

from skydriver.app import SkyDriver
from skydriver.cli import main
from skydriver.launch.k8s_objects import job_name
from tests.conftest import headers
from tests.helpers import scan_body


async def test_dry_run_prints_the_job_and_the_submit_description(
    api: httpx.AsyncClient, held_skydriver: SkyDriver
) -> None:
    body = scan_body(scanner_server_memory="3G", worker_memory="5G", priority=42)
    scan_id = (await api.post("/scan", json=body)).json()["scan_id"]
    token = headers(held_skydriver)["Authorization"].removeprefix("Bearer ")
    out = io.StringIO()

    def run() -> int:
        with contextlib.redirect_stdout(out):
            return main(
                ["dry-run", scan_id, "--url", held_skydriver.settings.url, "--token", token]
            )

    assert await asyncio.to_thread(run) == 0
    text = out.getvalue()
    k8s_part, condor_part = text.split("# HTCondor", 1) if "# HTCondor" in text else (text, "")
    docs = [d for d in yaml.safe_load_all(k8s_part) if d]
    jobs = {d["metadata"]["name"]: d for d in docs if d.get("kind") == "Job"}
    assert job_name(scan_id) in jobs
    scan_job = jobs[job_name(scan_id)]
    server = scan_job["spec"]["template"]["spec"]["containers"][0]
    assert server["resources"]["limits"]["memory"] in ("3000000000", "3G", 3000000000)
    assert server["image"].endswith(":4.2.1")  # "latest" resolved at submission
    assert token not in text  # secrets only by reference
    assert "container_image" in condor_part and "priority" in condor_part
