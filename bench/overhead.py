"""Benchmark: scanner overhead. A full `8:0 64:12 512:24` dummy scan with sleep 0 (2 local workers), timed
end to end as a whole process, against pushing and pulling the same messages through the same broker and
client library in the same run.

Run: `make up && .venv/bin/python bench/overhead.py` (prints a table; takes about a minute)."""

from __future__ import annotations

import asyncio
import os
import statistics
import time
import uuid
from pathlib import Path

from whole_scan import timed_scan

from skymap_scanner.mq import delete_queues, open_consumer, open_publisher
from skyscan_contract.messages import PixelResult, PixelTask, RecoPixelVariation, Seed
from skyscan_contract.settings import BrokerSettings

REPO = Path(__file__).resolve().parents[1]


def run_scan(workers: int) -> tuple[float, int]:
    env = {"SKYSCAN_DUMMY_SLEEP_S": "0", "SKYSCAN_DUMMY_SEED": "1", "SKYSCAN_LOG": "WARNING"}
    wall, result = timed_scan(
        REPO / "examples/demo_event.json", "dummy", ["8:0", "64:12", "512:24"], workers, env
    )
    return wall, sum(len(v["data"]) for v in result.values())


def task(i: int) -> PixelTask:
    return PixelTask(
        scan_id="bench",
        reco_algo="dummy",
        nside=512,
        pixel=i,
        posvar=0,
        ra=1.0,
        dec=0.5,
        seed=Seed(x=1.0, y=2.0, z=3.0, t=4.0),
        sent_at=time.time(),
    )


def result(i: int) -> PixelResult:
    reco = RecoPixelVariation(
        nside=512,
        pixel=i,
        posvar=0,
        llh=0.5,
        e_in=0.1,
        e_tot=0.2,
        x=1.0,
        y=2.0,
        z=3.0,
        t=4.0,
        energy=5.0,
    )
    return PixelResult(reco_pixel_variation=reco, runtime=0.001, worker="bench")


async def push_pull(broker: BrokerSettings, messages: list, prefetch: int) -> float:
    name = f"bench-{uuid.uuid4().hex[:8]}"
    start = time.perf_counter()
    async with open_publisher(broker, name) as pub:
        await pub.send_many(messages)
    got = 0
    async with open_consumer(broker, name, prefetch=prefetch, timeout_s=5) as sub:
        async for msg in sub.messages():
            await sub.ack(msg)
            got += 1
            if got == len(messages):
                break
    wall = time.perf_counter() - start
    await delete_queues(broker, [name])
    assert got == len(messages)
    return wall


async def mqclient_push_pull(n: int) -> float:
    """The same task messages through oms-mqclient's own RabbitMQ client (for comparison)."""
    import mqclient

    name = f"bench-mq-{uuid.uuid4().hex[:8]}"
    queue = mqclient.Queue("rabbitmq", address="localhost", name=name, prefetch=1, timeout=2)
    data = [task(i).model_dump(mode="json") for i in range(n)]
    start = time.perf_counter()
    async with queue.open_pub() as pub:
        for d in data:
            await pub.send(d)
    got = 0
    async with queue.open_sub_manual_acking() as sub:
        async for msg in sub.iter_messages():
            await sub.ack(msg)
            got += 1
            if got == n:
                break
    wall = time.perf_counter() - start
    await delete_queues(BrokerSettings(), [name])
    return wall


async def baselines(n: int) -> dict[str, float]:
    broker = BrokerSettings()
    tasks, results = [task(i) for i in range(n)], [result(i) for i in range(n)]
    return {
        "tasks": await push_pull(broker, tasks, prefetch=1),
        "results": await push_pull(broker, results, prefetch=300),
    }


def main() -> None:
    repeats = int(os.environ.get("BENCH_REPEATS", "3"))
    scans, tasks, results = [], [], []
    for _ in range(repeats):  # interleaved, so that both see the same machine state
        wall, n = run_scan(workers=2)
        base = asyncio.run(baselines(n))
        scans.append(wall)
        tasks.append(base["tasks"])
        results.append(base["results"])
    scan_wall, t, r = statistics.median(scans), statistics.median(tasks), statistics.median(results)
    print(f"pixels reconstructed per scan: {n} (dummy seed 1); medians of {repeats} runs")
    print(f"full dummy scan (sleep 0, 2 workers), whole process: {scan_wall:6.2f} s")
    print(f"push+pull {n} task messages (1 producer, 1 consumer, prefetch 1):     {t:6.2f} s")
    print(f"push+pull {n} result messages (1 producer, 1 consumer, prefetch 300): {r:6.2f} s")
    print(f"baseline = both (the scan moves one task and one result per pixel):   {t + r:6.2f} s")
    print(f"ratio scan / baseline: {scan_wall / (t + r):.2f}")
    per_run = [s / (a + b) for s, a, b in zip(scans, tasks, results, strict=True)]
    print("ratio of each run: " + ", ".join(f"{x:.2f}" for x in per_run))
    mq = asyncio.run(mqclient_push_pull(n))
    print(f"for comparison, push+pull {n} task messages through oms-mqclient:  {mq:6.2f} s")


if __name__ == "__main__":
    main()
