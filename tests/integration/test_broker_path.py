"""The broker path against the real RabbitMQ and real worker processes: poison tasks are dead-lettered,
not raised (audit finding 4); a consumer the broker cancels subscribes again; a task the broker itself
dead-letters (a quorum queue's delivery limit) becomes a failed pixel for the server."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import zstandard
from mqclient.broker_client_interface import Message as MQMessage

from skymap_scanner.deadletters import read_dead_letter
from skymap_scanner.mq import delete_queues, open_consumer, open_publisher, queue_info
from skymap_scanner.recos import StartupData
from skymap_scanner.server.deadletters import DeadLetterTally
from skymap_scanner.server.transport import MQTransport
from skyscan_contract.messages import PixelResult, PixelTask, Seed
from skyscan_contract.queues import (
    dead_letters_queue,
    from_clients_queue,
    scan_queues,
    to_clients_queue,
)
from skyscan_contract.settings import BrokerSettings
from tests.helpers import DEMO_EVENT, wait_for

BROKER = BrokerSettings()


def make_task(scan_id: str, pixel: int) -> PixelTask:
    return PixelTask(
        scan_id=scan_id, reco_algo="dummy", nside=1, pixel=pixel, posvar=0, ra=0, dec=0,
        seed=Seed(x=0, y=0, z=0, t=0),
    )  # fmt: skip


def poison_bodies(scan_id: str) -> dict[str, bytes]:
    """One of each kind of message a reader cannot use, by the reason it must give."""
    bomb = zstandard.ZstdCompressor().compressobj()
    chunks = [bomb.compress(b"\0" * 1_000_000) for _ in range(64)]  # 64 MB of zeros, ~2 KB
    extra = {**make_task(scan_id, 0).model_dump(mode="json"), "newer_field": 1}
    return {
        "not zstd": b"plain text, not zstd",
        "not JSON": zstandard.ZstdCompressor().compress(b"zstd, but not JSON"),
        "not a PixelTask": bytes(MQMessage.serialize(extra)),
        "larger than": b"".join([*chunks, bomb.flush()]),
        "larger than ": zstandard.ZstdCompressor().compress(os.urandom(10_000_000)),  # 10 MB
    }


@asynccontextmanager
async def worker_process(
    tmp_path: Path, scan_id: str, **env: str
) -> AsyncIterator[asyncio.subprocess.Process]:
    startup = StartupData(
        scan_id=scan_id,
        reco_algo="dummy",
        event=json.loads(DEMO_EVENT.read_text()),
        fallback_seed=Seed(x=0, y=0, z=0, t=0),
        reco_config={"dummy_sleep_s": 0.0, "dummy_seed": 1},
    )
    path = tmp_path / "startup.json"
    path.write_text(startup.model_dump_json())
    proc = await asyncio.create_subprocess_exec(
        sys.executable, "-m", "skymap_scanner", "worker", "--client-startup-json", str(path),
        env={**os.environ, "SKYSCAN_LOG": "DEBUG", **env},
        stderr=subprocess.PIPE,
    )  # fmt: skip
    try:
        yield proc
    finally:
        if proc.returncode is None:
            proc.kill()
            await proc.wait()
        await delete_queues(BROKER, scan_queues(scan_id))


async def consumers_of(name: str) -> int:
    info = await queue_info(BROKER, name)
    return 0 if info is None else info[1]


async def take(name: str, n: int, timeout_s: float) -> list[Any]:
    """The next n messages of a queue (acked), as `Received`."""
    got = []
    async with open_consumer(BROKER, name, prefetch=n, timeout_s=timeout_s) as sub:
        async for msg in sub.messages():
            got.append(msg)
            await sub.ack(msg)
            if len(got) == n:
                break
    return got


async def test_audit_4_poison_tasks_are_dead_lettered_and_the_worker_lives(tmp_path: Path) -> None:
    scan_id = f"poison{uuid.uuid4().hex[:10]}"
    poison = poison_bodies(scan_id)
    async with worker_process(tmp_path, scan_id) as worker:
        async with open_publisher(BROKER, to_clients_queue(scan_id)) as pub:
            for body in poison.values():
                await pub.send_raw(body, {})
            await pub.send(make_task("another-scan", 1))
            await pub.send(make_task(scan_id, 2))  # after all of them: it must still be done

        results = await take(from_clients_queue(scan_id), 1, timeout_s=60)
        assert PixelResult.model_validate(results[0].data).reco_pixel_variation.pixel == 2
        entries = [read_dead_letter(m) for m in await take(dead_letters_queue(scan_id), 6, 30)]
        reasons = [e.reason for e in entries]
        for expected in [*(k.strip() for k in poison), "a task of scan 'another-scan'"]:
            assert sum(r.startswith(expected) for r in reasons) >= 1, (expected, reasons)
        assert len(entries) == 6
        assert {e.queue for e in entries} == {to_clients_queue(scan_id)}
        assert worker.returncode is None  # alive after all of them

        # its scan's queue deleted: the broker cancels the subscription, the worker exits 0 (scan over)
        await delete_queues(BROKER, [to_clients_queue(scan_id)])
        _, stderr = await asyncio.wait_for(worker.communicate(), 60)
        assert worker.returncode == 0, stderr.decode()[-3000:]
        assert "the scan's queue is gone" in stderr.decode()


async def test_consumer_cancelled_by_the_broker_subscribes_again(tmp_path: Path) -> None:
    """The broker cancels a subscription while its queue exists (here: the queue is deleted and declared
    again while the worker is stopped, so the worker sees the cancel only once the queue is back): the
    worker subscribes again and takes the next pixel. Before, a subscription was restored only after a
    reconnect, and the worker sat idle beside a queue that had work."""
    scan_id = f"cancel{uuid.uuid4().hex[:10]}"
    name = to_clients_queue(scan_id)
    async with worker_process(tmp_path, scan_id) as worker:
        await wait_for(lambda: consumers_of(name), 60, "the worker to consume")
        [channel] = await consuming_channels(name)
        worker.send_signal(signal.SIGSTOP)
        try:
            await delete_queues(BROKER, [name])
            # the broker drops the subscription (and sends the cancel) on its own time; a queue of the
            # same name declared before that keeps a subscription that delivers nowhere (RabbitMQ 3.10)
            await wait_for(
                lambda: channel_has_no_consumer(channel), 30, "the broker to drop the subscription"
            )
            async with open_publisher(BROKER, name) as pub:  # declares it again
                await pub.send(make_task(scan_id, 7))
        finally:
            worker.send_signal(signal.SIGCONT)
        results = await take(from_clients_queue(scan_id), 1, timeout_s=30)
        assert [PixelResult.model_validate(r.data).reco_pixel_variation.pixel for r in results] == [
            7
        ]
        assert worker.returncode is None


async def _rabbitmqctl_rows(*args: str) -> list[list[str]]:
    """The rows of a `rabbitmqctl list_*` (asked of the broker's processes, not its statistics)."""
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, "-q", "--no-table-headers",
        stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE,
    )  # fmt: skip
    out, err = await proc.communicate()
    assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"
    return [line.split("\t") for line in out.decode().splitlines() if line.strip()]


