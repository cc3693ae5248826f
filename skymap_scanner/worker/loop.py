"""The worker loop: take a pixel, reconstruct it, publish the result, then acknowledge.

Semantics follow the EWMS pilot, minus its gaps: the per-pixel timeout kills the work; a failed pixel is put
back with its attempt count raised (publish the retry, then ack the original: nothing is lost), and after
`max_pixel_attempts` it is reported to the server as failed instead of looping forever. A worker killed at any
point loses nothing: an unacknowledged message is redelivered by the broker; a duplicate result is ignored."""

from __future__ import annotations

import logging
import math
import os
import socket
import time
from dataclasses import dataclass

from ..messages import PixelResult, PixelTask, RecoPixelVariation
from ..mq import from_clients_queue, open_consumer, open_publisher, to_clients_queue
from ..recos import StartupData
from ..settings import WorkerSettings
from .reco_process import RecoFailed, RecoProcess

LOG = logging.getLogger(__name__)


@dataclass
class WorkerStats:
    done: int = 0
    retried: int = 0
    failed: int = 0


def _failed_result(task: PixelTask, error: str, worker: str) -> PixelResult:
    nan = math.nan
    reco = RecoPixelVariation(
        nside=task.nside,
        pixel=task.pixel,
        posvar=task.posvar,
        llh=nan,
        e_in=nan,
        e_tot=nan,
        x=nan,
        y=nan,
        z=nan,
        t=nan,
        energy=nan,
    )
    return PixelResult(
        reco_pixel_variation=reco,
        runtime=0.0,
        sent_at=task.sent_at,
        attempts=task.attempt,
        failed=True,
        error=error[-2000:],
        worker=worker,
    )


async def run_worker(settings: WorkerSettings, startup: StartupData) -> WorkerStats:
    """Consume pixels of one scan until none arrives for `worker_idle_timeout_s`."""
    worker_id = f"{socket.gethostname()}:{os.getpid()}"
    stats = WorkerStats()
    reco = RecoProcess(startup)
    scan_id = startup.scan_id
    idle_since = time.monotonic()
    try:
        async with (
            open_consumer(settings, to_clients_queue(scan_id), prefetch=1, timeout_s=1) as sub,
            open_publisher(settings, from_clients_queue(scan_id)) as results,
            open_publisher(settings, to_clients_queue(scan_id)) as retries,
        ):
            while time.monotonic() - idle_since < settings.worker_idle_timeout_s:
                async for msg in sub.messages():
                    task = PixelTask.model_validate(msg.data)
                    LOG.debug("got pixel %s (attempt %d)", task.id_tuple, task.attempt)
                    try:
                        variation, runtime = await reco.run(
                            task,
                            settings.pixel_timeout_s,
                            settings.heartbeat_interval_s,
                        )
                    except RecoFailed as e:
                        if task.attempt < settings.max_pixel_attempts:
                            LOG.warning(
                                "pixel %s attempt %d failed, re-queued: %s",
                                task.id_tuple,
                                task.attempt,
                                str(e).splitlines()[0],
                            )
                            retry = task.model_copy(update={"attempt": task.attempt + 1})
                            await retries.send(retry)
                            stats.retried += 1
                        else:
                            LOG.error(
                                "pixel %s failed %d times, reported as failed: %s",
                                task.id_tuple,
                                task.attempt,
                                str(e).splitlines()[0],
                            )
                            await results.send(_failed_result(task, str(e), worker_id))
                            stats.failed += 1
                    else:
                        await results.send(
                            PixelResult(
                                reco_pixel_variation=variation,
                                runtime=runtime,
                                sent_at=task.sent_at,
                                attempts=task.attempt,
                                worker=worker_id,
                            )
                        )
                        stats.done += 1
                    await sub.ack(msg)
                    LOG.debug("acked pixel %s", task.id_tuple)
                    idle_since = time.monotonic()
    finally:
        reco.kill()
    LOG.info("worker exiting: %s", stats)
    return stats
