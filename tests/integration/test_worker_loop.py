"""The worker loop (`skymap_scanner/worker/loop.py`) against the real broker, run in-process so that the test
can stand between its steps.

- Publish, then acknowledge: a worker that dies right after acknowledging a pixel has already published that
  pixel's outcome (its result, or its retry). The observation point is a thin wrapper around the worker's real
  consumer: at the moment the worker acknowledges, it reads the outcome's queue on the broker, lets the ack
  through, and then "kills" the worker (raises), so nothing the worker would do next can hide a lost pixel.
- The attempt limit: a pixel that always fails is put back with its attempt count raised, and after
  `max_pixel_attempts` it is reported as failed (once, with that count) instead of being redelivered."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncGenerator, AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import pytest

from skymap_scanner.mq import (
    Consumer,
    Received,
    delete_queues,
    open_consumer,
    open_publisher,
    queue_depth,
)
from skymap_scanner.recos import StartupData
from skymap_scanner.recos.dummy import _rng
from skymap_scanner.worker import loop
from skyscan_contract.messages import PixelResult, PixelTask, Seed
from skyscan_contract.queues import from_clients_queue, to_clients_queue
from skyscan_contract.settings import BrokerSettings, DummySettings, WorkerSettings
from tests.helpers import DEMO_EVENT, wait_for

SEED = 7
FALLBACK = Seed(x=0, y=0, z=0, t=0)


class SimulatedKill(Exception):
    """Stands for the worker process dying (SIGKILL) right after an acknowledgement reached the broker."""


def startup_data(scan_id: str, reco_algo: str) -> StartupData:
    return StartupData(
        scan_id=scan_id,
        reco_algo=reco_algo,
        event=json.loads(DEMO_EVENT.read_text()),
        fallback_seed=FALLBACK,
        reco_config={"dummy_sleep_s": 0.0, "dummy_seed": SEED, "crash_dummy_probability": 1.0},
    )


def task(scan_id: str, reco_algo: str, pixel: int, attempt: int = 1) -> PixelTask:
    return PixelTask(
        scan_id=scan_id,
        reco_algo=reco_algo,
        nside=1,
        pixel=pixel,
        posvar=0,
        ra=0,
        dec=0,
        seed=FALLBACK,
        attempt=attempt,
    )


def raising_pixel() -> int:
    """A pixel on which crash_dummy (probability 1, SEED) raises at once rather than hanging until the
    per-pixel timeout (with a seed, a pixel crashes the same way on every attempt)."""
    settings = DummySettings(dummy_seed=SEED, crash_dummy_probability=1.0)
    for pixel in range(12):
        rng = _rng(settings, task("x", "crash_dummy", pixel), "crash")
        if rng.random() < 1.0 and rng.random() < 0.5:
            return pixel
    raise AssertionError(f"no pixel raises with seed {SEED}")


@pytest.fixture
async def scan_id() -> AsyncIterator[str]:
    """A scan id of our own, its two queues declared before anything consumes them (RabbitMQ 3.10 can refuse a
    consume on a quorum queue another connection is still creating), and deleted afterwards."""
    scan_id = f"wl{uuid.uuid4().hex[:12]}"
    for queue in (to_clients_queue(scan_id), from_clients_queue(scan_id)):
        async with open_publisher(BrokerSettings(), queue):
            pass
    yield scan_id
    await delete_queues(BrokerSettings(), [to_clients_queue(scan_id), from_clients_queue(scan_id)])


class KilledAfterFirstAck:
    """The worker's real consumer, except that its first `ack` records how many messages wait in
    `watched` (read from the broker just before the ack goes out), then acks, then raises SimulatedKill."""

    def __init__(self, inner: Consumer, broker: BrokerSettings, watched: str) -> None:
        self.inner = inner
        self.broker = broker
        self.watched = watched
        self.depth_at_ack: list[int | None] = []

    def messages(self) -> AsyncGenerator[Received, None]:
        return self.inner.messages()

    async def ack(self, msg: Received) -> None:
        self.depth_at_ack.append(await queue_depth(self.broker, self.watched))
        await self.inner.ack(msg)
        raise SimulatedKill("killed right after the acknowledgement")

    async def ack_all(self, msgs: list[Received]) -> None:
        raise AssertionError("the worker acknowledges its pixels one at a time")

    def has_buffered(self) -> bool:
        return self.inner.has_buffered()

    async def queue_exists(self) -> bool:
        return await self.inner.queue_exists()

    async def nack(self, msg: Received) -> None:
        await self.inner.nack(msg)


async def take_all(broker: BrokerSettings, queue: str, expected: int) -> list[dict[str, Any]]:
    """Consume (and ack) `expected` messages of `queue`, failing after a deadline if fewer arrive."""
    out: list[dict[str, Any]] = []
    async with open_consumer(broker, queue, prefetch=10, timeout_s=10) as sub:
        async for msg in sub.messages():
            out.append(msg.data)
            await sub.ack(msg)
            if len(out) == expected:
                break
    assert len(out) == expected, f"expected {expected} message(s) in {queue}, got {out}"
    return out


async def run_killed_after_first_ack(
    monkeypatch: pytest.MonkeyPatch, settings: WorkerSettings, startup: StartupData, watched: str
) -> KilledAfterFirstAck:
    spies: list[KilledAfterFirstAck] = []
    real_open_consumer = open_consumer  # the one the worker loop imported

    @asynccontextmanager
    async def spied_open_consumer(
        broker: BrokerSettings, name: str, **kwargs: Any
    ) -> AsyncIterator[Consumer]:
        async with real_open_consumer(broker, name, **kwargs) as sub:
            spy = KilledAfterFirstAck(sub, broker, watched)
            spies.append(spy)
            yield spy

    monkeypatch.setattr(loop, "open_consumer", spied_open_consumer)
    with pytest.raises(SimulatedKill):
        await asyncio.wait_for(loop.run_worker(settings, startup), 60)
    assert len(spies) == 1
    return spies[0]


def worker_settings(**overrides: Any) -> WorkerSettings:
    values: dict[str, Any] = {
        "worker_prefetch": 1,  # the worker cannot take its own retry before acking the original
        "worker_idle_timeout_s": 30,
        "max_pixel_attempts": 3,
    }
    values.update(overrides)
    return WorkerSettings(**values)


async def test_a_result_is_published_before_its_pixel_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch, scan_id: str
) -> None:
    broker = BrokerSettings()
    async with open_publisher(broker, to_clients_queue(scan_id)) as pub:
        await pub.send(task(scan_id, "dummy", 5))

    spy = await run_killed_after_first_ack(
        monkeypatch, worker_settings(), startup_data(scan_id, "dummy"), from_clients_queue(scan_id)
    )

    assert spy.depth_at_ack == [1], "the pixel was acknowledged before its result was published"
    # the worker died after the ack: the pixel is gone from its queue, and its result is not lost
    assert await queue_depth(broker, to_clients_queue(scan_id)) == 0
    [result] = await take_all(broker, from_clients_queue(scan_id), 1)
    reco = PixelResult.model_validate(result).reco_pixel_variation
    assert (reco.nside, reco.pixel, reco.posvar) == (1, 5, 0)


async def test_a_retry_is_published_before_the_failed_attempt_is_acknowledged(
    monkeypatch: pytest.MonkeyPatch, scan_id: str
) -> None:
    broker = BrokerSettings()
    pixel = raising_pixel()
    async with open_publisher(broker, to_clients_queue(scan_id)) as pub:
        await pub.send(task(scan_id, "crash_dummy", pixel))

    spy = await run_killed_after_first_ack(
        monkeypatch,
        worker_settings(),
        startup_data(scan_id, "crash_dummy"),
        to_clients_queue(scan_id),
    )

    # with prefetch 1 the worker holds only the original: what waits in the queue is the retry
    assert spy.depth_at_ack == [1], (
        "the failed attempt was acknowledged before its retry was queued"
    )
    [retry] = await take_all(broker, to_clients_queue(scan_id), 1)
    assert PixelTask.model_validate(retry).attempt == 2
    assert await queue_depth(broker, from_clients_queue(scan_id)) == 0  # not reported yet


def requeued_attempts(caplog: pytest.LogCaptureFixture) -> list[int]:
    """The attempt numbers the worker logged as failed and re-queued."""
    return [
        int(str(r.args[1]))
        for r in caplog.records
        if r.name == loop.LOG.name and "re-queued" in r.msg and isinstance(r.args, tuple)
    ]


async def test_a_pixel_that_always_fails_is_reported_once_after_the_attempt_limit(
    scan_id: str, caplog: pytest.LogCaptureFixture
) -> None:
    broker = BrokerSettings()
    pixel = raising_pixel()
    async with open_publisher(broker, to_clients_queue(scan_id)) as pub:
        await pub.send(task(scan_id, "crash_dummy", pixel))
    settings = worker_settings(worker_prefetch=2, worker_idle_timeout_s=3, max_pixel_attempts=3)
    worker = asyncio.create_task(loop.run_worker(settings, startup_data(scan_id, "crash_dummy")))
    try:
        reports: list[PixelResult] = []
        async with open_consumer(broker, from_clients_queue(scan_id), timeout_s=0.2) as sub:

            async def a_report() -> bool:
                async for msg in sub.messages():
                    reports.append(PixelResult.model_validate(msg.data))
                    await sub.ack(msg)
                # fail at once, not at the deadline, when the limit is passed without a report
                assert max(requeued_attempts(caplog), default=0) < 3, (
                    f"re-queued after attempts {requeued_attempts(caplog)}: the limit is 3"
                )
                return bool(reports)

            await wait_for(a_report, 20, "the failed-pixel report", interval_s=0)
        stats = await asyncio.wait_for(worker, 30)  # the worker goes idle: nothing is redelivered
    finally:
        worker.cancel()
    [report] = reports
    assert report.failed
    assert report.attempts == 3
    assert "intentional crash-dummy error" in (report.error or "")
    assert report.reco_pixel_variation.pixel == pixel
    assert report.reco_pixel_variation.llh != report.reco_pixel_variation.llh  # NaN
    assert (stats.done, stats.retried, stats.failed) == (0, 2, 1)
    assert requeued_attempts(caplog) == [1, 2]
    assert await queue_depth(broker, to_clients_queue(scan_id)) == 0
    assert await queue_depth(broker, from_clients_queue(scan_id)) == 0