async def consuming_channels(queue: str) -> list[str]:
    rows = await _rabbitmqctl_rows("list_consumers", "queue_name", "channel_pid")
    return [pid for name, pid in rows if name == queue]


async def channel_has_no_consumer(channel: str) -> bool:
    rows = await _rabbitmqctl_rows("list_channels", "pid", "consumer_count")
    return all(count == "0" for pid, count in rows if pid == channel)


async def _rabbitmqctl(*args: str) -> None:
    proc = await asyncio.create_subprocess_exec(
        "rabbitmqctl", *args, stdout=asyncio.subprocess.DEVNULL, stderr=asyncio.subprocess.PIPE
    )
    _, err = await proc.communicate()
    assert proc.returncode == 0, f"rabbitmqctl {' '.join(args)}: {err.decode()}"


@pytest.fixture
async def delivery_limit_scan() -> AsyncIterator[str]:
    """A scan id whose to-clients queue has the policy SkyDriver sets on a scan's virtual host: a quorum
    delivery limit, dead-lettering to the scan's dead-letter queue (here on the default vhost, for this
    test's queue name only, and cleared afterwards)."""
    scan_id = f"dlimit{uuid.uuid4().hex[:10]}"
    policy = f"test-{scan_id}"
    definition = {
        "delivery-limit": 1,
        "dead-letter-exchange": "",
        "dead-letter-routing-key": dead_letters_queue(scan_id),
    }
    await _rabbitmqctl(
        "set_policy", "--apply-to", "queues", "--priority", "100",
        policy, f"^{to_clients_queue(scan_id)}$", json.dumps(definition),
    )  # fmt: skip
    try:
        yield scan_id
    finally:
        await _rabbitmqctl("clear_policy", policy)
        await delete_queues(BROKER, scan_queues(scan_id))


async def test_task_dead_lettered_by_the_broker_becomes_a_failed_pixel(
    delivery_limit_scan: str,
) -> None:
    scan_id = delivery_limit_scan
    async with open_publisher(BROKER, dead_letters_queue(scan_id)) as dead_letters:
        async with open_publisher(BROKER, to_clients_queue(scan_id)) as pub:
            await pub.send(make_task(scan_id, 9))
        # a task nobody can finish: every taker gives it back, until the broker's delivery limit
        async with open_consumer(BROKER, to_clients_queue(scan_id), timeout_s=0.5) as sub:

            async def given_back_until_gone() -> bool:
                async for msg in sub.messages():
                    await sub.nack(msg)
                    return False
                return True

            await wait_for(given_back_until_gone, 30, "the broker to dead-letter the task")

        # the server's transport reads the dead-letter queue along with the results
        tally = DeadLetterTally()

        async def no_kill_switch() -> None:
            return None

        async with open_consumer(
            BROKER, from_clients_queue(scan_id), also=[dead_letters_queue(scan_id)], timeout_s=1
        ) as consumer:
            transport = MQTransport(
                scan_id, pub, consumer, dead_letters,
                prefetch=10, idle_timeout_s=30, kill_switch=no_kill_switch, tally=tally,
            )  # fmt: skip

            async def first_result() -> PixelResult:
                async for result in transport.results():
                    if result is not None:
                        return result
                raise AssertionError("results() ended")

            result = await asyncio.wait_for(first_result(), 30)
            await transport.acknowledge()
    assert result.failed and result.reco_pixel_variation.id_tuple == (1, 9, 0)
    assert "delivery_limit" in (result.error or ""), result.error
    report = tally.report()
    assert report["count"] == 1
    assert report["last"] == [
        {
            "queue": to_clients_queue(scan_id),
            "reason": "dead-lettered by the broker: delivery_limit",
            "pixel": [1, 9, 0],
        }
    ]
