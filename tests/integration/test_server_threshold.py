"""The predictive-scanning threshold through the scanner server program: `skymap-scanner server
--predictive-scanning-threshold 0.65` (a real process, the real broker), with the test as its only worker.
After 8 of the 12 first-nside results (8/12 = 0.67 >= 0.65) the server sends the next nside's pixels, while 4
first-nside pixels are still out; without the threshold it would wait for all 12. And SkyDriver hands the
requested threshold to the scanner server it launches."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import uuid
from pathlib import Path

import httpx

from skymap_scanner.mq import (
    delete_queues,
    open_consumer,
    open_publisher,
)
from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation
from skyscan_contract.queues import from_clients_queue, to_clients_queue
from skyscan_contract.settings import BrokerSettings
from tests.doubles import HeldLauncher
from tests.helpers import DEMO_EVENT, scan_body, wait_for


def answer(task: PixelTask) -> PixelResult:
    reco = RecoPixelVariation(
        nside=task.nside,
        pixel=task.pixel,
        posvar=task.posvar,
        llh=float(task.pixel),
        e_in=0,
        e_tot=0,
        x=0,
        y=0,
        z=0,
        t=0,
        energy=0,
    )
    return PixelResult(reco_pixel_variation=reco, runtime=0.0, sent_at=task.sent_at)


async def test_the_server_refines_after_the_threshold_fraction_of_the_first_nside(
    tmp_path: Path,
) -> None:
    broker = BrokerSettings()
    scan_id = f"thr{uuid.uuid4().hex[:12]}"
    env = {
        **os.environ,
        "SKYSCAN_SKYDRIVER_SCAN_ID": scan_id,
        "SKYSCAN_MQ_TIMEOUT_FROM_CLIENTS": "60",
        "SKYSCAN_SKYDRIVER_ADDRESS": "",
    }
    for queue in (to_clients_queue(scan_id), from_clients_queue(scan_id)):
        async with open_publisher(broker, queue):  # declared before the server's and our consumers
            pass
    server = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "skymap_scanner",
        "server",
        "--reco-algo=dummy",
        "--nsides",
        "1:0",
        "2:12",
        "--predictive-scanning-threshold=0.65",
        "--real-event",
        f"--event-file={DEMO_EVENT}",
        f"--output-dir={tmp_path / 'out'}",
        f"--client-startup-json={tmp_path / 'startup.json'}",
        env=env,
        stderr=asyncio.subprocess.PIPE,
    )
    first: list[PixelTask] = []
    refinement: list[PixelTask] = []
    try:
        async with (
            open_consumer(broker, to_clients_queue(scan_id), prefetch=500, timeout_s=20) as tasks,
            open_publisher(broker, from_clients_queue(scan_id)) as results,
        ):
            async for msg in tasks.messages():  # the whole first nside, sent at once
                first.append(PixelTask.model_validate(msg.data))
                await tasks.ack(msg)
                if len(first) == 12:
                    break
            for task in first[:8]:
                await results.send(answer(task))
            async for msg in tasks.messages():  # the next pixels, or nothing within the timeout
                refinement.append(PixelTask.model_validate(msg.data))
                break
    finally:
        if server.returncode is None:
            server.send_signal(signal.SIGTERM)
        _, stderr = await asyncio.wait_for(server.communicate(), 30)
        await delete_queues(broker, [to_clients_queue(scan_id), from_clients_queue(scan_id)])
    log = stderr.decode()[-3000:]
    assert sorted((t.nside, t.pixel) for t in first) == [(1, p) for p in range(12)], log
    assert refinement, f"no nside-2 pixel after 8 of 12 results: the threshold was ignored\n{log}"
    assert refinement[0].nside == 2


async def test_skydriver_hands_the_requested_threshold_to_the_scanner_server(
    api: httpx.AsyncClient,
) -> None:
    """What the launcher is asked to start (its spec's server arguments) carries the request's threshold."""
    resp = await api.post("/scan", json=scan_body(predictive_scanning_threshold=0.65))
    assert resp.status_code == 200, resp.text
    scan_id = resp.json()["scan_id"]

    async def launched() -> list[str] | None:
        specs = [s for s in HeldLauncher.started if s.scan_id == scan_id]
        return specs[0].server_args() if specs else None

    args = await wait_for(launched, 30, "the launcher to be asked to start the scan")
    assert args[args.index("--predictive-scanning-threshold") + 1] == "0.65"
    informational = resp.json()["scanner_server_args"].split()  # the original's manifest field
    assert informational[informational.index("--predictive-scanning-threshold") + 1] == "0.65"
