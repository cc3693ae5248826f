"""The worker against the real broker: a reconstruction far longer than the AMQP heartbeat keeps its
connection (the event loop answers heartbeats while the child process works), so the pixel is done once
and never redelivered."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import uuid
from pathlib import Path

from skymap_scanner.mq import (
    RECONNECT_INTERVAL_S,
    delete_queues,
    open_consumer,
    open_publisher,
    queue_depth,
)
from skymap_scanner.recos import StartupData
from skyscan_contract.messages import PixelResult, PixelTask, Seed
from skyscan_contract.queues import from_clients_queue, scan_queues, to_clients_queue
from skyscan_contract.settings import BrokerSettings
from tests.helpers import DEMO_EVENT


async def test_long_reconstruction_outlives_heartbeats(tmp_path: Path) -> None:
    import json

    scan_id = f"hb{uuid.uuid4().hex[:10]}"
    broker = BrokerSettings(broker_heartbeat_s=1)
    startup = StartupData(
        scan_id=scan_id,
        reco_algo="dummy",
        event=json.loads(DEMO_EVENT.read_text()),
        fallback_seed=Seed(x=0, y=0, z=0, t=0),
        reco_config={"dummy_sleep_s": 4.0, "dummy_seed": 1},  # 2-6 s, against a 1 s heartbeat
    )
    path = tmp_path / "startup.json"
    path.write_text(startup.model_dump_json())
    task = PixelTask(
        scan_id=scan_id,
        reco_algo="dummy",
        nside=1,
        pixel=5,
        posvar=0,
        ra=0,
        dec=0,
        seed=startup.fallback_seed,
    )
    async with open_publisher(broker, to_clients_queue(scan_id)) as pub:
        await pub.send(task)
    env = {
        **os.environ,
        "SKYSCAN_BROKER_HEARTBEAT_S": "1",
        "SKYSCAN_WORKER_IDLE_TIMEOUT_S": "8",
        "SKYSCAN_LOG": "DEBUG",
    }
    worker = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "skymap_scanner",
        "worker",
        "--client-startup-json",
        str(path),
        env=env,
        stderr=subprocess.PIPE,
    )
    try:
        results = []
        async with open_consumer(
            broker, from_clients_queue(scan_id), prefetch=10, timeout_s=20
        ) as sub:
            async for msg in sub.messages():
                results.append(PixelResult.model_validate(msg.data))
                await sub.ack(msg)
                break
        _, stderr = await asyncio.wait_for(worker.communicate(), 60)
        log = stderr.decode()
        assert worker.returncode == 0, log
        assert [r.reco_pixel_variation.pixel for r in results] == [5]
        assert results[0].runtime > 2.0  # really outlived several heartbeat intervals
        assert log.count("got pixel (1, 5, 0)") == 1  # taken once: the connection never dropped
        assert await queue_depth(broker, to_clients_queue(scan_id)) == 0
    finally:
        if worker.returncode is None:
            worker.kill()
        await delete_queues(broker, scan_queues(scan_id))


async def test_a_consumer_sees_its_queue_deleted() -> None:
    """How a worker learns that its scan ended: the server deletes the queues."""
    broker = BrokerSettings()
    name = to_clients_queue(f"gone{uuid.uuid4().hex[:10]}")
    async with open_consumer(broker, name, timeout_s=0.1) as sub:
        assert await sub.queue_exists()
        await delete_queues(broker, [name])
        assert not await sub.queue_exists()
        # and it stays deleted: the broker cancels the subscription, which must not bring the queue back
        # (aio-pika's robust consumers would re-declare it within a reconnect interval). Checking that
        # nothing happens needs a window of time: 3 reconnect intervals.
        deadline = asyncio.get_running_loop().time() + 3 * RECONNECT_INTERVAL_S
        while asyncio.get_running_loop().time() < deadline:
            assert await queue_depth(broker, name) is None
            await asyncio.sleep(0.2)
        assert not await sub.queue_exists()
