"""The worker loop: take a pixel, reconstruct it, publish the result, then acknowledge.

Semantics follow the EWMS pilot, minus its gaps: the per-pixel timeout kills the work; a failed pixel is put
back with its attempt count raised (publish the retry, then ack the original: nothing is lost), and after
`max_pixel_attempts` it is reported to the server as failed instead of looping forever. A worker killed at any
point loses nothing: an unacknowledged message is redelivered by the broker; a duplicate result is ignored."""

from __future__ import annotations

import asyncio
import logging
import os
import socket
import time
from dataclasses import dataclass

from pydantic import BaseModel, ValidationError

from skyscan_contract.messages import PixelResult, PixelTask
from skyscan_contract.queues import dead_letters_queue, from_clients_queue, to_clients_queue
from skyscan_contract.settings import WorkerSettings

from ..deadletters import dead_letter
from ..failures import failed_result
from ..mq import (
    Publisher,
    QueueGone,
    Received,
    open_consumer,
    open_publisher,
)
from ..recos import StartupData
from .reco_process import RecoFailed, RecoProcess

LOG = logging.getLogger(__name__)
#: after this long without a pixel, the worker checks whether its scan's queue still exists
QUEUE_CHECK_AFTER_IDLE_S = 5.0


@dataclass
class WorkerStats:
    done: int = 0
    retried: int = 0
    failed: int = 0


def read_task(msg: Received, scan_id: str) -> PixelTask | str:
    """The task in a message, or why there is none (the message is then dead-lettered, not raised: a
    malformed task used to kill every worker that took it)."""
    if msg.error is not None:
        return msg.error
    try:
        task = PixelTask.model_validate(msg.data)
    except ValidationError as e:
        return f"not a PixelTask: {e}"
    if task.scan_id != scan_id:
        return f"a task of scan {task.scan_id!r}, not of this worker's scan {scan_id!r}"
    return task


class _Worker:
    results: Publisher  # set once connected
    retries: Publisher

    def __init__(self, settings: WorkerSettings, reco: RecoProcess) -> None:
        self.settings = settings
        self.reco = reco
        self.worker_id = f"{socket.gethostname()}:{os.getpid()}"
        self.stats = WorkerStats()

    async def process(self, task: PixelTask) -> tuple[Publisher, BaseModel]:
        """Reconstruct one pixel; return where to publish what (result, retry, or failure report)."""
        try:
            variation, runtime = await self.reco.run(
                task, self.settings.pixel_timeout_s, self.settings.heartbeat_interval_s
            )
        except RecoFailed as e:
            first_line = str(e).splitlines()[0]
            if task.attempt < self.settings.max_pixel_attempts:
                LOG.warning(
                    "pixel %s attempt %d failed, re-queued: %s",
                    task.id_tuple,
                    task.attempt,
                    first_line,
                )
                self.stats.retried += 1
                return self.retries, task.model_copy(update={"attempt": task.attempt + 1})
            LOG.error(
                "pixel %s failed %d times, reported as failed: %s",
                task.id_tuple,
                task.attempt,
                first_line,
            )
            self.stats.failed += 1
            return self.results, failed_result(task, str(e), self.worker_id)
        self.stats.done += 1
        return self.results, PixelResult(
            reco_pixel_variation=variation,
            runtime=runtime,
            sent_at=task.sent_at,
            attempts=task.attempt,
            worker=self.worker_id,
        )


async def run_worker(settings: WorkerSettings, startup: StartupData) -> WorkerStats:
    """Consume pixels of one scan until none arrives for `worker_idle_timeout_s`, or the scan's queue is
    deleted (the scan ended).

    Publishing a pixel's outcome and acknowledging its message run in the background while the next pixel
    is reconstructed (at most `worker_prefetch` in flight), so the broker's confirm round trip is off the
    critical path; the order publish-then-ack is kept for every pixel, and for every dead letter."""
    reco = RecoProcess(startup)
    reco.start()
    worker = _Worker(settings, reco)
    scan_id = startup.scan_id
    idle_since = time.monotonic()
    in_flight: set[asyncio.Task[None]] = set()
    try:
        async with (
            open_consumer(
                settings, to_clients_queue(scan_id), prefetch=settings.worker_prefetch, timeout_s=1
            ) as sub,
            open_publisher(settings, from_clients_queue(scan_id)) as results,
            open_publisher(settings, to_clients_queue(scan_id)) as retries,
            open_publisher(settings, dead_letters_queue(scan_id)) as dead_letters,
        ):
            worker.results, worker.retries = results, retries

            async def finish(target: Publisher, out: BaseModel, msg: Received, what: str) -> None:
                await target.send(out)
                await sub.ack(msg)
                LOG.debug("acked pixel %s", what)

            async def discard(msg: Received, reason: str) -> None:
                await dead_letter(dead_letters, msg, reason)
                await sub.ack(msg)

            def settle_in_background(work: asyncio.Task[None]) -> None:
                for done in [t for t in in_flight if t.done()]:
                    in_flight.discard(done)
                    done.result()  # a failed publish/ack ends the worker; the broker redelivers
                in_flight.add(work)

            try:
                while time.monotonic() - idle_since < settings.worker_idle_timeout_s:
                    if (
                        time.monotonic() - idle_since > QUEUE_CHECK_AFTER_IDLE_S
                        and not await sub.queue_exists()
                    ):
                        raise QueueGone(to_clients_queue(scan_id))
                    async for msg in sub.messages():
                        idle_since = time.monotonic()
                        task = read_task(msg, scan_id)
                        if isinstance(task, str):
                            settle_in_background(asyncio.create_task(discard(msg, task)))
                            continue
                        LOG.debug("got pixel %s (attempt %d)", task.id_tuple, task.attempt)
                        target, out = await worker.process(task)
                        settle_in_background(
                            asyncio.create_task(finish(target, out, msg, str(task.id_tuple)))
                        )
                        idle_since = time.monotonic()
                    if in_flight:
                        await asyncio.gather(*in_flight)
                        in_flight.clear()
            except QueueGone:
                LOG.info("the scan's queue is gone (the scan ended): exiting")
                await asyncio.gather(*in_flight, return_exceptions=True)
    finally:
        reco.kill()
    LOG.info("worker exiting: %s", worker.stats)
    return worker.stats
